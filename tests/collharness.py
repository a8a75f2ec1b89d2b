"""Run collection commands against one replica's view, without a cluster.

`LocalRunner` executes a command's builder and its operation on a `KeyView` over an
in-memory engine, exactly as a coordinator would after its sync (core/collcoord.py)
(a blocking command: its first attempt, then its timeout's reply),
and handles the few key commands the tests need around them (DEL, EXISTS, TYPE, SET,
GET, PEXPIRE, PTTL, FLUSHALL). It lets command semantics be compared with a real
redis-server quickly and in one process; the cluster paths are tested with real nodes.
"""

from __future__ import annotations

from typing import Any

from dynredis.commands import blocking, collection
from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core import records as rec
from dynredis.core.collstore import CollectionStore
from dynredis.core.collview import KeyView
from dynredis.core.planslots import PlanSlots
from dynredis.core.ring import new_ring
from dynredis.resp import encode as resp
from dynredis.resp.bulks import whole
from dynredis.storage.memory import MemoryEngine

_RING = new_ring(["n"], 256, claimant="n")


class LocalRunner:
    def __init__(self, now: int = 1_700_000_000_000, name: bytes = b"node") -> None:
        self.name = name  # the replica's identity in the versions it writes
        self.engine = MemoryEngine()
        self.store = CollectionStore(self.engine)
        self.now = now
        self.ts = 0
        self.writes: list[Any] = []  # the deltas of every command, in order
        self.proto = 2  # the protocol of the command being run

    # --- a coordinator's plumbing ------------------------------------------------------

    def stamp(self, obj: Any) -> int:
        self.ts += 1
        if obj is not None:
            self.ts = max(self.ts, objmod.max_ts(obj) + 1)
        return self.ts

    def _header(self, p: int, key: bytes) -> Any:
        enc = self.engine.get(p, key)
        return objmod.decode(enc) if enc is not None else None

    def _write_header(self, p: int, key: bytes, data: Any, expire_at: int) -> tuple[bytes,
                                                                                   Any]:
        old = self.engine.get(p, key)
        local = objmod.decode(old) if old is not None else None
        new = dvv.overwrite(local, self.name, (self.stamp(local), expire_at, data))
        enc = objmod.encode(new)
        self.engine.put(p, key, enc)
        return enc, old

    def view(self, key: bytes) -> KeyView:
        p = _RING.partition_of(key)
        return KeyView(self.store, p, key, self.now, self._header(p, key),
                       lambda data, exp: self._write_header(p, key, data, exp), self.name,
                       lambda: b"\x00\x00\x00\x01", self.stamp)

    # --- commands -----------------------------------------------------------------------

    def run(self, *args: bytes | str, proto: int = 2) -> bytes:
        words = [a.encode() if isinstance(a, str) else a for a in args]
        name = words[0].decode().lower()
        special = getattr(self, "_cmd_" + name, None)
        self.proto = proto
        if special is not None:
            return special(words)
        if name in blocking.BLOCKERS:
            # Nobody else writes here: a blocking command is its first attempt, and
            # the reply at its timeout if that found nothing (as for one client of Redis).
            blocker = blocking.BLOCKERS[name](words, proto)
            if isinstance(blocker, bytes):
                return blocker
            got: list[Any] = []
            collection.drive(blocker.first(),  # type: ignore[arg-type]
                             lambda step, cb: cb((None, self.step(step, proto))), got.append)
            return blocker.nil if got[0] is None else got[0]
        if name in collection.PLANS:
            plan = collection.PLANS[name](words, proto)
            if isinstance(plan, bytes):
                return plan
            out: list[bytes] = []
            collection.drive(plan, lambda step, cb: cb((None, self.step(step, proto))),
                             out.append)
            return whole(out[0])  # type: ignore[return-value]
        return self.step(words, proto)

    def step(self, words: list[bytes], proto: int = 2) -> Any:
        """One single-key step: a builder's op on the key's view (a plan's pause for a
        loop turn, collection.TURN: nothing here)."""
        if words == collection.TURN:
            return None
        if words == collection.PLAN_SLOT:  # (one plan at a time here: always a place)
            got: list[Any] = []
            PlanSlots(lambda cb, result: cb(result)).take(got.append)
            return got[0][1]
        build = collection.BUILDERS[words[0].decode().lower()]
        built = build(words, proto)
        if isinstance(built, bytes):
            return built
        key, op = built
        view = self.view(key)
        reply = op(view)
        deltas, events = view.finish()
        self.writes.append((deltas, events))
        return whole(reply)  # a long reply at once, as EXEC and scripts have it

    def _type(self, key: bytes) -> str | None:
        return self.view(key).type()

    def _cmd_type(self, w: list[bytes]) -> bytes:
        return resp.simple(self._type(w[1]) or "none")

    def _cmd_exists(self, w: list[bytes]) -> bytes:
        return resp.integer(sum(1 for k in w[1:] if self._type(k) is not None))

    def _cmd_del(self, w: list[bytes]) -> bytes:
        n = 0
        for key in w[1:]:
            view = self.view(key)
            if view.type() is not None:
                n += 1
                view.delete()
                view.finish()
        return resp.integer(n)

    def _cmd_set(self, w: list[bytes]) -> bytes:
        view = self.view(w[1])
        view.delete()
        view.finish()
        p = _RING.partition_of(w[1])
        self._write_header(p, w[1], w[2], 0)
        return resp.OK

    def _cmd_get(self, w: list[bytes]) -> bytes:
        view = self.view(w[1])
        t = view.type()
        if t is None:
            return resp.nil(self.proto)
        if t != "string":
            return collection.WRONGTYPE
        return resp.bulk(objmod.read_value(view.header, self.now)[2])

    def _cmd_pexpire(self, w: list[bytes]) -> bytes:
        view = self.view(w[1])
        t = view.type()
        if t is None:
            return resp.ZERO
        # A collection's header holds its type marker; a string's, its value.
        data = (objmod.read_value(view.header, self.now)[2] if t == "string"
                else rec.marker(t))
        p = _RING.partition_of(w[1])
        self._write_header(p, w[1], data, self.now + int(w[2]))
        return resp.ONE

    def _cmd_pttl(self, w: list[bytes]) -> bytes:
        view = self.view(w[1])
        t = view.type()
        if t is None:
            return resp.integer(-2)
        expire_at = (objmod.read_value(view.header, self.now)[1] if t == "string"
                     else view.expire_at())
        return resp.integer(expire_at - self.now if expire_at else -1)

    def _cmd_flushall(self, w: list[bytes]) -> bytes:
        self.engine.wipe()
        self.store.forget()
        return resp.OK

    def advance(self, ms: int) -> None:
        self.now += ms


