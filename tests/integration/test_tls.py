"""TLS for clients and peer links, driven with the real redis-cli --tls and redis-py
ssl=True against real node processes (certificates from a CA made for the test)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dynredis.server.peerauth import Dialer

from .conftest import (
    _LIVE_PROCS,
    CLUSTER_PORT_OFFSET,
    HOST,
    ClusterFactory,
    dynredis_cmd,
    free_port_range,
    tail,
    wait_until,
)
from .pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_client(pki: Pki, port: int, cert: bool = True, **kw: object) -> redis.Redis:
    opts: dict[str, object] = {"ssl": True, "ssl_ca_certs": str(pki.ca),
                               "ssl_cert_reqs": "required", "ssl_check_hostname": False}
    if cert:
        opts.update(ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key))
    return redis.Redis(host=HOST, port=port, socket_timeout=10, decode_responses=True,
                       **opts, **kw)  # type: ignore[arg-type]


def cli(port: int, *args: str, tls: Pki | None = None, cert: bool = True
        ) -> subprocess.CompletedProcess:
    flags: list[str] = []
    if tls is not None:
        flags = ["--tls", "--cacert", str(tls.ca)]
        if cert:
            flags += ["--cert", str(tls.client_cert), "--key", str(tls.client_key)]
    return subprocess.run(["redis-cli", "-h", HOST, "-p", str(port), *flags, *args],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


class Node:
    """One `dynredis node` process (stopped by the fixture that made it)."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.log = data_dir / "node.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                dynredis_cmd("node", "--data-dir", str(data_dir), "--engine", "memory", *args),
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if k != "DYNREDIS_CLUSTER_SECRET"})
        _LIVE_PROCS.append(self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    try:
        yield started
    finally:
        for n in started:
            n.stop()


def tls_args(pki: Pki, auth_clients: str = "yes") -> list[str]:
    return ["--tls-cert-file", str(pki.cert), "--tls-key-file", str(pki.key),
            "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", auth_clients]


def ready(node: Node, client: redis.Redis) -> None:
    def up() -> bool:
        if node.proc.poll() is not None:
            raise AssertionError(f"node exited:\n{tail(node.log)}")
        return bool(client.ping())

    wait_until(up, 30, what="the node to answer over TLS")


def test_a_node_serves_redis_cli_tls_and_redis_py_ssl(
        pki: Pki, nodes: list[Node], tmp_path: Path) -> None:
    base = free_port_range(2, offset=CLUSTER_PORT_OFFSET)
    plain, tls_port = base, base + 1
    node = Node(tmp_path / "n", "--port", str(plain), "--tls-port", str(tls_port),
                "--n", "1", "--r", "1", "--w", "1", *tls_args(pki))
    nodes.append(node)
    r = tls_client(pki, tls_port)
    ready(node, r)
    assert r.set("tls:k", "over tls") and r.get("tls:k") == "over tls"
    got = cli(tls_port, "GET", "tls:k", tls=pki)
    assert got.returncode == 0 and got.stdout == "over tls\n", got.stderr
    # The plain port serves plain clients alike; TLS on it, or plain on the TLS port,
    # does not work.
    assert cli(plain, "GET", "tls:k").stdout == "over tls\n"
    assert "over tls" not in cli(tls_port, "GET", "tls:k").stdout
    assert "over tls" not in cli(plain, "GET", "tls:k", tls=pki).stdout
    # tls-auth-clients yes (the default, as Redis): a client without a certificate, or
    # one that does not trust the node's CA, gets nowhere.
    assert "over tls" not in cli(tls_port, "GET", "tls:k", tls=pki, cert=False).stdout
    with pytest.raises(redis.ConnectionError):
        tls_client(pki, tls_port, cert=False).get("tls:k")
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=HOST, port=tls_port, ssl=True, ssl_ca_certs=str(pki.other_ca),
                    ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key),
                    ssl_check_hostname=False, socket_timeout=10).ping()


