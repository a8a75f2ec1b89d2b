"""Peer links and secrets against real node processes (issue: hostile input, finding 6).

Earlier builds fell back to the cluster secret `dynredis` and sent it in the clear in
the peer hello; with it a raw socket on a client port could inject replica writes, wipe
a node or gossip a fake member, and the hello bypassed --requirepass. Here the same
attacks, with the well-known secret and with a forged proof, must change nothing; the
one made with the cluster's real secret shows the attack itself is real."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import hiredis
import pytest
import redis

from dynredis.server.peerauth import Dialer, command
from dynredis.server.wire import batch

from .conftest import (
    CLUSTER_PORT_OFFSET,
    HOST,
    Cluster,
    ClusterFactory,
    dynredis_cmd,
    free_port_range,
    wait_until,
)

PASSWORD = "pw-for-peer-tests"
FAKE = "127.0.0.1:9"  # a member nobody runs (the discard port)


@pytest.fixture(scope="module")
def secured(module_cluster_factory: ClusterFactory) -> Cluster:
    return module_cluster_factory("--requirepass-file", str(_password_file(
        module_cluster_factory.tmp_root)))


def _password_file(root: Path) -> Path:
    path = root / "pw"
    path.write_text(PASSWORD + "\n")
    return path


def authed(c: Cluster, i: int) -> redis.Redis:
    return c.client(i, password=PASSWORD)


def read_reply(sock: socket.socket) -> object:
    """The node's next reply, or None once it closed the connection."""
    reader = hiredis.Reader()
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not data:
            return None
        reader.feed(data)
        reply = reader.gets()
        if reply is not False:
            return reply


