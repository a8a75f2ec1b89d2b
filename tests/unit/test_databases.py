"""Numbered databases as key namespaces (commands/databases.py): the stored key of each
database's key, and the words a handler gets for the selected database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dynredis.commands import databases as dbs
from dynredis.commands.databases import MARK, map_args, parse_db, shown, storage_key, user_key
from dynredis.commands.table import lookup
from dynredis.core.keyslot import key_slot

keys = st.one_of(st.binary(max_size=12), st.binary(max_size=6).map(lambda b: MARK + b))
db_numbers = st.integers(0, dbs.DATABASES - 1)


@given(db_numbers, keys)
def test_a_stored_key_names_its_database_and_key(db: int, key: bytes) -> None:
    assert user_key(storage_key(db, key)) == (db, key)
    assert shown(storage_key(db, key)) == key


@given(db_numbers, keys, db_numbers, keys)
def test_no_two_databases_keys_are_stored_alike(db1: int, k1: bytes, db2: int, k2: bytes) -> None:
    if (db1, k1) != (db2, k2):
        assert storage_key(db1, k1) != storage_key(db2, k2)


def test_database_0_is_stored_as_before() -> None:
    assert storage_key(0, b"user:1") == b"user:1"
    assert user_key(b"user:1") == (0, b"user:1")
    # the one exception: a database-0 key that starts like another database's
    assert storage_key(0, MARK + b"\x03x") == MARK + b"\x00" + MARK + b"\x03x"


@given(db_numbers, st.binary(max_size=8), st.binary(min_size=1, max_size=8).filter(
    lambda t: b"{" not in t and b"}" not in t))
def test_a_hash_tag_keeps_its_slot_in_every_database(db: int, head: bytes, tag: bytes) -> None:
    key = head.replace(b"{", b"") + b"{" + tag + b"}"
    assert key_slot(storage_key(db, key)) == key_slot(key)


def words(*w: str) -> list[bytes]:
    return [x.encode() for x in w]


def mapped(db: int, *w: str) -> list[bytes]:
    args = words(*w)
    cmd = lookup(args[0])
    assert cmd is not None
    return map_args(cmd, args, db)


def k(db: int, key: str) -> bytes:
    return storage_key(db, key.encode())


def test_database_0_words_are_passed_on_untouched() -> None:
    args = words("SET", "a", "1")
    cmd = lookup(b"SET")
    assert cmd is not None
    assert map_args(cmd, args, 0) is args


def test_keys_are_mapped_where_the_key_specs_name_them() -> None:
    assert mapped(3, "SET", "a", "1") == [b"SET", k(3, "a"), b"1"]
    assert mapped(3, "MSET", "a", "1", "b", "2") == [b"MSET", k(3, "a"), b"1", k(3, "b"), b"2"]
    assert mapped(3, "DEL", "a", "b") == [b"DEL", k(3, "a"), k(3, "b")]
    assert mapped(2, "ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2") == \
        [b"ZUNIONSTORE", k(2, "d"), b"2", k(2, "a"), k(2, "b"), b"WEIGHTS", b"1", b"2"]
    assert mapped(2, "LMPOP", "2", "a", "b", "LEFT") == \
        [b"LMPOP", b"2", k(2, "a"), k(2, "b"), b"LEFT"]
    assert mapped(1, "BITOP", "AND", "d", "a") == [b"BITOP", b"AND", k(1, "d"), k(1, "a")]
    assert mapped(1, "MEMORY", "USAGE", "a") == [b"MEMORY", b"USAGE", k(1, "a")]
    assert mapped(5, "GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d") == \
        [b"GEORADIUS", k(5, "g"), b"0", b"0", b"1", b"km", b"STORE", k(5, "d")]
    assert mapped(5, "GETCTX", "a") == [b"GETCTX", k(5, "a")]


def test_database_0_keys_that_start_like_another_database_are_escaped() -> None:
    key = (MARK + b"\x01x").decode("latin-1")
    args = [b"GET", key.encode("latin-1")]
    cmd = lookup(b"GET")
    assert cmd is not None
    assert map_args(cmd, args, 0) == [b"GET", MARK + b"\x00" + MARK + b"\x01x"]


def test_invalid_key_counts_leave_the_words_to_the_handler_to_refuse() -> None:
    assert mapped(2, "LMPOP", "5", "a", "LEFT") == words("LMPOP", "5", "a", "LEFT")
    assert mapped(2, "LMPOP", "x", "a", "LEFT") == words("LMPOP", "x", "a", "LEFT")


def test_a_scripts_keys_are_left_as_named() -> None:
    # the script sees its KEYS as the client named them; its calls are mapped
    assert mapped(4, "EVAL", "return 1", "1", "a") == words("EVAL", "return 1", "1", "a")


def test_database_indexes_are_checked_as_redis_checks_them() -> None:
    assert parse_db(b"0") == 0 and parse_db(b"15") == 15
    assert parse_db(b"16") == "ERR DB index is out of range"
    assert parse_db(b"-1") == "ERR DB index is out of range"
    assert parse_db(b"x") == "ERR value is not an integer or out of range"
    assert parse_db(b"01") == "ERR value is not an integer or out of range"
    assert parse_db(b"4294967296") == \
        "ERR value is out of range, value must between -2147483648 and 2147483647"
def test_sort_patterns_name_keys_of_the_same_database() -> None:
    assert mapped(3, "SORT", "l", "BY", "w_*", "GET", "#", "GET", "h_*->f", "LIMIT", "0",
                  "5", "STORE", "d") == \
        [b"SORT", k(3, "l"), b"BY", k(3, "w_*"), b"GET", b"#", b"GET", k(3, "h_*->f"),
         b"LIMIT", b"0", b"5", b"STORE", k(3, "d")]




def test_blocking_pops_and_watch_name_keys_of_the_same_database() -> None:
    assert mapped(3, "BLPOP", "a", "b", "0") == [b"BLPOP", k(3, "a"), k(3, "b"), b"0"]
    assert mapped(3, "BLMPOP", "1", "2", "a", "b", "LEFT", "COUNT", "2") == \
        [b"BLMPOP", b"1", b"2", k(3, "a"), k(3, "b"), b"LEFT", b"COUNT", b"2"]
    assert mapped(3, "BZMPOP", "1", "1", "z", "MIN") == [b"BZMPOP", b"1", b"1", k(3, "z"), b"MIN"]
    assert mapped(3, "BLMOVE", "a", "b", "LEFT", "RIGHT", "0") == \
        [b"BLMOVE", k(3, "a"), k(3, "b"), b"LEFT", b"RIGHT", b"0"]
    assert mapped(5, "WATCH", "a", "b") == [b"WATCH", k(5, "a"), k(5, "b")]