def test_tls_auth_clients_no_and_optional(pki: Pki, nodes: list[Node], tmp_path: Path) -> None:
    for mode in ("no", "optional"):
        port = free_port_range(1, offset=CLUSTER_PORT_OFFSET)
        node = Node(tmp_path / mode, "--port", "0", "--tls-port", str(port), "--n", "1",
                    "--r", "1", "--w", "1", *tls_args(pki, mode))
        nodes.append(node)
        ready(node, tls_client(pki, port, cert=False))
        assert cli(port, "PING", tls=pki, cert=False).stdout == "PONG\n"
        assert cli(port, "PING", tls=pki).stdout == "PONG\n"


def test_tls_options_redis_would_refuse_are_refused(pki: Pki, tmp_path: Path) -> None:
    port = free_port_range(1, offset=CLUSTER_PORT_OFFSET)
    for args, said in (
            (["--tls-port", str(port), "--tls-cert-file", str(pki.cert)],
             "--tls-port needs --tls-cert-file and --tls-key-file"),
            (["--tls-port", str(port), "--tls-cert-file", str(pki.cert), "--tls-key-file",
              str(pki.key)], "--tls-ca-cert-file must be given"),
            (["--tls-cluster", "yes"], "--tls-cluster yes needs a --tls-port")):
        proc = subprocess.run(dynredis_cmd("node", "--data-dir", str(tmp_path / "x"),
                                           "--port", str(port), *args),
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr


def test_a_tls_cluster_links_its_peers_over_tls(pki: Pki,
                                                 cluster_factory: ClusterFactory) -> None:
    """`dynredis cluster --tls`: every node serves TLS only, on its usual ports (cluster
    ports too), and peer links run over TLS; redis-cli -c --tls follows CLUSTER SLOTS."""
    c = cluster_factory("--tls", "--tls-cert-file", str(pki.cert), "--tls-key-file",
                        str(pki.key), "--tls-ca-cert-file", str(pki.ca))
    clients = [tls_client(pki, p) for p in c.ports]
    try:
        assert clients[0].set("tls:cluster", "replicated")
        assert [x.get("tls:cluster") for x in clients] == ["replicated"] * 3
        for i in range(3):
            info = clients[i].info("dynamo")
            assert len(info["members_up"]) == 3 and not info["members_down"]
        for p in c.ports:
            assert "replicated" not in cli(p, "GET", "tls:cluster").stdout  # no plain
        got = cli(c.ports[1], "-c", "GET", "tls:cluster", tls=pki)
        assert got.stdout == "replicated\n", got.stderr
        cports = [tls_client(pki, p).ping() for p in c.cluster_ports]
        assert cports == [True] * 3
        for i in range(3):
            assert "peer links over TLS" in c.log_path(i).read_text()
    finally:
        for x in clients:
            x.close()


def test_with_tls_cluster_a_plain_peer_hello_is_refused(
        pki: Pki, nodes: list[Node], tmp_path: Path) -> None:
    base = free_port_range(2, offset=CLUSTER_PORT_OFFSET)
    secret = tmp_path / "secret"
    secret.write_text("s" * 32 + "\n")
    node = Node(tmp_path / "n", "--port", str(base), "--tls-port", str(base + 1),
                "--tls-cluster", "yes", "--cluster-secret-file", str(secret), *tls_args(pki))
    nodes.append(node)
    ready(node, tls_client(pki, base + 1))
    # Even with the secret, the plain port takes no peer link.
    with socket.create_connection((HOST, base), timeout=10) as sock:
        sock.sendall(Dialer(b"s" * 32, "127.0.0.1:1", f"{HOST}:{base + 1}").hello())
        assert b"peer links over TLS only" in sock.recv(4096)
    # Over TLS the same hello gets its challenge.
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with socket.create_connection((HOST, base + 1), timeout=10) as raw, \
            ctx.wrap_socket(raw) as sock:
        sock.sendall(Dialer(b"s" * 32, "127.0.0.1:1", f"{HOST}:{base + 1}").hello())
        assert sock.recv(4096).startswith(b"*3\r\n")
