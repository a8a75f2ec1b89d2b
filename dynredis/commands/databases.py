"""Numbered databases (SELECT 0..15) as key namespaces over the one cluster keyspace.

A connection's database is `Context.db`. The cluster stores one keyspace; the key a
command names in database `db` is stored as `storage_key(db, key)`:

    database 0      the key itself (data written before databases existed is db 0's);
    database 1..15  MARK + the database's byte + the key.

A database-0 key that happens to begin with MARK is stored as MARK + b"\\0" + the key,
so the mapping is a bijection: no key of one database can be mistaken for another's,
whatever bytes users pick. MARK holds no '{' (a key's hash tag stays its own) and no
glob character.

The mapping is applied where a command's words reach its handler (`map_args`: the key
positions Redis' key specs name, SORT's BY/GET patterns, COPY's DB option) and undone
where stored keys come back out (`user_key`, `shown`: SCAN, KEYS, RANDOMKEY, the key a
pop names). Placement, storage, replication, anti-entropy and handoff see storage keys
and never need to know.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from ..core.keycounts import MARK
from .metadata import redis_record
from .table import Command, parse_int

DATABASES = 16
_LEN: Final = len(MARK)
_ESCAPED = MARK + b"\x00"
_PREFIX: Final = tuple(MARK + bytes([n]) for n in range(DATABASES))

ERR_DB_RANGE = "ERR DB index is out of range"

# Commands whose keys a script sees as the client named them: the script's own calls are
# mapped (scripting/calls.py), its gates and routing use `storage_key`.
SCRIPTS: Final = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
# Commands with more than keys to map: SORT's patterns, COPY's DB option.
_SPECIAL: Final = frozenset({"sort", "sort_ro", "copy"})


def storage_key(db: int, key: bytes) -> bytes:
    """The key under which database `db`'s `key` is stored."""
    if db == 0:
        return _ESCAPED + key if key[:_LEN] == MARK else key
    return _PREFIX[db] + key


def user_key(stored: bytes) -> tuple[int, bytes]:
    """(database, key) of a stored key."""
    if stored[:_LEN] != MARK or len(stored) == _LEN:
        return 0, stored
    return stored[_LEN], stored[_LEN + 1:]


def shown(stored: bytes) -> bytes:
    """The key as its database's clients name it (a pop's reply, a notification)."""
    if stored[:_LEN] != MARK:
        return stored
    return user_key(stored)[1]


def in_db(stored: bytes, db: int) -> bytes | None:
    """The key as database `db` names it, or None if the stored key is another
    database's."""
    d, key = user_key(stored)
    return key if d == db else None


def parse_db(raw: bytes) -> int | str:
    """A database index argument (SELECT, MOVE, COPY ... DB): the index, or Redis'
    error text (an integer, then a C int, then a database)."""
    n = parse_int(raw)
    if n is None:
        return "ERR value is not an integer or out of range"
    if not -(2**31) <= n < 2**31:
        return "ERR value is out of range, value must between -2147483648 and 2147483647"
    if not 0 <= n < DATABASES:
        return ERR_DB_RANGE
    return n


# --- where a command's keys are ---------------------------------------------------------


@cache
def _specs(name: str) -> tuple | None:
    """The key specs of a command as tuples (begin type, its arg, find type, a, b, c), or
    None when Redis has no record of it."""
    record = redis_record(name)
    if record is None:
        return None
    out: list[tuple] = []
    for spec in record[8]:
        begin, find = spec["begin_search"], spec["find_keys"]
        bs, fs = begin["spec"], find["spec"]
        b: tuple
        if begin["type"] == "index":
            b = ("index", bs["index"], 0)
        elif begin["type"] == "keyword":
            b = ("keyword", bs["keyword"].lower().encode(), bs["startfrom"])
        else:
            continue
        f: tuple
        if find["type"] == "range":
            f = ("range", fs["lastkey"], fs["keystep"])
        elif find["type"] == "keynum":
            f = ("keynum", fs["keynumidx"], fs["firstkey"], fs["keystep"])
        else:
            continue
        out.append(b + f)
    return tuple(out)


_ONE_KEY: Final[dict[str, int]] = {}


def _one_key(cmd: Command) -> int:
    """The index of a command's only key, if it always has exactly one at a fixed index
    (GET, SET, INCR, HSET ...), else 0."""
    if cmd.subcommands or cmd.name in _SPECIAL or cmd.name in SCRIPTS:
        return 0
    specs = _specs(cmd.name)
    if specs is None:
        return cmd.first_key if cmd.first_key and cmd.last_key == cmd.first_key else 0
    if len(specs) == 1 and specs[0][0] == "index" and specs[0][3] == "range" \
            and specs[0][4] == 0:
        return int(specs[0][1])
    return 0


