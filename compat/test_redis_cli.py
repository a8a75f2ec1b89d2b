"""redis-cli against a live 3-node cluster: typed sessions, `-c`, `--scan`, `--pipe`.

Interactive sessions are fed to redis-cli's REPL on stdin with `--no-raw`, so the output
is what a user typing the commands sees. Sessions of plain Redis commands are also run
against a real redis-server: both transcripts must equal the expected one.
"""

from __future__ import annotations

import random
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import HOST, Cluster, resp_command

pytestmark = pytest.mark.timeout(120)

MASS_KEYS = 100_000


def cli(port: int, *args: str, stdin: str = "", timeout: float = 60.0,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run redis-cli against 127.0.0.1:port; `stdin` is what the user types."""
    proc = subprocess.run(["redis-cli", "-h", HOST, "-p", str(port), *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"redis-cli {args} exited {proc.returncode}: {proc.stderr}"
    return proc


def session(port: int, typed: str, *flags: str) -> str:
    """What a user sees after typing `typed` (one command a line) into redis-cli."""
    return cli(port, "--no-raw", *flags, stdin=typed).stdout


# Each session: the lines typed, then the lines redis-cli shows (Redis 7.0's replies).
SESSIONS: dict[str, tuple[str, str]] = {
    "strings": ("""\
SET cli:s hello
GET cli:s
APPEND cli:s " world"
STRLEN cli:s
GETRANGE cli:s 0 4
SETRANGE cli:s 6 WORLD
GET cli:s
SET cli:nx first NX
SET cli:nx second NX
SET cli:nx third XX GET
GET cli:nx
MSET cli:m1 a cli:m2 b
MGET cli:m1 cli:m2 cli:missing
GETDEL cli:m1
GET cli:m1
SET "cli:with space" "a value with spaces"
GET "cli:with space"
SET cli:utf8 "caf\\xc3\\xa9"
GET cli:utf8
GET cli:s extra
""", """\
OK
"hello"
(integer) 11
(integer) 11
"hello"
(integer) 11
"hello WORLD"
OK
(nil)
"first"
"third"
OK
1) "a"
2) "b"
3) (nil)
"a"
(nil)
OK
"a value with spaces"
OK
"caf\\xc3\\xa9"
(error) ERR wrong number of arguments for 'get' command
"""),
    "keys": ("""\
SET cli:k v
EXISTS cli:k cli:nokey
TYPE cli:k
TYPE cli:nokey
EXPIRE cli:k 100
TTL cli:k
EXPIRE cli:k 50 GT
TTL cli:k
PERSIST cli:k
TTL cli:k
UNLINK cli:k cli:nokey
EXISTS cli:k
TTL cli:k
PTTL cli:k
SET cli:k2 v EX 1000
TTL cli:k2
DEL cli:k2
EXPIRE cli:k2 10
""", """\
OK
(integer) 1
string
none
(integer) 1
(integer) 100
(integer) 0
(integer) 100
(integer) 1
(integer) -1
(integer) 1
(integer) 0
(integer) -2
(integer) -2
OK
(integer) 1000
(integer) 1
(integer) 0
"""),
    "counters": ("""\
INCR cli:c
INCRBY cli:c 10
DECR cli:c
DECRBY cli:c 5
GET cli:c
INCRBYFLOAT cli:f 1.5
INCRBYFLOAT cli:f 0.25
GET cli:f
SET cli:notnum abc
INCR cli:notnum
INCRBY cli:c notanumber
""", """\
(integer) 1
(integer) 11
(integer) 10
(integer) 5
"5"
"1.5"
"1.75"
"1.75"
OK
(error) ERR value is not an integer or out of range
(error) ERR value is not an integer or out of range
"""),
    "connection": ("""\
