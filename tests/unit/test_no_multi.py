"""Commands Redis flags `no_multi` (SAVE) are refused inside MULTI, as Redis refuses them,
and the refusal fails the transaction: EXEC answers EXECABORT."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dynredis.commands.diagnostics import ERR_DEBUG
from dynredis.commands.metadata import redis_record
from dynredis.commands.table import commands
from dynredis.resp.encode import Simple
from tests.unit.test_client_connection import one_client


def request(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


def sent(tmp_path: Path, *commands: tuple[bytes, ...]) -> bytes:
    """What a node of its own answers a client sending `commands`, one a loop turn."""
    async def run() -> bytes:
        srv, conn, transport = one_client(tmp_path)
        for words in commands:
            conn.data_received(request(*words))
            await asyncio.sleep(0)
        return transport.sent

    return asyncio.run(run())


def test_save_inside_multi_is_refused_and_fails_the_transaction(tmp_path: Path) -> None:
    assert sent(tmp_path, (b"MULTI",), (b"save",), (b"PING",), (b"EXEC",), (b"PING",)) == (
        b"+OK\r\n-ERR Command not allowed inside a transaction\r\n+QUEUED\r\n"
        b"-EXECABORT Transaction discarded because of previous errors.\r\n+PONG\r\n")


def test_every_command_redis_refuses_in_multi_is_flagged_so() -> None:
    """The refusal follows the command table's flags: a command Redis flags `no_multi`
    carries the flag here too (and no other command does)."""
    flagged = []
    for cmd in commands():
        for c in [cmd, *cmd.subcommands.values()]:
            record = redis_record(c.name)
            if record is not None:
                assert (Simple("no_multi") in record[2]) == ("no_multi" in c.flags), c.name
            if "no_multi" in c.flags:
                flagged.append(c.name)
    assert flagged == ["save", "shutdown"]


def test_debug_inside_multi_is_refused_at_once_and_fails_the_transaction(
        tmp_path: Path) -> None:
    """DEBUG is refused wherever it comes (Redis' enable-debug-command no): inside MULTI
    before it is queued, as Redis refuses a protected command."""
    assert sent(tmp_path, (b"MULTI",), (b"DEBUG", b"HELP"), (b"PING",), (b"EXEC",)) == (
        b"+OK\r\n" + ERR_DEBUG + b"+QUEUED\r\n"
        b"-EXECABORT Transaction discarded because of previous errors.\r\n")


def test_an_unknown_subcommand_or_its_wrong_arity_inside_multi_fails_the_transaction(
        tmp_path: Path) -> None:
    """Redis finds a container's subcommand (and checks its arity) before it queues it."""
    assert sent(tmp_path, (b"MULTI",), (b"MEMORY", b"BOGUS"), (b"CONFIG", b"GET"), (b"PING",),
                      (b"EXEC",)) == (
        b"+OK\r\n-ERR unknown subcommand 'BOGUS'. Try MEMORY HELP.\r\n"
        b"-ERR wrong number of arguments for 'config|get' command\r\n+QUEUED\r\n"
        b"-EXECABORT Transaction discarded because of previous errors.\r\n")


def test_monitor_run_by_exec_is_refused_as_redis_refuses_it(tmp_path: Path) -> None:
    """EXEC expects a reply per command: Redis refuses MONITOR there, SUBSCRIBE runs."""
    assert sent(tmp_path, (b"MULTI",), (b"SUBSCRIBE", b"a"), (b"MONITOR",), (b"EXEC",),
                      (b"PING",)) == (
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n"
        b"*2\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
        b"-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n"
        b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
