"""A small pipelined load generator for the collection rows of `make bench`.

redis-benchmark sends one command per request; the collection rows also need a request
made of two commands (RPUSH then LPOP, so a list keeps its length) and exact fills
(every element once). This sends pre-encoded requests over `clients` connections, each
keeping `pipeline` requests in flight (a batch written at once, the next batch once
every reply of this one is in), as redis-benchmark -c/-P do. Replies are parsed with
hiredis; error replies are counted and the first few kept.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import hiredis


def command(*args: bytes | str | int | float) -> bytes:
    """One command in RESP (a multibulk of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


@dataclass
class LoadResult:
    requests: int
    seconds: float
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # indices of requests with an error

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


class _Conn:
    __slots__ = ("sock", "reader", "todo", "expected", "batch", "got")

    def __init__(self, sock: socket.socket, todo: list[tuple[int, bytes]]) -> None:
        self.sock = sock
        self.reader = hiredis.Reader()
        self.todo = todo  # this connection's (index, request), sent from the end
        self.expected = 0
        self.batch: list[int] = []  # indices of the requests in flight
        self.got = 0  # replies read of this batch


def run_load(host: str, port: int, requests: Sequence[bytes], replies_per_request: int = 1,
             clients: int = 50, pipeline: int = 16, timeout: float = 600.0) -> LoadResult:
    """Send every request once; return the wall time and the error replies.

    Request i goes to connection i % clients. Raises TimeoutError if the replies do not
    all arrive within `timeout` seconds (a stuck server must not hang the bench)."""
    clients = max(1, min(clients, len(requests)))
    result = LoadResult(requests=len(requests), seconds=0.0)
    if not requests:
        return result
    sel = selectors.DefaultSelector()
    conns = []
    try:
        for c in range(clients):
            sock = socket.create_connection((host, port), timeout=10.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            todo = list(enumerate(requests))[c::clients]
            todo.reverse()
            conns.append(_Conn(sock, todo))
        start = time.perf_counter()
        deadline = start + timeout
        for conn in conns:
            _send_batch(conn, pipeline, replies_per_request)
            conn.sock.setblocking(False)
            sel.register(conn.sock, selectors.EVENT_READ, conn)
        active = len(conns)
        while active:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"replies still missing after {timeout:.0f}s "
                                   f"({active} connections waiting)")
            for key, _ in sel.select(min(left, 1.0)):
                conn = key.data
                try:
                    data = conn.sock.recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError(f"{host}:{port} closed a connection")
                conn.reader.feed(data)
                while conn.expected:
                    reply = conn.reader.gets()
                    if reply is False:
                        break
                    conn.expected -= 1
                    conn.got += 1
                    if isinstance(reply, hiredis.ReplyError):
                        result.errors += 1
                        index = conn.batch[(conn.got - 1) // replies_per_request]
                        if not result.failed or result.failed[-1] != index:
                            result.failed.append(index)
                        if len(result.first_errors) < 5:
                            result.first_errors.append(str(reply))
                if conn.expected == 0:
                    if conn.todo:
                        conn.sock.setblocking(True)
                        _send_batch(conn, pipeline, replies_per_request)
                        conn.sock.setblocking(False)
                    else:
                        sel.unregister(conn.sock)
                        active -= 1
        result.seconds = time.perf_counter() - start
        return result
    finally:
        sel.close()
        for conn in conns:
            conn.sock.close()


def _send_batch(conn: _Conn, pipeline: int, replies_per_request: int) -> None:
    batch = [conn.todo.pop() for _ in range(min(pipeline, len(conn.todo)))]
    conn.batch = [i for i, _ in batch]
    conn.got = 0
    conn.expected = len(batch) * replies_per_request
    conn.sock.sendall(b"".join(req for _, req in batch))
