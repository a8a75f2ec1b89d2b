"""COMMAND INFO metadata: Redis' records must describe the commands as dynredis serves them."""

from __future__ import annotations

from dynredis.commands.metadata import command_info, redis_record
from dynredis.commands.table import commands
from dynredis.resp.encode import encode


def test_redis_records_agree_with_the_arity_and_keys_dynredis_checks() -> None:
    checked = 0
    for cmd in commands():
        for c in [cmd, *cmd.subcommands.values()]:
            record = redis_record(c.name)
            if record is None:
                continue
            checked += 1
            assert (record[0], record[1], record[3], record[4], record[5]) == (
                c.name, c.arity, c.first_key, c.last_key, c.step), c.name
    assert checked > 60


def test_every_record_encodes_and_lists_only_served_subcommands() -> None:
    for cmd in commands():
        info = command_info(cmd)
        assert len(info) == 10 and info[0] == cmd.name
        assert [s[0] for s in info[9]] == sorted(s.name for s in cmd.subcommands.values())
        for proto in (2, 3):
            assert encode(info, proto).startswith(b"*10\r\n")
        if cmd.first_key and redis_record(cmd.name) is None:  # our own: Redis' vocabulary
            (spec,) = info[8]
            assert set(spec["flags"]) <= {"RO", "RW", "RM", "OW", "access", "update",
                                          "insert", "delete"}, cmd.name