class ClusterRunner:
    """The same `run` as LocalRunner's, against a real dynredis cluster: each command
    goes to the next node in turn (so consecutive commands on one key are coordinated
    by different nodes), and the reply's bytes come back exactly as sent. Made with
    FLUSHALL, as a LocalRunner starts empty."""

    def __init__(self, ports: list[int]) -> None:
        import socket

        import hiredis

        self._hiredis = hiredis
        self.conns: dict[tuple[int, int], socket.socket] = {}
        self.ports = ports
        self.turn = 0
        for port in ports:
            for proto in (2, 3):
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                self.conns[port, proto] = sock
                if proto == 3:
                    self._call(sock, [b"HELLO", b"3"])
        self.flushall()

    def flushall(self) -> None:
        """FLUSHALL through every node in turn: a node's wipe reaches each peer after the
        element writes it sent that peer before (one ordered link per pair), so no write
        of an earlier history lands after the wipe."""
        for port in self.ports:
            self._call(self.conns[port, 2], [b"FLUSHALL"])

    def _call(self, sock: Any, words: list[bytes]) -> bytes:
        sock.sendall(b"*%d\r\n" % len(words)
                     + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words))
        reader = self._hiredis.Reader()
        raw = b""
        while True:
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the node closed the connection")
            raw += data
            reader.feed(data)
            if reader.gets() is not False:
                return raw

    def run(self, *args: bytes | str, proto: int = 2) -> bytes:
        words = [a.encode() if isinstance(a, str) else a for a in args]
        port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        return self._call(self.conns[port, proto], words)

    def close(self) -> None:
        for sock in self.conns.values():
            sock.close()