def closed(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def attack_frames(key: bytes) -> bytes:
    """What an attacker who passed the hello would send: a forwarded write of `key`
    (the node coordinates it), gossip naming a fake member, and a wipe ("fl")."""
    return (batch([("fp", 1, key, None, b"injected", 0, 1)])
            + batch([("gs", (FAKE,), None)]) + batch([("fl", 2)]))


def test_the_old_hello_with_the_well_known_secret_injects_nothing(secured: Cluster) -> None:
    c = authed(secured, 0)
    assert c.set("victim", "original")
    with socket.create_connection((HOST, secured.ports[1]), timeout=10) as sock:
        sock.sendall(command(b"DYN.PEER", b"dynredis", b"127.0.0.1:1", b"2")
                     + attack_frames(b"victim"))
        reply = read_reply(sock)
        assert isinstance(reply, hiredis.ReplyError)
        assert "handshake of an earlier build is not supported" in str(reply)
        assert closed(sock)
    _nothing_changed(secured)


@pytest.mark.parametrize("secret", [b"dynredis", b""])
def test_a_forged_proof_injects_nothing(secured: Cluster, secret: bytes) -> None:
    authed(secured, 0).set("victim", "original")
    intruder = Dialer(secret, "127.0.0.1:1", f"{HOST}:{secured.ports[2]}")
    with socket.create_connection((HOST, secured.ports[2]), timeout=10) as sock:
        sock.sendall(intruder.hello())
        challenge = read_reply(sock)
        assert isinstance(challenge, list) and len(challenge) == 3
        assert intruder.answer(challenge) is None  # the node proved a secret we lack
        # A proof guessed without the secret, then the attack.
        sock.sendall(command(b"DYN.PEER", b"PROOF", b"0" * 64) + attack_frames(b"victim"))
        reply = read_reply(sock)
        assert str(reply) == "ERR peer authentication failed: wrong cluster secret"
        assert closed(sock)
    _nothing_changed(secured)


def test_the_peer_hello_is_no_way_around_the_password(secured: Cluster) -> None:
    with socket.create_connection((HOST, secured.ports[0]), timeout=10) as sock:
        sock.sendall(Dialer(b"dynredis", "127.0.0.1:1", f"{HOST}:{secured.ports[0]}").hello())
        assert isinstance(read_reply(sock), list)
        sock.sendall(command(b"KEYS", b"*"))  # a client command instead of the proof
        reply = read_reply(sock)
        assert str(reply) == "ERR peer handshake: expected DYN.PEER PROOF"
        assert closed(sock)


def _nothing_changed(c: Cluster) -> None:
    # Give any injected message the time to be applied and gossiped.
    time.sleep(1.5)
    for i in range(c.nodes):
        r = authed(c, i)
        assert r.get("victim") == "original"
        assert FAKE not in r.info("dynamo")["members"]


def test_with_the_real_secret_the_same_frames_do_inject(secured: Cluster) -> None:
    """The control: the attack frames are effective once the secret is proven, so the
    tests above fail if the handshake stops holding. Gossip naming a member that never
    proves the secret is still not taken (it is dialled, fails, and is forgotten)."""
    r = authed(secured, 0)
    assert r.set("control", "original")
    dialer = Dialer(secured.secret.encode(), "127.0.0.1:1", f"{HOST}:{secured.ports[1]}")
    with socket.create_connection((HOST, secured.ports[1]), timeout=10) as sock:
        sock.sendall(dialer.hello())
        proof = dialer.answer(read_reply(sock))
        assert proof is not None
        sock.sendall(proof + batch([("fp", 1, b"control", None, b"injected", 0, 3)])
                     + batch([("gs", (FAKE,), None)]))
        wait_until(lambda: r.get("control") == "injected", 10, what="the injected write")
    time.sleep(2)
    for i in range(secured.nodes):
        assert FAKE not in authed(secured, i).info("dynamo")["members"]



def _read_array(sock: socket.socket, reader: hiredis.Reader) -> object:
    """The next reply on `sock` read through `reader` (None once it closed)."""
    while True:
        reply = reader.gets()
        if reply is not False:
            return reply
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return None
        if not data:
            return None
        reader.feed(data)


def _bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind((HOST, port))
    except OSError:
        return False
    return True


def test_a_handshake_relayed_to_another_node_makes_no_link(
        cluster_factory: ClusterFactory) -> None:
    """A local process that takes a dead node's port is dialled by the live nodes. It
    relayed a dialer's hello to the third node and that node's challenge back: the
    dialer checked the proof against the name in the challenge (any node's), answered
    it, and the relayed connection became a proven peer link of the third node, where
    one 14-byte "fl" frame wiped it (107 keys to 7). The dialer now checks that the
    challenge comes from the node it dialled, so no proof comes back to relay."""
    c = cluster_factory()
    r = c.client(0)
    for i in range(50):
        r.set(f"key:{i}", i)
    wait_until(lambda: all(int(c.info(i)["local_keys"]) >= 50 for i in range(3)), 20,
               what="every node holding the keys")
    c.kill_node(2)
    with socket.socket() as squat:
        squat.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # (a live node's dial of the dead port may hold it a moment: when the kernel
        # picks that very port as the dial's own, the dial connects to itself)
        wait_until(lambda: _bound(squat, c.ports[2]), 20, interval=0.01,
                   what="the dead node's port free")
        squat.listen(8)
        squat.settimeout(30)
        dialled, _ = squat.accept()  # a live node linking to "node 2" again
        with dialled:
            dialled.settimeout(10)
            from_dialer = hiredis.Reader()
            hello = _read_array(dialled, from_dialer)
            assert isinstance(hello, list) and hello[:2] == [b"DYN.PEER", b"HELLO"]
            dialer = hello[2].decode()
            third = next(i for i in (0, 1) if not dialer.endswith(f":{c.ports[i]}"))
            keys_before = int(c.info(third)["local_keys"])
            with socket.create_connection((HOST, c.ports[third]), timeout=10) as relay:
                relay.sendall(command(*hello))
                challenge = _read_array(relay, hiredis.Reader())
                assert isinstance(challenge, list) and len(challenge) == 3
                assert challenge[2] == f"{HOST}:{c.ports[third]}".encode()
                dialled.sendall(b"*3\r\n" + b"".join(b"$%d\r\n%b\r\n" % (len(x), x)
                                                     for x in challenge))
                # the dialer sees another node answering: no proof, the link dropped
                assert _read_array(dialled, from_dialer) is None
                # and without a proof the third node takes no peer frame
                relay.sendall(batch([("fl", 4242)]))
                reply = _read_array(relay, hiredis.Reader())
                assert str(reply) == "ERR peer handshake: expected DYN.PEER PROOF"
    time.sleep(1)
    assert int(c.info(third)["local_keys"]) == keys_before >= 50
    assert r.get("key:7") == "7"
    dialer_index = 1 - third
    log = c.log_path(dialer_index).read_text()
    assert "not linking to peer" in log and "not the one dialled" in log

# --- where the secret and the password come from ---------------------------------------


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_no_node_command_line_shows_the_password_or_the_secret(
        cluster_factory: ClusterFactory) -> None:
    password = "visible-nowhere-1234"
    c = cluster_factory("--requirepass", password, "--n", "2", nodes=2)
    secret = c.secret
    assert len(secret) >= 32
    for d in (c.data_dir / "cluster.secret", c.data_dir / "requirepass"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o600
    for pid in c.pids:
        line = _cmdline(pid)
        assert password.encode() not in line and secret.encode() not in line
        assert b"--requirepass-file" in line and b"--cluster-secret-file" in line
        env = Path(f"/proc/{pid}/environ").read_bytes()
        assert password.encode() not in env and secret.encode() not in env
    r = c.client(0, password=password)
    assert r.set("k", "v") and c.client(1, password=password).get("k") == "v"
    with pytest.raises(redis.AuthenticationError):
        c.client(1).get("k")


def _node(tmp_path: Path, *args: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess:
    return subprocess.run(dynredis_cmd("node", *args), capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL, env=env)


def test_a_node_with_seeds_and_no_secret_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DYNREDIS_CLUSTER_SECRET"}
    port = free_port_range(1, offset=CLUSTER_PORT_OFFSET)
    proc = _node(tmp_path, "--port", str(port), "--data-dir", str(tmp_path / "n"),
                 "--seeds", f"{HOST}:{port + 1}", env=env)
    assert proc.returncode == 2
    assert "has --seeds but no cluster secret" in proc.stderr
    assert "--cluster-secret-file" in proc.stderr


def test_a_first_node_makes_its_secret_and_keeps_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DYNREDIS_CLUSTER_SECRET"}
    data = tmp_path / "n"
    secrets = []
    for _ in range(2):
        port = free_port_range(1, offset=CLUSTER_PORT_OFFSET)
        proc = subprocess.Popen(
            dynredis_cmd("node", "--port", str(port), "--data-dir", str(data),
                         "--engine", "memory", "--n", "1", "--r", "1", "--w", "1"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env=env)
        try:
            client = redis.Redis(host=HOST, port=port, socket_timeout=5)
            wait_until(client.ping, 30, what="the node to answer")
            client.close()
        finally:
            proc.terminate()
            proc.wait(30)
        path = data / "cluster.secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secrets.append(path.read_text().strip())
    assert secrets[0] == secrets[1] and len(secrets[0]) >= 32 and secrets[0] != "dynredis"


def test_a_seed_given_by_host_name_is_still_joined_through(tmp_path: Path) -> None:
    """A dialler takes a challenge only from the node it dialled, by name; a seed given
    by host name (`localhost:PORT`) names a node that calls itself 127.0.0.1:PORT, and
    its challenge is taken all the same while that node is not a member yet (a relay
    brings a member's challenge), so a new node still joins through it."""
    secret = tmp_path / "secret"
    secret.write_text("a-secret-for-the-seed-test-0123456789\n")
    base = free_port_range(2, offset=CLUSTER_PORT_OFFSET)
    procs = []
    try:
        for i, seeds in enumerate(("", f"localhost:{base}")):
            data = tmp_path / f"n{i}"
            data.mkdir()
            log = open(data / "node.log", "wb")  # noqa: SIM115 (the process keeps it)
            procs.append(subprocess.Popen(
                dynredis_cmd("node", "--port", str(base + i), "--data-dir", str(data),
                             "--engine", "memory", "--n", "2", "--r", "1", "--w", "1",
                             "--cluster-secret-file", str(secret),
                             *(("--seeds", seeds) if seeds else ())),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        first = redis.Redis(host=HOST, port=base, socket_timeout=5, decode_responses=True)
        joined = f"{HOST}:{base + 1}"
        wait_until(lambda: joined in first.info("dynamo")["members"], 30,
                   what="the node seeded by host name among the first one's members")
        first.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