PING
PING "hello there"
ECHO "hello world"
CLIENT SETNAME cli-user
CLIENT GETNAME
SELECT 0
AUTH nopass
NOSUCHCMD a b
""", """\
PONG
"hello there"
"hello world"
OK
"cli-user"
OK
(error) ERR AUTH <password> called without any password configured for the default user. \
Are you sure your configuration is correct?
(error) ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' \n"""),
    "transactions": ("""\
MULTI
SET cli:t 1
INCR cli:t
SET cli:t2 abc
INCR cli:t2
GET cli:t
EXEC
MULTI
SET cli:t 5
DISCARD
GET cli:t
EXEC
""", """\
OK
QUEUED
QUEUED
QUEUED
QUEUED
QUEUED
1) OK
2) (integer) 2
3) OK
4) (error) ERR value is not an integer or out of range
5) "2"
OK
QUEUED
OK
"2"
(error) ERR EXEC without MULTI
"""),
    "server": ("""\
CONFIG GET maxmemory
CONFIG GET maxmemory-policy
CONFIG GET appendonly
COMMAND GETKEYS MSET a 1 b 2
COMMAND INFO GET
""", """\
1) "maxmemory"
2) "0"
1) "maxmemory-policy"
2) "noeviction"
1) "appendonly"
2) "no"
1) "a"
2) "b"
1)  1) "get"
    2) (integer) 2
    3) 1) readonly
       2) fast
    4) (integer) 1
    5) (integer) 1
    6) (integer) 1
    7) 1) @read
       2) @string
       3) @fast
    8) (empty array)
    9) 1) 1) "flags"
          2) 1) RO
             2) access
          3) "begin_search"
          4) 1) "type"
             2) "index"
             3) "spec"
             4) 1) "index"
                2) (integer) 1
          5) "find_keys"
          6) 1) "type"
             2) "range"
             3) "spec"
             4) 1) "lastkey"
                2) (integer) 0
                3) "keystep"
                4) (integer) 1
                5) "limit"
                6) (integer) 0
   10) (empty array)
"""),
}


def _session_case(family: str):  # type: ignore[no-untyped-def]
    return pytest.param(family, id=family,
                        marks=pytest.mark.compat(client="redis-cli", family=family))


@pytest.mark.parametrize("family", [_session_case(f) for f in SESSIONS])
def test_typed_session_shows_what_redis_shows(cluster: Cluster, real_redis: redis.Redis,
                                              family: str) -> None:
    typed, expected = SESSIONS[family]
    node = list(SESSIONS).index(family) % cluster.nodes
    theirs = session(real_redis.port, typed)  # type: ignore[attr-defined]
    assert theirs == expected, "the expected transcript is not redis-server's"
    ours = session(cluster.ports[node], typed)
    assert ours == expected


@pytest.mark.compat(client="redis-cli", family="strings")
def test_what_one_node_session_wrote_another_node_session_reads(cluster: Cluster) -> None:
    typed = "".join(f"SET cli:x:{i} value-{i}\n" for i in range(30))
    assert session(cluster.ports[0], typed) == "OK\n" * 30
    typed = "".join(f"GET cli:x:{i}\n" for i in range(30)) + "MGET cli:x:0 cli:x:29\n"
    assert session(cluster.ports[2], typed) == (
        "".join(f'"value-{i}"\n' for i in range(30)) + '1) "value-0"\n2) "value-29"\n')


