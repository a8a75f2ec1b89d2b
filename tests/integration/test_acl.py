"""ACL users against a real redis-server (the same commands, the same replies) and
across the cluster: a user made on one node is known, enforced and deleted on all."""

from __future__ import annotations

import hashlib
import itertools
import socket

import pytest
import redis

from .conftest import HOST, Cluster, resp_command, wait_until

_names = itertools.count()


def fresh() -> str:
    return f"acl-user-{next(_names)}"


def wire(r: redis.Redis, *args: str) -> object:
    """One command's reply as sent (errors as values), without redis-py's parsing."""
    conn = r.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        try:
            return conn.read_response()
        except (redis.ResponseError, redis.AuthenticationError) as exc:
            return f"ERROR {type(exc).__name__} {exc}"
    finally:
        r.connection_pool.release(conn)


def as_user(port: int, user: str, password: str) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, username=user, password=password,
                       socket_timeout=10, decode_responses=True,
                       single_connection_client=True)


def list_line(r: redis.Redis, name: str) -> str | None:
    lines = wire(r, "ACL", "LIST")
    assert isinstance(lines, list)
    return next((x for x in lines if x.startswith(f"user {name} ")), None)


HEX = "ab" * 32
RULES = [
    [],
    ["on", ">p1", "~foo:*", "+get"],
    ["on", "nopass", "~*", "&*", "+@all", "-set"],
    ["on", ">a", ">b", "<a"],
    ["on", ">a", "nopass", ">b"],
    ["on", ">a", "resetpass"],
    ["on", f"#{HEX}"],
    ["+@read"],
    ["+@write", "+get"],
    ["+get", "+@write"],
    ["+get", "-get"],
    ["-get", "+get"],
    ["+@all", "+get"],
    ["+get", "allcommands"],
    ["+@string", "+get"],
    ["+get", "-@all", "+set"],
    ["+config|get"],
    ["+config", "-config|set"],
    ["+@all", "-config|set"],
    ["-@all", "+client|id"],
    ["reset"],
    ["~a", "resetkeys", "~b"],
    ["~a", "~b", "allkeys"],
    ["&a", "&b"],
    ["allchannels"],
    ["off", "on"],
    ["skip-sanitize-payload"],
    # refused, with Redis' error
    ["bogus"],
    ["+nosuch"],
    ["+@nosuch"],
    ["on", "<nope"],
    ["#abc"],
    ["!abc"],
    ["allkeys", "~a"],
    ["allchannels", "&a"],
]


@pytest.mark.parametrize("rules", RULES, ids=[" ".join(r) or "(none)" for r in RULES])
def test_setuser_then_list_and_getuser_answer_as_redis(
        cluster: Cluster, real_redis: redis.Redis, rules: list[str]) -> None:
    ours, theirs = cluster.client(0), real_redis
    name = fresh()
    try:
        assert wire(ours, "ACL", "SETUSER", name, *rules) == \
            wire(theirs, "ACL", "SETUSER", name, *rules)
        assert list_line(ours, name) == list_line(theirs, name)
        assert wire(ours, "ACL", "GETUSER", name) == wire(theirs, "ACL", "GETUSER", name)
    finally:
        for r in (ours, theirs):
            wire(r, "ACL", "DELUSER", name)


