"""Differential test of Lua scripting: the same scripts against a real `redis-server`, a
1-node and a 3-node dynredis, replies compared exactly as they come off the wire (see
test_differential.py, whose connections and servers this reuses).

Hypothesis builds scripts from pieces that exercise Redis' conversions both ways (Lua
numbers, strings, booleans, nil, tables, status and error tables, RESP3 types after
redis.setresp(3)), redis.call / redis.pcall and their errors, error positions, cjson,
bit and the sandbox; they run through EVAL, EVALSHA after SCRIPT LOAD and EVAL_RO, among
plain commands that change the keys they read. A fixed corpus adds scripts and FUNCTION
commands checked byte for byte, in RESP2 and in RESP3.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compat.test_differential import (  # noqa: F401  (targets is a fixture)
    SETTINGS,
    Cmd,
    Conn,
    Status,
    cmd,
    key,
    run,
    targets,
    value,
)
from tests.integration.conftest import HOST, resp_command

pytestmark = pytest.mark.timeout(600)

# --- scripts ---------------------------------------------------------------------------------

EXPRESSIONS = [
    "1", "-2.5", "3.99", "2^53", "1e300", "0/0", "'str'", "''", "true", "false", "nil",
    "{1, 'a', {2, false}, true}", "{1, nil, 3}", "{a = 1}", "{ok = 'fine'}", "{ok = 1}",
    "{err = 'ERR bad thing'}", "{err = 'MYCODE custom'}", "{ok = 'x', err = 'y'}",
    "{double = 1.5}", "{map = {a = 1}}", "{set = {x = true}}", "{big_number = '12345'}",
    "{verbatim_string = {format = 'txt', string = 'abc'}}",
    "redis.call('get', KEYS[1])", "redis.call('set', KEYS[1], ARGV[1])",
    "redis.call('set', KEYS[1], ARGV[1], 'NX')", "redis.call('getset', KEYS[1], 'g')",
    "redis.pcall('incr', KEYS[1])", "redis.call('incr', KEYS[2])",
    "redis.pcall('incrby', KEYS[1], ARGV[1])", "redis.call('del', KEYS[1], KEYS[2])",
    "redis.call('exists', KEYS[1], KEYS[2])", "redis.call('mget', KEYS[1], KEYS[2])",
    "redis.call('append', KEYS[2], ARGV[1])", "redis.call('strlen', KEYS[1])",
    "redis.call('ping')", "redis.call('echo', ARGV[1])", "redis.call('echo', 0.1)",
    "redis.call('echo', 12345678901234567)", "redis.pcall('nosuchcommand')",
    "redis.pcall('get')", "redis.pcall('multi')", "redis.pcall('set', KEYS[1], {})",
    "redis.pcall()", "redis.status_reply('STATUS')", "redis.error_reply('E failed')",
    "redis.error_reply('no code')", "redis.sha1hex(ARGV[1])",
    "cjson.encode({1, 2, {a = 'b'}})", "cjson.encode(ARGV)", "cjson.decode('[1,2,3]')",
    "cjson.decode('{\"k\": [true, null]}').k", "cjson.encode(1/3)",
    "bit.band(0xff, 7)", "bit.bxor(5, 3)", "bit.tohex(255)", "bit.lshift(1, 31)",
    "type(redis.call('get', KEYS[1]))", "tostring(redis.call('get', KEYS[2]))",
    "#KEYS", "#ARGV", "KEYS[1] .. ARGV[1]", "redis.REDIS_VERSION",
    "string.format('%d-%s', 7, 'x')", "table.concat({'a', 'b'}, ',')",
    "tonumber(ARGV[1])", "math.floor(10 / 3)",
]
FAILURES = [
    "error('boom')", "error({err = 'ERR table error'})", "error()",
    "redis.call('incr', 'skey')", "redis.call('nosuchcommand')", "redis.call('get')",
    "redis.call('set', KEYS[1], {})", "undefined_global", "x = 1", "redis.foo = 1",
    "string.x = 1", "local t = nil; local y = t.field", "redis.setresp(4)",
    "redis.sha1hex()", "redis.call()", "os.time()", "loadfile('x')",
    "cjson.decode('{bad')", "cjson.encode({[true] = 1})", "bit.band()",
]

expression = st.sampled_from(EXPRESSIONS)


@st.composite
def scripts(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.integers(0, 4)) == 0:
        lines.append("redis.setresp(3)")
    for i in range(draw(st.integers(0, 3))):
        lines.append(f"local v{i} = {draw(expression)}")
    if draw(st.integers(0, 5)) == 0:
        lines.append(draw(st.sampled_from(FAILURES)))
    if draw(st.booleans()):
        lines.append(f"return {draw(expression)}")
    elif lines and lines[-1].startswith("local v"):
        lines.append(f"return v{len([x for x in lines if x.startswith('local v')]) - 1}")
    elif draw(st.booleans()):
        lines.append(f"return pcall(function() return {draw(expression)} end)")
    else:
        lines.append(f"return {{{draw(expression)}, {draw(expression)}}}")
    return "\n".join(lines)


SHA_OF: dict[bytes, bytes] = {}


@st.composite
def script_commands(draw: st.DrawFn) -> Cmd:
    body = draw(scripts()).encode()
    numkeys = draw(st.integers(0, 2))
    keys = [draw(key) for _ in range(numkeys)]
    args = [draw(value | st.sampled_from([b"5", b"-3", b"abc"]))
            for _ in range(draw(st.integers(0, 2)))]
    how = draw(st.sampled_from(["EVAL", "EVAL", "EVALSHA", "EVAL_RO"]))
    if how == "EVALSHA":
        return (b"SCRIPT_LOAD_THEN_EVALSHA", body, b"%d" % numkeys, *keys, *args)
    return (how.encode(), body, b"%d" % numkeys, *keys, *args)


scripting = st.one_of(
    script_commands(), script_commands(), script_commands(),
    cmd("SET", key, value), cmd("SET", st.just(b"skey"), st.just(b"notanumber")),
    cmd("GET", key), cmd("INCR", key),
)


def _run(conns: list[Conn], cmds: Sequence[Cmd]) -> None:
    """EVALSHA of a script loaded right before: SCRIPT LOAD on every target, then the
    EVALSHA compared (its SHA1 is the same everywhere)."""
    expanded: list[Cmd] = []
    for c in cmds:
        if c[0] == b"SCRIPT_LOAD_THEN_EVALSHA":
            body = c[1]
            assert isinstance(body, bytes)
            expanded.append((b"SCRIPT", b"LOAD", body))
            expanded.append((b"EVALSHA", hashlib.sha1(body).hexdigest().encode(), *c[2:]))
        else:
            expanded.append(c)
    for t in conns:
        assert t.call(b"SCRIPT", b"FLUSH") == Status(b"OK")
    run(conns, expanded)


@pytest.mark.compat(client="differential", family="scripting")
@SETTINGS
@given(cmds=st.lists(scripting, min_size=1, max_size=8))
def test_scripting_differential(targets: list[Conn], cmds: list[Cmd]) -> None:  # noqa: F811
    _run(targets, cmds)


# --- a fixed corpus, byte for byte, RESP2 and RESP3 --------------------------------------------

LIB = (b"#!lua name=mylib\nlocal function f1(keys, args) return redis.call('get', keys[1]) end\n"
       b"redis.register_function('f1', f1)\nredis.register_function{function_name='f2', "
       b"callback=function(keys, args) return args[1] end, flags={'no-writes'}, "
       b"description='desc2'}\n")

CORPUS: list[tuple[bytes, ...]] = [
    (b"SET", b"cnt", b"5"),
    (b"EVAL", b"return redis.call('get', KEYS[1])", b"1", b"cnt"),
    (b"EVAL", b"return redis.call('incr', KEYS[1])", b"1", b"cnt"),
    (b"EVAL", b"return 1", b"-1"), (b"EVAL", b"return 1", b"2", b"a"),
    (b"EVAL", b"return 1", b"x"), (b"EVAL", b"return 1 +", b"0"),
    (b"EVALSHA", b"ffffffffffffffffffffffffffffffffffffffff", b"0"),
    (b"EVALSHA", b"fff", b"0"),
    (b"SCRIPT", b"LOAD", b"return 'loaded'"),
    (b"SCRIPT", b"EXISTS", hashlib.sha1(b"return 'loaded'").hexdigest().encode(), b"f" * 40),
    (b"EVALSHA", hashlib.sha1(b"return 'loaded'").hexdigest().upper().encode(), b"0"),
    (b"SCRIPT", b"LOAD", b"return 1 +"), (b"SCRIPT", b"KILL"), (b"SCRIPT", b"FLUSH", b"x"),
    (b"SCRIPT", b"FLUSH"),
    (b"SCRIPT", b"EXISTS", hashlib.sha1(b"return 'loaded'").hexdigest().encode()),
    (b"EVAL", b"#!lua flags=no-writes\nreturn redis.call('set', 'x', '1')", b"0"),
    (b"EVAL", b"#!lua flags=no-writes,bogus\nreturn 1", b"0"),
    (b"EVAL", b"#!lua foo=bar\nreturn 1", b"0"), (b"EVAL", b"#!python\nreturn 1", b"0"),
    (b"EVAL", b"#!lua", b"0"), (b"EVAL_RO", b"#!lua\nreturn 1", b"0"),
    (b"EVAL_RO", b"#!lua flags=no-writes\nreturn 1", b"0"),
    (b"EVAL_RO", b"return redis.call('set', 'x', '1')", b"0"),
    (b"EVAL", b"return redis.call('eval', 'return 1', 0)", b"0"),
    (b"EVAL", b"return coroutine.yield(1)", b"0"),
    (b"EVAL", b"local f = coroutine.wrap(function() return redis.call('get', 'cnt') end) "
              b"return f()", b"0"),
    (b"EVAL", b"return loadstring(string.dump(function() return 1 end))", b"0"),
    (b"EVAL", b"return loadstring('return 1 + 1')()", b"0"),
    (b"EVAL", b"local t = {} for k in pairs(redis) do t[#t + 1] = k end table.sort(t) "
              b"return t", b"0"),
    (b"EVAL", b"local t = {} for k in pairs(string) do t[#t + 1] = k end table.sort(t) "
              b"return t", b"0"),
    (b"EVAL", b"return redis.setresp(3) or redis.call('get', 'nokey')", b"0"),
    (b"EVAL", b"redis.setresp(3) return {redis.call('get', 'nokey'), 1}", b"0"),
    (b"EVAL", b"redis.setresp(3) return {double = 2.5}", b"0"),
    (b"EVAL", b"redis.setresp(3) return {map = {a = {1, 2}}}", b"0"),
    (b"EVAL", b"redis.setresp(3) return false", b"0"),
    (b"EVAL", b"return false", b"0"),
    (b"EVAL", b"return {1, false, nil}", b"0"),
    (b"FUNCTION", b"FLUSH"),
    (b"FUNCTION", b"LOAD", LIB), (b"FUNCTION", b"LOAD", LIB),
    (b"FUNCTION", b"LOAD", b"REPLACE", LIB),
    (b"FCALL", b"f1", b"1", b"cnt"), (b"FCALL", b"f2", b"0", b"x"),
    (b"FCALL_RO", b"f1", b"1", b"cnt"), (b"FCALL_RO", b"f2", b"0", b"x"),
    (b"FCALL", b"nof", b"0"), (b"FCALL", b"f1", b"2", b"x"), (b"FCALL", b"f1", b"x"),
    (b"FUNCTION", b"STATS"),
    (b"FUNCTION", b"LOAD", b"#!lua name=bad\nreturn 1"),
    (b"FUNCTION", b"LOAD", b"return 1"), (b"FUNCTION", b"LOAD", b"#!lua\nreturn 1"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x\nredis.register_function('f1', function() end)"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x\nredis.call('ping')"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x\nredis.register_function('f-1!', function() end)"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x\nredis.register_function('fx', function() end, 1)"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x\nredis.register_function{function_name='fx', "
                           b"callback=function() end, flags={'bad'}}"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x foo=bar\nredis.register_function('fx', "
                           b"function() end)"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x\nredis.register_function('fx', function() end) "
                           b"x = 1"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x\nlocal a = 1 +"),
    (b"FUNCTION", b"LOAD", b"#!lua name=x\nredis.register_function('fx', "
                           b"function() return y end)"),
    (b"FCALL", b"fx", b"0"),
    (b"FUNCTION", b"DELETE", b"x"), (b"FUNCTION", b"DELETE", b"x"),
    (b"FUNCTION", b"RESTORE", b"garbage"), (b"FUNCTION", b"KILL"),
    (b"FUNCTION", b"LOAD", b"bogus", b"x"), (b"FUNCTION", b"LIST", b"bogus"),
    (b"FUNCTION", b"LIST", b"LIBRARYNAME", b"nomatch*"),
    (b"FUNCTION", b"FLUSH"), (b"FUNCTION", b"LIST"),
]


def _raw(sock: socket.socket, *args: bytes) -> bytes:
    """One command's reply, raw (the corpus avoids replies whose size is unknown)."""
    sock.sendall(resp_command(*args))
    sock.sendall(resp_command(b"ECHO", b"--end-of-reply--"))
    data = b""
    end = b"$16\r\n--end-of-reply--\r\n"
    while not data.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data[:-len(end)]


@pytest.mark.compat(client="differential", family="scripting")
@pytest.mark.parametrize("proto", [2, 3])
def test_scripting_corpus(targets: list[Conn], proto: int) -> None:  # noqa: F811
    socks = [socket.create_connection((HOST, t.port), timeout=10) for t in targets]
    try:
        for s in socks:
            _raw(s, b"HELLO", b"%d" % proto)
            _raw(s, b"FLUSHALL")
            _raw(s, b"SCRIPT", b"FLUSH")
        for args in CORPUS:
            want = _raw(socks[0], *args)
            for t, s in zip(targets[1:], socks[1:], strict=True):
                got = _raw(s, *args)
                assert got == want, (f"{t.name} differs from redis-server on {args!r}:\n"
                                     f"  redis-server: {want!r}\n  {t.name}: {got!r}")
    finally:
        for s in socks:
            s.close()

