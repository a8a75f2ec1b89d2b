"""Peer links prove the cluster secret per connection, without sending it.

Peers share the client port, so a connection becomes a peer link only after a
challenge-response on the DYN.PEER hello (mutual: each side proves it holds the
secret to the other, on fresh nonces, bound to both names):

    dialer   -> acceptor  DYN.PEER HELLO <dialer name> <protocol> <dialer nonce>
    acceptor -> dialer    [<acceptor nonce>, <acceptor proof>, <acceptor name>]
    dialer   -> acceptor  DYN.PEER PROOF <dialer proof>      (then peer frames)

    acceptor proof = HMAC-SHA256(secret, "accept", dialer nonce, acceptor nonce, names)
    dialer proof   = HMAC-SHA256(secret, "dial", acceptor nonce, dialer nonce, names)

A connection is either a proven peer or a client (subject to AUTH like any other): a
wrong proof, a missing one (any other command after HELLO) or an old build's hello
closes it with an error. A secret-holding dialer that is not the peer it claims to be
gains nothing it could not do with the secret anyway; anyone without it cannot make a
node apply one peer message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from typing import Any

from ..resp import encode as resp
from .wire import PEER_PROTOCOL

log = logging.getLogger("dynredis.peers")

NONCE_BYTES = 32
HELLO = b"HELLO"
PROOF = b"PROOF"
_LOGGED_MAX = 1024  # refused peer names logged once each, up to this many


def _mac(secret: bytes, label: bytes, *fields: bytes) -> bytes:
    msg = label + b"".join(b"%d:%b" % (len(f), f) for f in fields)
    return hmac.new(secret, msg, hashlib.sha256).hexdigest().encode()


def acceptor_proof(secret: bytes, dialer_nonce: bytes, acceptor_nonce: bytes,
                   dialer: bytes, acceptor: bytes) -> bytes:
    return _mac(secret, b"dynredis peer accept", dialer_nonce, acceptor_nonce, dialer,
                acceptor)


def dialer_proof(secret: bytes, dialer_nonce: bytes, acceptor_nonce: bytes,
                 dialer: bytes, acceptor: bytes) -> bytes:
    return _mac(secret, b"dynredis peer dial", acceptor_nonce, dialer_nonce, dialer,
                acceptor)


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES).hex().encode()


def command(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words)


# --- the dialing side ----------------------------------------------------------------


class Dialer:
    """One outbound link's handshake: the hello to send, then the acceptor's challenge
    checked and answered.

    `peer` is the node dialled: the challenge must come from it, by name (the name is
    in the acceptor's proof). Without that check a challenge from any node proved the
    link: a local process holding a dead node's port relayed a live peer's hello to a
    third node, passed that node's challenge back, and the dialer's proof made the
    relay's connection a peer link of the third node, which one frame then wiped.
    `alias_ok(name)`: whether a challenge under another name is taken all the same (a
    seed given as a host name or `localhost`, which its node does not call itself:
    PeerLink takes it only from a node it does not know yet, where a relay would
    bring a member's challenge)."""

    def __init__(self, secret: bytes, name: str, peer: str,
                 alias_ok: Callable[[bytes], bool] | None = None) -> None:
        self.secret = secret
        self.name = name.encode()
        self.peer = peer.encode()
        self.alias_ok = alias_ok
        self.nonce = new_nonce()
        self.failure = ""  # why `answer` refused the challenge (for the log)

    def hello(self) -> bytes:
        return command(b"DYN.PEER", HELLO, self.name, b"%d" % PEER_PROTOCOL, self.nonce)

    def answer(self, challenge: Any) -> bytes | None:
        """The PROOF command answering the acceptor's challenge, or None when the
        acceptor did not prove the secret (an impostor, or another cluster's node)."""
        if not (isinstance(challenge, list) and len(challenge) == 3
                and all(isinstance(x, bytes) for x in challenge)):
            self.failure = "the peer's challenge is malformed"
            return None
        their_nonce, their_proof, their_name = challenge
        if len(their_nonce) != 2 * NONCE_BYTES:
            self.failure = "the peer's challenge is malformed"
            return None
        if their_name != self.peer and (self.alias_ok is None
                                        or not self.alias_ok(their_name)):
            self.failure = (f"the node answering is "
                            f"{their_name.decode(errors='replace')[:100]}, not the one dialled")
            return None
        expected = acceptor_proof(self.secret, self.nonce, their_nonce, self.name, their_name)
        if not hmac.compare_digest(expected, their_proof):
            self.failure = "the peer did not prove the cluster secret"
            return None
        return command(b"DYN.PEER", PROOF,
                       dialer_proof(self.secret, self.nonce, their_nonce, self.name,
                                    their_name))


# --- the accepting side --------------------------------------------------------------


class Pending:
    """An inbound connection between HELLO and PROOF."""

    __slots__ = ("name", "expected")

    def __init__(self, name: str, expected: bytes) -> None:
        self.name = name
        self.expected = expected


class Acceptor:
    """Turns inbound connections that prove the secret into peer links."""

    def __init__(self, secret: bytes, name: str, tls_only: bool) -> None:
        self.secret = secret
        self.name = name.encode()
        self.tls_only = tls_only  # --tls-cluster yes: peer links over TLS only
        self.refusals = 0
        self.accepted = 0
        self._logged: set[str] = set()

    def on_command(self, conn: Any, args: list[bytes]) -> None:
        """DYN.PEER ... on a connection (a client's, as far as anyone knows yet)."""
        sub = args[1].upper() if len(args) > 1 else b""
        pending = conn.peer_pending
        if sub == HELLO and len(args) == 5 and pending is None:
            self._hello(conn, args)
        elif sub == PROOF and len(args) == 3 and pending is not None:
            self._proof(conn, pending, args[2])
        elif sub in (HELLO, PROOF):
            self.refuse(conn, conn.peer, "ERR peer handshake out of order")
        else:
            # An earlier build's hello: DYN.PEER <secret> <name> [<protocol>]. Whatever
            # protocol it names, that build's handshake is not this one.
            name = args[2].decode(errors="replace") if len(args) > 2 else conn.peer
            self.refuse(conn, name, "ERR peer handshake of an earlier build is not "
                                    f"supported: this node speaks peer protocol "
                                    f"{PEER_PROTOCOL}")

    def _hello(self, conn: Any, args: list[bytes]) -> None:
        name = args[2].decode(errors="replace")
        version = args[3].decode(errors="replace")
        if version != str(PEER_PROTOCOL):
            self.refuse(conn, name, f"ERR peer protocol {version} is not supported: this "
                                    f"node speaks peer protocol {PEER_PROTOCOL}")
            return
        if self.tls_only and conn.transport is not None \
                and conn.transport.get_extra_info("ssl_object") is None:
            self.refuse(conn, name, "ERR this node takes peer links over TLS only "
                                    "(tls-cluster yes)")
            return
        their_nonce = args[4]
        if len(their_nonce) != 2 * NONCE_BYTES:
            self.refuse(conn, name, "ERR peer handshake: bad nonce")
            return
        nonce = new_nonce()
        conn.peer_pending = Pending(
            name, dialer_proof(self.secret, their_nonce, nonce, args[2], self.name))
        conn.reply(resp.encode([nonce, acceptor_proof(self.secret, their_nonce, nonce,
                                                      args[2], self.name), self.name], 2))

    def _proof(self, conn: Any, pending: Pending, proof: bytes) -> None:
        conn.peer_pending = None
        if not hmac.compare_digest(proof, pending.expected):
            self.refuse(conn, pending.name,
                        "ERR peer authentication failed: wrong cluster secret")
            return
        self.accepted += 1
        conn.peer_name = pending.name
        conn.server.peer_proven(pending.name)

    def not_proof(self, conn: Any) -> None:
        """A command other than PROOF after HELLO: not a peer, and not a client either."""
        pending = conn.peer_pending
        conn.peer_pending = None
        self.refuse(conn, pending.name, "ERR peer handshake: expected DYN.PEER PROOF")

    def refuse(self, conn: Any, name: str, error: str) -> None:
        """Answer `error`, close the connection, and log it the first time for `name`."""
        self.refusals += 1
        if name not in self._logged and len(self._logged) < _LOGGED_MAX:
            self._logged.add(name)
            log.warning("refused a peer link from %s claiming to be %s: %s", conn.peer,
                        name, error.removeprefix("ERR "))
        conn.reply(resp.error(error))
        conn.closing = True
