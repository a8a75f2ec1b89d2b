"""COMMAND INFO records and COMMAND DOCS: Redis' own metadata for the commands Redis
also has.

Cluster clients route by COMMAND INFO (key positions, read-only flags, request and
response policies), so for every command Redis has, dynredis publishes exactly what
Redis 7.0 publishes, types included: `redis_commands.json` is generated from a real
redis-server by `scripts/gen_command_meta.py`. The versioned API and DYN.* commands,
which Redis lacks, get records built the same way from the command table.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ..resp.encode import SetReply, Simple
from .table import Command

_META: dict[str, Any] = json.loads(
    (Path(__file__).with_name("redis_commands.json")).read_text())
# COMMAND DOCS as Redis 7.0 answers it, by command (scripts/gen_command_meta.py too).
_DOCS: dict[str, Any] = json.loads((Path(__file__).with_name("redis_docs.json")).read_text())

# Key-spec flags of dynredis' own commands (Redis' vocabulary: RO/RW/RM, access/update/
# insert/delete), and their ACL categories.
_OWN_KEY_FLAGS = {"getctx": ("RO", "access"), "setctx": ("RW", "update"),
                  "delctx": ("RM", "delete")}


def _decode(node: Any) -> Any:
    """A JSON node of redis_commands.json as a value `resp.encode` renders."""
    if isinstance(node, dict):
        if "+" in node:
            return Simple(node["+"])
        if "~" in node:
            return SetReply(_decode(x) for x in node["~"])
        return {_decode(k): _decode(v) for k, v in node["%"]}
    if isinstance(node, list):
        return [_decode(x) for x in node]
    return node


@cache
def redis_record(name: str) -> list | None:
    """Redis' COMMAND INFO record of `name` ("get", "config|get"), or None."""
    top, _, sub = name.partition("|")
    record = _META.get(top)
    if record is None:
        return None
    if sub:
        record = next((s for s in record[9] if s[0] == name), None)
        if record is None:
            return None
    return _decode(record)


def _own_record(cmd: Command) -> list:
    key_specs = SetReply()
    if cmd.first_key:
        flags = _OWN_KEY_FLAGS.get(cmd.name, ("RW", "update") if "write" in cmd.flags
                                   else ("RO", "access"))
        key_specs.append({
            "flags": SetReply(Simple(f) for f in flags),
            "begin_search": {"type": "index", "spec": {"index": cmd.first_key}},
            "find_keys": {"type": "range", "spec": {
                "lastkey": cmd.last_key - cmd.first_key if cmd.last_key >= 0 else -1,
                "keystep": cmd.step, "limit": 0}},
        })
    cats = ["@write" if "write" in cmd.flags else "@read", f"@{cmd.group}",
            "@fast" if "fast" in cmd.flags else "@slow"]
    return [cmd.name, cmd.arity, SetReply(Simple(f) for f in cmd.flags), cmd.first_key,
            cmd.last_key, cmd.step, SetReply(Simple(c) for c in cats), SetReply(),
            key_specs, SetReply()]


def _redis_docs(name: str) -> dict | None:
    """Redis' COMMAND DOCS map of `name` ("get", "config|get"), or None."""
    top, _, sub = name.partition("|")
    docs = _DOCS.get(top)
    if docs is not None and sub:
        subs = dict(next((v for k, v in docs["%"] if k == "subcommands"), {"%": []})["%"])
        docs = subs.get(name)
    return _decode(docs) if docs is not None else None


def command_docs(cmd: Command) -> dict:
    """The COMMAND DOCS map of `cmd`: Redis' own for a command Redis has (arguments,
    complexity, history ...), listing only the subcommands dynredis serves; else one
    made from the command table."""
    docs = _redis_docs(cmd.name)
    if docs is None:
        docs = {"summary": cmd.summary or cmd.name, "since": cmd.since, "group": cmd.group,
                "complexity": "O(1)", "arguments": []}
    docs.pop("subcommands", None)
    if cmd.subcommands:
        docs["subcommands"] = {s.name: command_docs(s)
                               for _, s in sorted(cmd.subcommands.items())}
    return docs


def command_info(cmd: Command) -> list:
    """The COMMAND INFO record of `cmd`, listing only the subcommands dynredis serves."""
    record = redis_record(cmd.name) or _own_record(cmd)
    subs = SetReply(command_info(s) for _, s in sorted(cmd.subcommands.items()))
    return [*record[:9], subs]


def spec_keys(name: str, words: list[bytes]) -> list[bytes] | None:
    """The keys among `words` (a command and its arguments) as Redis' key specs find
    them: what COMMAND GETKEYS answers for a command whose keys move (LMPOP's count of
    keys is an argument). None where Redis finds the arguments invalid (a key count
    that is not a positive number, or keys beyond the last argument), and for specs
    that start neither at a fixed index nor after a keyword (GEORADIUS ... STORE key)."""
    record = redis_record(name)
    if record is None or not record[8]:
        return None
    argc = len(words)
    keys: list[bytes] = []
    for spec in record[8]:
        begin, find = spec["begin_search"], spec["find_keys"]
        if begin["type"] == "keyword":
            found = _keyword(words, begin["spec"]["keyword"], begin["spec"]["startfrom"])
            if found is None:
                continue  # an optional key that is not there
            first = found + 1
        elif begin["type"] == "index":
            first = begin["spec"]["index"]
        else:
            return None
        how = find["spec"]
        if find["type"] == "range":
            last = first + how["lastkey"] if how["lastkey"] >= 0 else argc + how["lastkey"]
            step = how["keystep"]
        elif find["type"] == "keynum":
            at = first + how["keynumidx"]
            if at >= argc:
                return None
            raw = words[at]
            if not raw.lstrip(b"-").isdigit():
                return None
            first += how["firstkey"]
            last = first + int(raw) - 1
            step = how["keystep"]
        else:
            return None
        if first >= argc or last >= argc or last < first:
            return None
        keys.extend(words[first:last + 1:step])
    return keys


def _keyword(words: list[bytes], keyword: str, startfrom: int) -> int | None:
    """Where a keyword key spec finds its keyword, as Redis 7.0 searches (forward from
    `startfrom`, or backward from the end when it is negative; never the last word, a
    keyword with no key after it; compared as C strings, in any case)."""
    argc = len(words)
    want = keyword.lower().encode()
    if startfrom > 0:
        positions = range(startfrom, argc - 1)
    else:
        positions = range(argc + startfrom, 0, -1)
    for i in positions:
        if 1 <= i < argc and words[i].split(b"\0", 1)[0].lower() == want:
            return i
    return None