@pytest.mark.compat(client="redis-cli", family="versioned")
def test_versioned_session_siblings_then_reconcile(cluster: Cluster) -> None:
    """The README tour, typed: two writers with the same context make siblings; a write
    with the context that covers both resolves them; DELCTX deletes what it saw."""
    k = "cli:greeting"
    out = session(cluster.ports[0], f"SET {k} hello\nGETCTX {k}\n").splitlines()
    assert out[0] == "OK" and out[2] == '2) 1) "hello"', out
    ctx = out[1].removeprefix('1) "').removesuffix('"')
    assert ctx and ctx != out[1], out
    assert session(cluster.ports[1], f"SETCTX {k} {ctx} bonjour\n") == "OK\n"
    assert session(cluster.ports[2], f"SETCTX {k} {ctx} hola\n") == "OK\n"
    out = session(cluster.ports[0], f"GETCTX {k}\nGET {k}\n").splitlines()
    newest = out[1].removeprefix('2) 1) ')
    assert {newest, out[2].strip().removeprefix('2) ')} == {'"hola"', '"bonjour"'}, out
    assert out[3] == newest, "GET returns the newest sibling"
    both = out[0].removeprefix('1) "').removesuffix('"')
    assert session(cluster.ports[1], f'SETCTX {k} {both} "hola, bonjour"\nGETCTX {k}\n'
                   ).splitlines()[2:] == ['2) 1) "hola, bonjour"']
    out = session(cluster.ports[2], f"GETCTX {k}\n").splitlines()
    last = out[0].removeprefix('1) "').removesuffix('"')
    assert session(cluster.ports[0], f"DELCTX {k} {last}\nGET {k}\nEXISTS {k}\n") == \
        "OK\n(nil)\n(integer) 0\n"
    assert session(cluster.ports[1], f"SETCTX {k} not-a-context v\n").startswith("(error) ")


# --- -c: cluster mode ------------------------------------------------------------------


@pytest.mark.compat(client="redis-cli -c", family="cluster")
def test_cluster_mode_session_writes_and_reads_keys_of_every_node(cluster: Cluster) -> None:
    keys = [f"cli:c:{i}" for i in range(60)] + [f"{{user7}}:field{i}" for i in range(5)]
    typed = "".join(f"SET {k} v:{k}\n" for k in keys)
    assert session(cluster.cluster_ports[0], typed, "-c") == "OK\n" * len(keys)
    # Another node's cluster port, and a main port: every key reads back.
    for port in (cluster.cluster_ports[1], cluster.ports[2]):
        typed = "".join(f"GET {k}\n" for k in keys)
        assert session(port, typed, "-c") == "".join(f'"v:{k}"\n' for k in keys)
    # The keys really are spread over the three owners (CLUSTER SLOTS' masters).
    c = cluster.client(0)
    slots = [int(c.execute_command("CLUSTER", "KEYSLOT", k)) for k in keys[:60]]
    owners = {int(master[1]) for lo, hi, master, *_ in c.execute_command("CLUSTER", "SLOTS")
              if any(int(lo) <= s <= int(hi) for s in slots)}
    assert owners == set(cluster.cluster_ports)
    # Hash tags keep multi-key commands on one slot, as redis-cli users expect.
    out = session(cluster.cluster_ports[2], "MGET {user7}:field0 {user7}:field4\n"
                  "DEL {user7}:field0 {user7}:field1\nEXISTS {user7}:field0\n", "-c")
    assert out == '1) "v:{user7}:field0"\n2) "v:{user7}:field4"\n(integer) 2\n(integer) 0\n'


@pytest.mark.compat(client="redis-cli -c", family="cluster")
def test_cluster_mode_one_shot_commands_on_each_node(cluster: Cluster) -> None:
    for i in range(12):
        assert cli(cluster.cluster_ports[i % 3], "-c", "SET", f"cli:o:{i}", f"{i}").stdout == "OK\n"
        assert cli(cluster.cluster_ports[(i + 1) % 3], "-c", "INCR", f"cli:o:{i}").stdout == \
            f"{i + 1}\n"
    assert cli(cluster.ports[0], "-c", "CLUSTER", "INFO").stdout.splitlines()[0] == \
        "cluster_state:ok"