def test_acl_commands_and_errors_answer_as_redis(cluster: Cluster,
                                                 real_redis: redis.Redis) -> None:
    ours, theirs = cluster.client(0), real_redis
    name = fresh()
    for args in (("ACL", "SETUSER", name, "on", ">pw", "~k*", "+get"),
                 ("ACL", "WHOAMI"), ("ACL", "USERS"), ("ACL", "GETUSER", "nobody"),
                 ("ACL", "DELUSER", "default"), ("ACL", "DELUSER", name, "nobody", name),
                 ("ACL", "SETUSER", "a b", "on"), ("ACL", "SETUSER"), ("ACL", "WHOAMI", "x"),
                 ("ACL", "NOSUCH"), ("ACL", "GENPASS", "0"), ("ACL", "GENPASS", "5000"),
                 ("ACL", "CAT", "nosuch"), ("ACL", "LOAD"), ("ACL", "SAVE"),
                 ("ACL", "DRYRUN", "nobody", "get", "k"), ("ACL", "DRYRUN", "default", "nocmd"),
                 ("ACL", "DRYRUN", "default", "get"), ("ACL", "DRYRUN", "default", "get", "k"),
                 ("AUTH", "nobody", "x"), ("AUTH", "a", "b", "c"), ("AUTH", "x")):
        got, want = wire(ours, *args), wire(theirs, *args)
        if args[:2] == ("ACL", "USERS"):
            assert name in got and "default" in got
            continue
        assert got == want, args
    assert len(str(wire(ours, "ACL", "GENPASS"))) == 64
    assert len(str(wire(ours, "ACL", "GENPASS", "5"))) == len(str(wire(theirs, "ACL", "GENPASS", "5")))
    assert "read" in wire(ours, "ACL", "CAT") and "get" in wire(ours, "ACL", "CAT", "read")


def test_a_restricted_user_is_refused_as_redis_refuses(cluster: Cluster,
                                                        real_redis: redis.Redis) -> None:
    name = fresh()
    rules = ("on", ">pw", "~k*", "+get", "+set", "+config|get", "+acl|dryrun", "+multi",
             "+exec")
    for r in (cluster.client(0), real_redis):
        assert wire(r, "ACL", "SETUSER", name, *rules) == "OK"
    ours = as_user(cluster.ports[1], name, "pw")  # another node: users are cluster-wide
    theirs = as_user(real_redis.port, name, "pw")  # type: ignore[attr-defined]
    try:
        for args in (("SET", "k1", "v"), ("GET", "k1"), ("GET", "zz"), ("DEL", "k1"), ("DEL",),
                     ("GET",), ("SET", "zz"),
                     ("SET", "zz", "v"), ("MSET", "k1", "a", "k2", "b"), ("PING",),
                     ("CONFIG", "SET", "port", "1"), ("ACL", "WHOAMI"), ("ACL", "LIST"),
                     ("ACL", "DRYRUN", name, "get", "zz"), ("ACL", "DRYRUN", name, "del", "k"),
                     ("ACL", "DRYRUN", name, "get", "k1"), ("AUTH", name, "wrong")):
            assert wire(ours, *args) == wire(theirs, *args), args
        assert wire(ours, "HELLO", "3", "AUTH", name, "pw")["proto"] == 3  # type: ignore[index]
        # MULTI: a refused command fails the transaction, as Redis does.
        for r in (ours, theirs):
            assert wire(r, "MULTI") == "OK"
        for args in (("GET", "k1"), ("DEL", "k1"), ("EXEC",)):
            assert wire(ours, *args) == wire(theirs, *args), args
    finally:
        ours.close()
        theirs.close()
        for r in (cluster.client(0), real_redis):
            wire(r, "ACL", "DELUSER", name)


