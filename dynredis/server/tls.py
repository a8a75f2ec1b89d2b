"""TLS for clients and peer links (Python's ssl), configured with Redis' option names.

A node with `--tls-port` serves TLS clients there, presenting `--tls-cert-file` /
`--tls-key-file`. As in Redis, `--tls-auth-clients yes` (the default) makes a client
present a certificate signed by `--tls-ca-cert-file`, `optional` checks one only if
presented, `no` asks for none. With `--tls-cluster yes` peer links use TLS too: a node
dials its peers' TLS ports presenting its own certificate and checks theirs against
the CA (no host name check: nodes are addressed by IP, as Redis does it).
"""

from __future__ import annotations

import ssl

VERIFY = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}


def check_options(tls_port: int, cert: str | None, key: str | None, ca: str | None,
                  auth_clients: str, tls_cluster: bool) -> None:
    """Raise ValueError for a combination Redis would refuse at startup."""
    if auth_clients not in VERIFY:
        raise ValueError("tls-auth-clients must be yes, no or optional")
    if tls_cluster and not tls_port:
        raise ValueError("--tls-cluster yes needs a --tls-port (peers dial it)")
    if not tls_port:
        return
    if not cert or not key:
        raise ValueError("--tls-port needs --tls-cert-file and --tls-key-file")
    if (auth_clients != "no" or tls_cluster) and not ca:
        raise ValueError("--tls-ca-cert-file must be given when --tls-cluster or "
                         "--tls-auth-clients (yes by default) are enabled")


def server_context(cert: str, key: str, ca: str | None, auth_clients: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if ca:
        ctx.load_verify_locations(ca)
    ctx.verify_mode = VERIFY[auth_clients]
    return ctx


def client_context(cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext:
    """What a node dials its peers with (and the CLI its nodes): the peer's certificate
    must chain to the CA; ours is presented for the peer to check."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    if ca:
        ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx
