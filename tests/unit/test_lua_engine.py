"""The Lua bridge without a node: conversions both ways, the sandbox, errors and where
they happened, pcall and coroutines around redis.call, cjson, bit and SCRIPT KILL.

The expected replies are redis-server 7.0's (the differential test in compat/ checks the
same against a live one); commands are answered by a small stand-in for the node."""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from dynredis.scripting.luaengine import LuaEngine, Run
from dynredis.scripting.worker import LuaWorker


class FakeNode:
    """GET, SET, INCR, PING, ECHO, MGET and HELLO-less RESP3 nulls, enough for scripts."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.seen: list[list[bytes]] = []

    def __call__(self, proto: int, args: list[bytes]) -> bytes:
        self.seen.append(args)
        name = args[0].lower()
        nil = b"_\r\n" if proto == 3 else b"$-1\r\n"
        if name == b"get":
            v = self.data.get(args[1])
            return nil if v is None else b"$%d\r\n%b\r\n" % (len(v), v)
        if name == b"set":
            self.data[args[1]] = args[2]
            return b"+OK\r\n"
        if name == b"incr":
            v = self.data.get(args[1], b"0")
            if not v.lstrip(b"-").isdigit():
                return b"-ERR value is not an integer or out of range\r\n"
            self.data[args[1]] = b"%d" % (int(v) + 1)
            return b":%d\r\n" % (int(v) + 1)
        if name == b"ping":
            return b"+PONG\r\n"
        if name == b"echo":
            return b"$%d\r\n%b\r\n" % (len(args[1]), args[1])
        if name == b"mget":
            parts = []
            for k in args[1:]:
                v = self.data.get(k)
                parts.append(nil if v is None else b"$%d\r\n%b\r\n" % (len(v), v))
            return b"*%d\r\n" % len(parts) + b"".join(parts)
        if name == b"hgetall":
            return b"%0\r\n" if proto == 3 else b"*0\r\n"
        return b"-ERR Unknown Redis command called from script\r\n"


@pytest.fixture(scope="module")
def engine() -> LuaEngine:
    return LuaEngine()


def run(engine: LuaEngine, body: str | bytes, keys: tuple[str, ...] = (),
        args: tuple[str, ...] = (), caller: int = 2,
        node: Callable[[int, list[bytes]], Any] | None = None) -> bytes:
    raw = body.encode() if isinstance(body, str) else body
    r = Run("script", hashlib.sha1(raw).hexdigest(), [k.encode() for k in keys],
            [a.encode() for a in args], caller, False)
    r.body = raw
    node = node or FakeNode()
    out: list[bytes] = []
    asked: list[tuple[int, list[bytes]]] = []
    r.on_call = lambda kind, proto, a: asked.append((proto, a))
    r.on_done = out.append
    engine.start(r)
    while asked:
        proto, a = asked.pop()
        engine.resume(r, node(proto, a))
    assert len(out) == 1
    return out[0]


def sha(body: str) -> str:
    return hashlib.sha1(body.encode()).hexdigest()


# --- Lua values to the caller's RESP -----------------------------------------------------

@pytest.mark.parametrize("body, caller, reply", [
    ("return {1,2,{3,'x'},false,true}", 2, b"*5\r\n:1\r\n:2\r\n*2\r\n:3\r\n$1\r\nx\r\n$-1\r\n:1\r\n"),
    ("return {1,2,{3,'x'},false,true}", 3, b"*5\r\n:1\r\n:2\r\n*2\r\n:3\r\n$1\r\nx\r\n_\r\n:1\r\n"),
    ("return 3.99", 2, b":3\r\n"),
    ("return -3.99", 2, b":-3\r\n"),
    ("return 2^53", 2, b":9007199254740992\r\n"),
    ("return {1,2,3,nil,5}", 2, b"*3\r\n:1\r\n:2\r\n:3\r\n"),
    ("return {a=1}", 2, b"*0\r\n"),
    ("return {ok=1}", 2, b"*0\r\n"),
    ("return {ok='x', err='y'}", 2, b"-y\r\n"),
    ("return {ok='fine'}", 2, b"+fine\r\n"),
    ("return 'abc', 'def'", 2, b"$3\r\nabc\r\n"),
    ("return", 2, b"$-1\r\n"),
    ("return", 3, b"_\r\n"),
    ("return {double=1.5}", 2, b"$3\r\n1.5\r\n"),
    ("return {map={a=1}}", 3, b"%1\r\n$1\r\na\r\n:1\r\n"),
    ("return {map={a=1}}", 2, b"*2\r\n$1\r\na\r\n:1\r\n"),
    ("redis.setresp(3) return false", 3, b"#f\r\n"),
    ("redis.setresp(3) return true", 2, b":1\r\n"),
    ("redis.setresp(3) return false", 2, b":0\r\n"),
    ("redis.setresp(3) return {double=1.5}", 3, b",1.5\r\n"),
    ("redis.setresp(3) return {set={a=true}}", 3, b"~1\r\n$1\r\na\r\n"),
    ("redis.setresp(3) return {big_number='123'}", 3, b"(123\r\n"),
    ("redis.setresp(3) return {verbatim_string={format='txt',string='abc'}}", 3,
     b"=7\r\ntxt:abc\r\n"),
    ("return redis.error_reply('FOO bar')", 2, b"-FOO bar\r\n"),
    ("return redis.error_reply('bar')", 2, b"-ERR bar\r\n"),
    ("return redis.error_reply('-FOO bar')", 2, b"-FOO bar\r\n"),
    ("return redis.status_reply(5)", 2, b"-ERR wrong number or type of arguments\r\n"),
    ("return redis.sha1hex('')", 2, b"$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"),
    ("return redis.REDIS_VERSION", 2, b"$6\r\n7.0.15\r\n"),
])
def test_lua_values_become_redis_replies(engine: LuaEngine, body: str, caller: int,
                                         reply: bytes) -> None:
    assert run(engine, body, caller=caller) == reply


# --- replies to Lua values ---------------------------------------------------------------

def test_command_replies_become_lua_values(engine: LuaEngine) -> None:
    node = FakeNode()
    assert run(engine, "return type(redis.call('get', 'nokey'))", node=node) == \
        b"$7\r\nboolean\r\n"
    assert run(engine, "redis.setresp(3) return type(redis.call('get', 'nokey'))",
               node=node) == b"$3\r\nnil\r\n"
    assert run(engine, "return redis.call('set', 'k', 'v')", node=node) == b"+OK\r\n"
    assert run(engine, "local r = redis.call('set', 'k', 'v') return r.ok", node=node) == \
        b"$2\r\nOK\r\n"
    assert run(engine, "return redis.call('incr', 'n') + 10", node=node) == b":11\r\n"
    assert run(engine, "return redis.call('mget', 'k', 'x')", node=node) == \
        b"*2\r\n$1\r\nv\r\n$-1\r\n"
    assert run(engine, "redis.setresp(3) return type(redis.call('hgetall', 'h').map)",
               node=node) == b"$5\r\ntable\r\n"


class PartsNode(FakeNode):
    """Answers in parts, as a node hands a script a reply made over its loop's turns (a
    large value copied from the store a slice a turn): the bytes cut every `cut`."""

    def __init__(self, cut: int) -> None:
        super().__init__()
        self.cut = cut

    def __call__(self, proto: int, args: list[bytes]) -> list[bytes]:  # type: ignore[override]
        whole = super().__call__(proto, args)
        return [whole[i:i + self.cut] for i in range(0, len(whole), self.cut)] + [b""]


@pytest.mark.parametrize("cut", [1, 3, 7, 1000])
def test_a_reply_in_parts_becomes_the_lua_value_of_the_whole(engine: LuaEngine,
                                                             cut: int) -> None:
    """A reply handed over in parts (streamed.gather's list) is the value its joined
    bytes are, however it is cut: a bulk string's framing alone in its first and last
    part, or cut anywhere; an array; an error (raised, or pcall's table)."""
    node = PartsNode(cut)
    value = bytes(range(256)) * 3
    node.data[b"k"] = value
    node.data[b"s"] = b"str"
    assert run(engine, "return redis.call('get', 'k')", node=node) == \
        b"$%d\r\n%b\r\n" % (len(value), value)
    assert run(engine, "return #redis.call('get', 'k')", node=node) == b":%d\r\n" % len(value)
    assert run(engine, "return redis.call('mget', 'k', 'x', 's')", node=node) == \
        b"*3\r\n$%d\r\n%b\r\n$-1\r\n$3\r\nstr\r\n" % (len(value), value)
    assert run(engine, "return redis.pcall('incr', 's')", node=node) == \
        b"-ERR value is not an integer or out of range\r\n"
    assert run(engine, "local f = coroutine.wrap(function() return redis.call('get', 'k') end)"
               " return #f()", node=node) == b":%d\r\n" % len(value)


def test_a_bulk_reply_framed_in_parts_of_its_own(engine: LuaEngine) -> None:
    """GET's reply of a value pinned in the store, as gather hands it: its framing, the
    value's slices, the closing CRLF."""
    value = b"x" * 10 + b"\r\n" + b"y" * 10
    parts = [b"$22\r\n", value[:10], value[10:], b"\r\n"]
    assert run(engine, "return redis.call('get', 'k')", node=lambda proto, a: parts) == \
        b"$22\r\n" + value + b"\r\n"
    assert run(engine, "return {redis.call('get', 'k'), redis.call('get', 'k')}",
               node=lambda proto, a: list(parts)) == \
        b"*2\r\n" + (b"$22\r\n" + value + b"\r\n") * 2


def test_a_long_reply_leaves_lua_a_part_at_a_time() -> None:
    """A script's reply of over 1 MiB is the bytes it would be at once, taken out of Lua
    1 MiB a call (Python copies a Lua string holding the GIL: a 100 MiB reply at once
    held the node's event loop 100 ms or more), a short one whole."""
    engine = LuaEngine()
    taken: list[int] = []
    take = engine._result_part

    def counted(lua_run: object) -> bytes | None:
        part: bytes | None = take(lua_run)
        if part is not None:
            taken.append(len(part))
        return part

    engine._result_part = counted  # type: ignore[method-assign]
    mib = 1 << 20
    for size in (mib, mib + 1, 3 * mib + 5):
        taken.clear()
        n = size - len(b"$%d\r\n\r\n" % size)  # (the reply's size, framed)
        got = run(engine, f"return string.rep('ab', {n // 2}) .. string.rep('c', {n % 2})")
        value = b"ab" * (n // 2) + b"c" * (n % 2)
        assert got == b"$%d\r\n%b\r\n" % (n, value), size
        assert sum(taken) == (0 if len(got) <= mib else len(got)), size
        assert max(taken, default=0) <= mib
        assert len(taken) == (0 if len(got) <= mib else 2 if n <= mib else 5), size
    node = FakeNode()
    node.data[b"k"] = b"v" * (2 * mib)
    taken.clear()
    got = run(engine, "return {redis.call('get', 'k'), 'x'}", node=node)
    assert got == b"*2\r\n$%d\r\n%b\r\n$1\r\nx\r\n" % (2 * mib, b"v" * (2 * mib))
    # (the value's slices, and the short pieces before and after it, each joined)
    assert taken == [len(b"*2\r\n$%d\r\n" % (2 * mib)), mib, mib, len(b"\r\n$1\r\nx\r\n")]
    taken.clear()
    got = run(engine, "local t = {} for i = 1, 200000 do t[i] = 'item' .. i end return t")
    assert got == b"*200000\r\n" + b"".join(b"$%d\r\n%b\r\n" % (len(b"item%d" % i), b"item%d" % i)
                                         for i in range(1, 200001))
    assert sum(taken) == len(got) and max(taken) <= mib and len(taken) == -(-len(got) // mib)


def test_numbers_reach_commands_as_redis_formats_them(engine: LuaEngine) -> None:
    node = FakeNode()
    run(engine, "return redis.call('ping', 1.5, 0.1, 12345678901234567, -0.0, 1e20, 3)",
        node=node)
    assert node.seen[-1] == [b"ping", b"1.5", b"0.10000000000000001", b"12345678901234568",
                             b"-0", b"1e+20", b"3"]


def test_keys_and_argv(engine: LuaEngine) -> None:
    assert run(engine, "return {KEYS[1], ARGV[2], #KEYS, #ARGV}", ("k1", "k2"),
               ("a", "b")) == b"*4\r\n$2\r\nk1\r\n$1\r\nb\r\n:2\r\n:2\r\n"


# --- errors, and where they happened ------------------------------------------------------

def test_errors_say_where_they_happened(engine: LuaEngine) -> None:
    node = FakeNode()
    node.data[b"s"] = b"str"
    body = "return redis.call('incr', 's')"
    assert run(engine, body, node=node) == (
        b"-ERR value is not an integer or out of range script: " + sha(body).encode()
        + b", on @user_script:1.\r\n")
    body = "local x = 1\n\nerror('boom')"
    assert run(engine, body) == (b"-ERR user_script:3: boom script: " + sha(body).encode()
                                 + b", on @user_script:3.\r\n")
    body = "error({err='MYERR boom'})"
    assert run(engine, body) == (b"-MYERR boom script: " + sha(body).encode()
                                 + b", on @user_script:1.\r\n")
    assert run(engine, "return redis.pcall('incr', 's')", node=node) == \
        b"-ERR value is not an integer or out of range\r\n"
    assert run(engine, "return 1 +") == (b"-ERR Error compiling script (new function): "
                                         b"user_script:1: unexpected symbol near '<eof>'\r\n")
    body = "return redis.call('set', 'k', {})"
    assert run(engine, body) == (b"-ERR Lua redis lib command arguments must be strings or "
                                 b"integers script: " + sha(body).encode()
                                 + b", on @user_script:1.\r\n")


def test_pcall_and_coroutines_let_redis_call_through(engine: LuaEngine) -> None:
    node = FakeNode()
    assert run(engine, "local ok, v = pcall(function() return redis.call('set', 'p', 'v') end)"
               " return {tostring(ok), v}", node=node) == b"*2\r\n$4\r\ntrue\r\n+OK\r\n"
    assert node.data[b"p"] == b"v"
    assert run(engine, "local f = coroutine.wrap(function() return redis.call('get', 'p') end)"
               " return f()", node=node) == b"$1\r\nv\r\n"
    # Redis' pcall hands back an error table's message
    assert run(engine, "local ok, e = pcall(redis.call, 'nosuch') return e", node=node) == \
        b"$44\r\nERR Unknown Redis command called from script\r\n"
    assert run(engine, "local ok, e = pcall(error, {err='X y'}) return e") == b"$3\r\nX y\r\n"
    # a loop of calls inside one pcall does not grow the stack
    assert run(engine, "return pcall(function() for i = 1, 3000 do redis.call('incr', 'n') end"
               " return redis.call('get', 'n') end)", node=node) == b":1\r\n"
    assert node.data[b"n"] == b"3000"


# --- the sandbox ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["os", "io", "loadfile", "dofile", "require", "debug",
                                  "package", "module", "setfenv", "getfenv", "newproxy",
                                  "print", "python"])
def test_dangerous_globals_are_gone(engine: LuaEngine, name: str) -> None:
    body = f"return {name}"
    assert run(engine, body) == (
        f"-ERR user_script:1: Script attempted to access nonexistent global variable "
        f"'{name}' script: {sha(body)}, on @user_script:1.\r\n".encode())


def test_scripts_cannot_create_globals_or_change_libraries(engine: LuaEngine) -> None:
    for body in ("x = 1", "redis = nil", "string.foo = 1", "cjson.encode = nil",
                 "getmetatable('').__index = nil"):
        assert run(engine, body).startswith(
            b"-ERR user_script:1: Attempt to modify a readonly table"), body
    assert run(engine, "rawset(_G, 'x', 1)").startswith(
        b"-ERR Attempt to modify a readonly table script:")
    assert run(engine, "return setmetatable(_G, nil)").startswith(
        b"-ERR Attempt to modify a readonly table script:")
    # nothing leaked into the next script
    assert run(engine, "return rawget(_G, 'x')") == b"$-1\r\n"
    assert run(engine, "return type(string.rep)") == b"$8\r\nfunction\r\n"


def test_bytecode_is_never_loaded_and_loaded_code_stays_sandboxed(engine: LuaEngine) -> None:
    assert run(engine, "return loadstring(string.dump(function() return 1 end))") == \
        b"$-1\r\n"
    assert run(engine, "return loadstring('return 1 + 1')()") == b":2\r\n"
    assert run(engine, "return loadstring('return os')()").startswith(
        b"-ERR [string \"return os\"]:1: Script attempted to access nonexistent global")
    assert run(engine, "return loadstring('x = 5')()").startswith(
        b"-ERR [string \"x = 5\"]:1: Attempt to modify a readonly table")


def test_python_objects_are_out_of_reach(engine: LuaEngine) -> None:
    # the Python callables the bridge uses are upvalues of Lua closures, never values
    for body in ("for k, v in pairs(bit) do if type(v) ~= 'function' then return k end end",
                 "for k, v in pairs(cjson) do if type(v) == 'userdata' and v ~= cjson.null "
                 "then return k end end"):
        assert run(engine, body) == b"$-1\r\n"


# --- cjson and bit -------------------------------------------------------------------------

@pytest.mark.parametrize("body, reply", [
    ("return cjson.encode({1,2,3})", b"$7\r\n[1,2,3]\r\n"),
    ("return cjson.encode({})", b"$2\r\n{}\r\n"),
    ("return cjson.encode({1,2,a=3})", b'$19\r\n{"1":1,"2":2,"a":3}\r\n'),
    ("return cjson.encode({[1]=1,[3]=3})", b"$10\r\n[1,null,3]\r\n"),
    ("return cjson.encode(1/3)", b"$16\r\n0.33333333333333\r\n"),
    ("return cjson.encode('a\"b\\\\c/\\n\\1')", b'$19\r\n"a\\"b\\\\c\\/\\n\\u0001"\r\n'),
    ("return cjson.encode(cjson.decode('{\"a\":[1,2.5,\"x\",true,false,null]}'))",
     b'$33\r\n{"a":[1,2.5,"x",true,false,null]}\r\n'),
    ("return cjson.decode('[1,2,null,4]')", b"*4\r\n:1\r\n:2\r\n$-1\r\n:4\r\n"),
    ("return cjson.decode('[1,2,{\"a\":null}]')[3].a == cjson.null", b":1\r\n"),
    ("return bit.band(0xff, 0x0f)", b":15\r\n"),
    ("return bit.tohex(-1, -4)", b"$4\r\nFFFF\r\n"),
    ("return bit.lshift(1, 40)", b":256\r\n"),
    ("return bit.tobit(2^32+5)", b":5\r\n"),
    ("return bit.arshift(-256, 4)", b":-16\r\n"),
    ("return bit.rshift(-256, 4)", b":268435440\r\n"),
    ("return bit.bswap(0x12345678)", b":2018915346\r\n"),
    ("return bit.tobit(0.5) .. bit.tobit(1.5) .. bit.tobit(-0.5)", b"$3\r\n020\r\n"),
])
def test_cjson_and_bit(engine: LuaEngine, body: str, reply: bytes) -> None:
    assert run(engine, body) == reply


def test_cjson_errors_name_the_script_line(engine: LuaEngine) -> None:
    body = "return cjson.decode('[1,')"
    assert run(engine, body) == (b"-ERR user_script:1: Expected value but found T_END at "
                                 b"character 4 script: " + sha(body).encode()
                                 + b", on @user_script:1.\r\n")
    body = "return cjson.encode({[1]=1,[30]=3})"
    assert run(engine, body).startswith(
        b"-ERR user_script:1: Cannot serialise table: excessively sparse array")


# --- function libraries --------------------------------------------------------------------

def test_a_library_registers_its_functions(engine: LuaEngine) -> None:
    code = (b"#!lua name=lib\nredis.register_function('f', function(keys, args) "
            b"return {keys[1], args[1]} end)\nredis.register_function{function_name='g', "
            b"callback=function() return redis.call('ping') end, flags={'no-writes'}, "
            b"description='d'}")
    assert engine.check_library(code, False) == ("lib", None)
    assert engine.sync({"lib": code}) == (1, 2)
    assert engine.libraries["lib"].functions == {"f": (None, ()), "g": (b"d", ("no-writes",))}
    assert engine.check_library(code, False) == (None, b"-ERR Library 'lib' already exists\r\n")
    other = b"#!lua name=other\nredis.register_function('f', function() end)"
    assert engine.check_library(other, False) == (None, b"-ERR Function f already exists\r\n")
    assert engine.check_library(b"#!lua name=x\nredis.call('ping')", False) == (None, (
        b"-ERR Error registering functions: ERR user_function:2: Script attempted to access "
        b"nonexistent global variable 'call'\r\n"))
    assert engine.check_library(b"return 1", False) == \
        (None, b"-ERR Missing library metadata\r\n")
    out: list[bytes] = []
    r = Run("function", "f", [b"k"], [b"a"], 2, False)
    r.on_done = out.append
    engine.start(r)
    assert out == [b"*2\r\n$1\r\nk\r\n$1\r\na\r\n"]
    r = Run("function", "f", [], [], 2, True)
    r.on_done = out.append
    engine.start(r)
    assert out[-1] == b"-ERR Can not execute a script with write flag using *_ro command.\r\n"
    engine.sync({})


# --- SCRIPT KILL ---------------------------------------------------------------------------

def test_a_looping_script_is_killed_at_its_next_hook() -> None:
    worker = LuaWorker(LuaEngine)
    try:
        done = threading.Event()
        out: list[bytes] = []
        body = b"local x = 0 while true do x = x + 1 end"
        r = Run("script", hashlib.sha1(body).hexdigest(), [], [], 2, False)
        r.body = body
        r.on_done = lambda reply: (out.append(reply), done.set())
        worker.submit(lambda e: e.start(r))
        deadline = time.monotonic() + 10
        while worker.engine.current is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.engine.current is r  # running, in the Lua thread
        r.killed = True
        assert done.wait(10)
        assert out[0].startswith(b"-ERR Script killed by user with SCRIPT KILL... script: ")
        # pcall cannot swallow the kill
        body = b"while true do pcall(function() while true do end end) end"
        r2 = Run("script", hashlib.sha1(body).hexdigest(), [], [], 2, False)
        r2.body = body
        done.clear()
        r2.on_done = lambda reply: (out.append(reply), done.set())
        worker.submit(lambda e: e.start(r2))
        time.sleep(0.2)
        r2.killed = True
        assert done.wait(10)
        assert out[1].startswith(b"-ERR Script killed by user")
    finally:
        worker.stop()


class _Job:
    """A job that notes it ran (weakly referable, as a closure holding a reply is)."""

    def __init__(self, ran: threading.Event) -> None:
        self.ran = ran

    def __call__(self, engine: Any) -> None:
        self.ran.set()


def test_the_lua_thread_lets_go_of_a_job_once_it_ran() -> None:
    """A resume holds its redis.call's reply (a million-field HGETALL's parts, tens of
    MB): the thread waiting for the next job must not keep it alive."""
    worker = LuaWorker(LuaEngine)
    try:
        ran = threading.Event()
        job = _Job(ran)
        gone = weakref.ref(job)
        worker.submit(job)
        del job
        assert ran.wait(10)
        deadline = time.monotonic() + 10
        while gone() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gone() is None
    finally:
        worker.stop()