def test_keys_found_by_the_arguments_are_checked_as_redis_checks_them(
        cluster: Cluster, real_redis: redis.Redis) -> None:
    """SORT's STORE destination and the keys after a numkeys are keys too; BY and GET
    patterns need access to every key."""
    name = fresh()
    rules = ("on", ">pw", "~k*", "+@all")
    for r in (cluster.client(0), real_redis):
        assert wire(r, "ACL", "SETUSER", name, *rules) == "OK"
        assert wire(r, "RPUSH", "k:l", "2", "1") == 2
    ours = as_user(cluster.ports[2], name, "pw")
    theirs = as_user(real_redis.port, name, "pw")  # type: ignore[attr-defined]
    try:
        for args in (("SORT", "k:l"), ("SORT", "k:l", "STORE", "k:dst"),
                     ("SORT", "k:l", "STORE", "zz"), ("SORT", "k:l", "LIMIT", "0", "1"),
                     ("SORT", "k:l", "BY", "k:w*"), ("SORT", "k:l", "BY", "nosort"),
                     ("SORT", "k:l", "GET", "#"), ("SORT_RO", "k:l", "GET", "k:*"),
                     ("ZUNION", "2", "k:a", "zz"), ("ZUNION", "2", "k:a", "k:b"),
                     ("SINTERCARD", "2", "k:a", "zz"), ("LMPOP", "2", "zz", "k:l", "LEFT"),
                     ("RENAME", "k:l", "zz"), ("COPY", "zz", "k:c")):
            assert wire(ours, *args) == wire(theirs, *args), args
    finally:
        ours.close()
        theirs.close()
        for r in (cluster.client(0), real_redis):
            wire(r, "ACL", "DELUSER", name)
            wire(r, "DEL", "k:l", "k:dst")


def test_users_are_the_same_on_every_node_and_apply_at_once(cluster: Cluster) -> None:
    name = fresh()
    a, b, c = (cluster.client(i) for i in range(3))
    assert a.acl_setuser(name, enabled=True, passwords=["+pw"], keys=["*"],
                         commands=["+@all"])
    wait_until(lambda: all(list_line(x, name) for x in (b, c)), 10,
               what="the user on every node")
    assert list_line(b, name) == list_line(a, name) == list_line(c, name)
    conn = as_user(cluster.ports[2], name, "pw")
    raw = socket.create_connection((HOST, cluster.ports[2]), timeout=10)
    try:
        raw.sendall(resp_command(b"AUTH", name.encode(), b"pw"))
        assert raw.recv(100) == b"+OK\r\n"
        assert conn.set("acl:k", "v") and wire(conn, "ACL", "WHOAMI") == name
        assert wire(b, "ACL", "SETUSER", name, "-set") == "OK"  # on another node
        wait_until(lambda: str(wire(conn, "SET", "acl:k", "w")).startswith("ERROR NoPermissionError"), 10,
                   what="the change to reach the connected client")
        assert wire(a, "ACL", "DELUSER", name) == 1
        wait_until(lambda: all(list_line(x, name) is None for x in (a, b, c)), 10,
                   what="the user gone everywhere")
        assert raw.recv(100) == b""  # its connections are closed
        with pytest.raises(redis.AuthenticationError):
            as_user(cluster.ports[0], name, "pw").ping()
    finally:
        conn.close()
        raw.close()


def test_a_node_that_was_down_learns_the_users_and_keeps_them(cluster: Cluster) -> None:
    name = fresh()
    cluster.kill_node(2)
    try:
        assert cluster.client(0).acl_setuser(name, enabled=True, passwords=["+pw"],
                                             keys=["acl:*"], commands=["+get"])
    finally:
        cluster.restart_node(2)
    wait_until(lambda: list_line(cluster.client(2), name), 15, what="the user on node 2")
    conn = as_user(cluster.ports[2], name, "pw")
    try:
        assert conn.get("acl:x") is None
        assert str(wire(conn, "GET", "other")).startswith("ERROR NoPermissionError")
    finally:
        conn.close()
    # Stored: a restart keeps it even with nobody to tell it.
    cluster.kill_node(2)
    cluster.restart_node(2)
    assert list_line(cluster.client(2), name) == list_line(cluster.client(0), name)
    cluster.client(0).acl_deluser(name)