@pytest.mark.compat(client="redis-cli --cluster", family="cluster")
def test_cluster_manager_check_and_info(cluster: Cluster) -> None:
    """`redis-cli --cluster check/info`, what an operator runs first: it reads INFO's
    Cluster section (cluster_enabled:1), CLUSTER NODES of every node and slot coverage."""
    for section in ("cluster", "default"):  # redis-cli --cluster reads plain INFO
        info = cli(cluster.cluster_ports[0], "INFO", section).stdout
        assert "cluster_enabled:1" in info.splitlines(), f"INFO {section}: {info!r}"
        # the main port is a standalone Redis's (numbered databases)
        info = cli(cluster.ports[0], "INFO", section).stdout
        assert "cluster_enabled:0" in info.splitlines(), f"INFO {section}: {info!r}"
    check = cli(cluster.ports[0], "--cluster", "check", f"{HOST}:{cluster.cluster_ports[0]}",
                check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "[OK] All 16384 slots covered." in check.stdout, check.stdout
    summary = cli(cluster.ports[0], "--cluster", "info", f"{HOST}:{cluster.cluster_ports[1]}",
                  check=False)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert "keys in 3 masters." in summary.stdout, summary.stdout


# --- --scan --------------------------------------------------------------------------


SCAN_KEYS = [f"cli:scan:{i}" for i in range(500)]


@pytest.fixture(scope="module")
def scan_keys(cluster: Cluster) -> list[str]:
    body = "".join(f"SET {k} {i}\n" for i, k in enumerate(SCAN_KEYS))
    assert cli(cluster.ports[1], stdin=body).stdout == "OK\n" * len(SCAN_KEYS)
    return SCAN_KEYS


@pytest.mark.compat(client="redis-cli", family="scan")
def test_scan_with_pattern_on_a_main_port_lists_each_key_once(cluster: Cluster,
                                                             scan_keys: list[str]) -> None:
    for port in cluster.ports:
        listed = cli(port, "--scan", "--pattern", "cli:scan:*").stdout.split()
        assert sorted(listed) == sorted(scan_keys)
    out = cli(cluster.ports[0], "--scan", "--pattern", "cli:scan:1?").stdout.split()
    assert sorted(out) == [f"cli:scan:{i}" for i in range(10, 20)]
    assert cli(cluster.ports[2], "--scan", "--pattern", "cli:nothing:*").stdout == ""


@pytest.mark.compat(client="redis-cli -c", family="scan")
def test_scan_in_cluster_mode_each_cluster_port_lists_its_own_share(
        cluster: Cluster, scan_keys: list[str]) -> None:
    """redis-cli scans the node it is connected to; across the three cluster ports (one
    per master) every key shows up exactly once."""
    listed: list[str] = []
    for port in cluster.cluster_ports:
        out = cli(port, "-c", "--scan", "--pattern", "cli:scan:*").stdout.split()
        assert out, f"cluster port {port} owns no cli:scan:* key"
        listed += out
    assert len(listed) == len(scan_keys)
    assert sorted(listed) == sorted(scan_keys)


# --- --pipe: mass insertion ----------------------------------------------------------


@pytest.mark.compat(client="redis-cli --pipe", family="mass-insert")
def test_pipe_mass_insertion_of_100k_keys(cluster: Cluster, tmp_path: Path) -> None:
    """The Redis documentation's mass insertion: generate the protocol, pipe it in."""
    cluster.client(0).flushall()
    data = b"".join(resp_command(b"SET", b"mass:%d" % i, b"value:%d" % i) for i in range(MASS_KEYS))
    proto = tmp_path / "mass.resp"
    proto.write_bytes(data)
    with proto.open("rb") as f:
        proc = subprocess.run(["redis-cli", "-h", HOST, "-p", str(cluster.ports[0]), "--pipe"],
                              stdin=f, capture_output=True, timeout=90)
    out = proc.stdout.decode(errors="replace")
    # redis-cli prints each error reply on stderr: show how many of which.
    errors = Counter(proc.stderr.decode(errors="replace").splitlines())
    shown = out + "".join(f"{n} x {line}\n" for line, n in errors.most_common(5))
    assert f"errors: 0, replies: {MASS_KEYS}" in out, shown
    assert proc.returncode == 0, shown
    assert cli(cluster.ports[1], "DBSIZE").stdout == f"{MASS_KEYS}\n"
    rng = random.Random(7)
    sample = [0, MASS_KEYS - 1, *rng.sample(range(MASS_KEYS), 20)]
    typed = "".join(f"GET mass:{i}\n" for i in sample)
    assert cli(cluster.ports[2], stdin=typed).stdout == "".join(f"value:{i}\n" for i in sample)