def _keyword(words: list[bytes], want: bytes, startfrom: int) -> int | None:
    argc = len(words)
    positions = range(startfrom, argc - 1) if startfrom > 0 else range(argc + startfrom, 0, -1)
    for i in positions:
        if 1 <= i < argc and words[i].split(b"\0", 1)[0].lower() == want:
            return i
    return None


def key_positions(cmd: Command, words: list[bytes]) -> list[int]:
    """The indexes of `words` that are keys (those Redis' key specs find; for a command
    Redis lacks, its first/last/step). Empty when the arguments are invalid: the handler
    refuses them before touching a key."""
    name = cmd.name
    if cmd.subcommands and len(words) > 1:
        sub = cmd.subcommands.get(words[1].decode("utf-8", "replace").lower())
        if sub is None:
            return []
        cmd, name = sub, sub.name
    specs = _specs(name)
    argc = len(words)
    if specs is None:
        if not cmd.first_key:
            return []
        last = cmd.last_key if cmd.last_key >= 0 else argc + cmd.last_key
        return list(range(cmd.first_key, min(last, argc - 1) + 1, cmd.step or 1))
    out: list[int] = []
    for spec in specs:
        if spec[0] == "keyword":
            found = _keyword(words, spec[1], spec[2])
            if found is None:
                continue
            first = found + 1
        else:
            first = spec[1]
        if spec[3] == "range":
            last = first + spec[4] if spec[4] >= 0 else argc + spec[4]
            step = spec[5]
        else:
            at = first + spec[4]
            n = parse_int(words[at]) if at < argc else None
            if n is None or n <= 0:
                return []
            first += spec[5]
            last = first + n - 1
            step = spec[6]
        if first >= argc or last >= argc or last < first:
            return []
        out.extend(range(first, last + 1, step or 1))
    return out


def map_args(cmd: Command, words: list[bytes], db: int, cluster: bool = False) -> list[bytes]:
    """The command's words with its keys (and key patterns) as stored for database
    `db`: the same list when nothing changes (database 0, the common case). `cluster`:
    on the cluster port, where no other database may be named (COPY ... DB n is left
    for the command to refuse)."""
    name = cmd.name
    if db == 0:
        # the common case, on every request's path: a command of one key, not escaped
        at = _ONE_KEY.get(name)
        if at is None:
            at = _ONE_KEY[name] = _one_key(cmd)
        if at:
            if len(words) <= at or not words[at].startswith(MARK):
                return words
        elif name not in _SPECIAL:
            for w in words:
                if w.startswith(MARK):
                    break
            else:
                return words
    else:
        at = _ONE_KEY.get(name)
        if at is None:
            at = _ONE_KEY[name] = _one_key(cmd)
        if at:
            if len(words) <= at:
                return words
            out = list(words)
            out[at] = _PREFIX[db] + words[at]
            return out
    special = name in _SPECIAL
    if name in SCRIPTS:
        return words
    positions = key_positions(cmd, words)
    if not positions and not special:
        return words
    out = list(words)
    for i in positions:
        out[i] = storage_key(db, words[i])
    if special:
        _map_special(name, out, db, cluster, positions)
    return out


def _map_special(name: str, out: list[bytes], db: int, cluster: bool,
                 positions: list[int]) -> None:
    if name in ("sort", "sort_ro"):
        # BY and GET patterns name keys of the same database ('#' is the element).
        i = 2
        while i < len(out) - 1:
            word = out[i].lower()
            if word in (b"by", b"get"):
                pattern = out[i + 1]
                if not (word == b"get" and pattern == b"#"):
                    out[i + 1] = storage_key(db, pattern)
                i += 2
            elif word == b"limit":
                i += 3
            elif word == b"store":
                # STORE's key (Redis' key specs leave SORT's movable keys unknown)
                if i + 1 not in positions:
                    out[i + 1] = storage_key(db, out[i + 1])
                i += 2
            else:
                i += 1
    elif name == "copy" and not cluster:
        # COPY src dst DB n: the destination is database n's; the handler then copies
        # within one keyspace (DB 0 for it).
        for i in range(3, len(out) - 1):
            if out[i].upper() == b"DB":
                target = parse_db(out[i + 1])
                if isinstance(target, int) and len(out) > 2:
                    out[2] = storage_key(target, user_key(out[2])[1])
                    out[i + 1] = b"0"
                break