def test_the_default_user_of_a_node_with_a_password(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    c = cluster_factory("--requirepass", "s3cret", "--n", "1", "--r", "1", "--w", "1",
                        nodes=1)
    r = c.client(0, password="s3cret")
    digest = hashlib.sha256(b"s3cret").hexdigest()
    assert list_line(r, "default") == f"user default on #{digest} ~* &* +@all"
    assert wire(r, "ACL", "WHOAMI") == "default"
    assert wire(r, "AUTH", "default", "s3cret") == "OK"
    with socket.create_connection((HOST, c.ports[0]), timeout=10) as raw:
        raw.sendall(resp_command(b"ACL", b"WHOAMI"))
        assert raw.recv(100) == b"-NOAUTH Authentication required.\r\n"


class Raw:
    """A raw connection: one command, its reply as parsed by hiredis (errors as values)."""

    def __init__(self, port: int) -> None:
        import hiredis

        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.reader = hiredis.Reader()

    def __call__(self, *args: str) -> object:
        self.sock.sendall(resp_command(*(a.encode() for a in args)))
        return self.read()

    def read(self) -> object:
        while (reply := self.reader.gets()) is False:
            data = self.sock.recv(65536)
            if not data:
                return "CLOSED"
            self.reader.feed(data)
        return f"ERROR {reply}" if isinstance(reply, Exception) else reply

    def closed(self) -> bool:
        """The server closed it (nothing more to read before the end)."""
        try:
            return self.sock.recv(100) == b""
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


def test_channels_are_checked_as_redis_checks_them(cluster: Cluster,
                                                   real_redis: redis.Redis) -> None:
    """A user's `&` patterns decide which channels it may publish to and subscribe to
    (PSUBSCRIBE: only the patterns themselves); a change that takes a channel away
    closes the user's connections subscribed to it, and keeps the others."""
    name = fresh()
    rules = ("on", ">pw", "~*", "+@all", "resetchannels", "&news*", "&exact")
    admins = (cluster.client(0), real_redis)
    for r in admins:
        assert wire(r, "ACL", "SETUSER", name, *rules) == "OK"
    ports = (cluster.ports[0], real_redis.port)  # type: ignore[attr-defined]
    conns = [(Raw(p), Raw(p)) for p in ports]
    try:
        for a, b in conns:
            assert a("AUTH", name, "pw") == b("AUTH", name, "pw") == b"OK"
        for args in (("PUBLISH", "news1", "m"), ("PUBLISH", "sport", "m"),
                     ("SPUBLISH", "sport", "m"), ("PUBLISH", "exactly", "m"),
                     ("SUBSCRIBE", "sport"), ("SUBSCRIBE", "news1", "sport"),
                     ("SSUBSCRIBE", "sport"), ("PSUBSCRIBE", "news1*"), ("PSUBSCRIBE", "n*"),
                     ("EVAL", "return redis.pcall('publish', 'sport', 'x')", "0"),
                     ("EVAL", "return redis.pcall('publish', 'news2', 'x')", "0"),
                     ("PSUBSCRIBE", "news*"), ("UNSUBSCRIBE", "sport")):
            got, want = conns[0][0](*args), conns[1][0](*args)
            assert got == want, args
        for _, b in conns:
            assert b("SUBSCRIBE", "exact") == [b"subscribe", b"exact", 1]
        for args in (("ACL", "DRYRUN", name, "PUBLISH", "sport", "x"),
                     ("ACL", "DRYRUN", name, "PSUBSCRIBE", "news1*"),
                     ("ACL", "DRYRUN", name, "SSUBSCRIBE", "news1", "x"),
                     ("ACL", "DRYRUN", name, "PUBLISH", "news1", "x")):
            assert wire(admins[0], *args) == wire(admins[1], *args), args
        # news* is taken away: the connection subscribed to it is closed, the one
        # subscribed to `exact` (still allowed) stays.
        for r in admins:
            assert wire(r, "ACL", "SETUSER", name, "resetchannels", "&exact") == "OK"
        for a, b in conns:
            assert a.closed()
            assert b("PING") == [b"pong", b""]
    finally:
        for a, b in conns:
            a.close()
            b.close()
        for r in admins:
            wire(r, "ACL", "DELUSER", name)
