"""Regenerate dynredis/commands/redis_commands.json (COMMAND INFO) and redis_docs.json
(COMMAND DOCS) from a real redis-server.

COMMAND INFO is what cluster clients route by (key positions, read-only flags, request
and response policies), so for every command Redis also has we publish Redis' own
metadata, exactly, with its RESP3 types. Run against the redis-server the
compatibility tests compare with (Redis 7.0):

    redis-server --port 6399 --save '' &
    python scripts/gen_command_meta.py 6399
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "dynredis" / "commands" / "redis_commands.json"
DOCS_OUT = ROOT / "dynredis" / "commands" / "redis_docs.json"


class Reader:
    """A minimal RESP3 reader that keeps each reply's type (simple vs bulk, set vs
    array), which hiredis does not report."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(1 << 16)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(1 << 16)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return {"+": rest.decode()}
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            return self._exact(int(rest)).decode()
        if kind == b"_":
            return None
        if kind in (b"*", b"~"):
            items = [self.read() for _ in range(int(rest))]
            return items if kind == b"*" else {"~": items}
        if kind == b"%":
            return {"%": [[self.read(), self.read()] for _ in range(int(rest))]}
        raise RuntimeError(f"unexpected reply type {line!r}")


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    from dynredis.commands.table import commands

    names = [c.name for c in commands()]
    sock = socket.create_connection(("127.0.0.1", port))
    reader = Reader(sock)
    words = [b"COMMAND", b"INFO", *(n.encode() for n in names)]
    sock.sendall(b"HELLO 3\r\n" + b"*%d\r\n" % len(words)
                 + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words))
    reader.read()  # HELLO
    infos = reader.read()
    meta = {name: info for name, info in zip(names, infos, strict=True) if info is not None}
    OUT.write_text(json.dumps(meta, indent=None, separators=(",", ":"), sort_keys=True) + "\n")
    # COMMAND DOCS: name -> its docs map (the same RESP3 types), for COMMAND DOCS.
    words = [b"COMMAND", b"DOCS", *(n.encode() for n in meta)]
    sock.sendall(b"*%d\r\n" % len(words)
                 + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words))
    docs = {name: value for name, value in reader.read()["%"]}  # type: ignore[index]
    DOCS_OUT.write_text(json.dumps(docs, indent=None, separators=(",", ":"), sort_keys=True)
                        + "\n")
    missing = sorted(set(names) - set(meta))
    print(f"{len(meta)} commands written to {OUT.relative_to(ROOT)}; "
          f"not in Redis (dynredis' own metadata): {' '.join(missing)}")


if __name__ == "__main__":
    main()
