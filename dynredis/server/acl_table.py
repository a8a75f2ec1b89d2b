"""The cluster's ACL users, the same on every node: a last-writer-wins map of users.

Each user is kept as its ACL LIST rules (passwords only as SHA-256 hashes) with a
version (milliseconds, node name); a deleted user keeps its version without rules (a
tombstone, so that an older copy cannot bring it back). A change goes to every member
at once; a node also sends its whole table to each new link and, every few seconds,
to one member, so a node that was down or cut off when a change happened gets it.
The table is small (users, not data) and kept in the node's metadata across restarts.

Until ACL SETUSER changes it, the `default` user is the node's own: `on nopass ~* &*
+@all`, or with --requirepass the same with that password instead of nopass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgpack

from .acl_users import RuleError, User, new_user, parse_description

log = logging.getLogger("dynredis.acl")

META_KEY = "acl"
MAX_USERS = 10_000
Entry = tuple[int, str, str | None]  # (ms, node, ACL LIST rules, or None: deleted)


class UserTable:
    def __init__(self, node: Any, engine: Any, requirepass: str | None) -> None:
        self.node = node
        self.engine = engine
        self.requirepass = requirepass
        self.entries: dict[str, Entry] = {}
        self.users: dict[str, User] = {}
        # Called with the names of users that changed (the server updates connections).
        self.on_change: Callable[[set[str]], None] | None = None
        raw = engine.meta_get(META_KEY)
        if raw is not None:
            self._merge(msgpack.unpackb(raw, use_list=False), save=False)
        if "default" not in self.users:
            self.users["default"] = self._builtin_default()
        node.handlers["acl"] = self._on_acl

    def _builtin_default(self) -> User:
        secret = [">" + self.requirepass] if self.requirepass else ["nopass"]
        return new_user("default", ["on", *secret, "~*", "&*", "+@all"])

    # --- reading ---------------------------------------------------------------------

    def get(self, name: str) -> User | None:
        return self.users.get(name)

    def names(self) -> list[str]:
        return sorted(self.users)

    def default_open(self) -> bool:
        """New connections are authenticated as `default` (on, no password)."""
        d = self.users["default"]
        return d.enabled and d.nopass

    def restrictions(self, name: str) -> User | None:
        """The user a connection's commands are checked against; None when it may run
        everything (no check at all on the request path)."""
        user = self.users.get(name)
        if user is None or user.unrestricted():
            return None
        return user

    def authenticate(self, name: str, password: bytes) -> User | None:
        user = self.users.get(name)
        if user is None or not user.enabled or not user.check_password(password):
            return None
        return user

    # --- changing --------------------------------------------------------------------

    def set_user(self, name: str, rules: list[str]) -> None:
        """ACL SETUSER: apply `rules` to the user (a new one if absent), everywhere.
        RuleError (the rule and why) changes nothing."""
        current = self.users.get(name)
        if current is None and len(self.users) >= MAX_USERS:
            raise RuleError(f"too many users (at most {MAX_USERS})")
        user = parse_description(name, current.describe()) if current else User(name)
        for op in rules:
            try:
                user.apply(op)
            except RuleError as exc:
                raise RuleError(f"Error in ACL SETUSER modifier '{op}': {exc}") from None
        self._write(name, user.describe())

    def delete(self, name: str) -> bool:
        if name not in self.users:
            return False
        self._write(name, None)
        return True

    def _write(self, name: str, rules: str | None) -> None:
        node = self.node
        old = self.entries.get(name)
        ms = max(node.now, old[0] + 1) if old else node.now
        entry = (name, ms, node.name, rules)
        self._merge([entry])
        for peer in node.members:
            if peer != node.name:
                node.send(peer, ("acl", [entry]))

    # --- the other nodes -------------------------------------------------------------

    def tell(self, peer: str) -> None:
        """Send `peer` the whole table (on a new link, and now and then)."""
        if self.entries and peer != self.node.name:
            self.node.send(peer, ("acl", [(n, *e) for n, e in self.entries.items()]))

    def gossip(self) -> None:
        node = self.node
        peers = sorted(node.members - {node.name})
        if self.entries and peers:
            self.tell(node.rng.choice(peers))

    def _on_acl(self, src: str, msg: tuple) -> None:
        try:
            self._merge(msg[1])
        except (TypeError, ValueError, IndexError):
            log.warning("bad ACL table from %s", src)

    def _merge(self, entries: Any, save: bool = True) -> None:
        changed: set[str] = set()
        for name, ms, origin, rules in entries:
            if not (isinstance(name, str) and isinstance(ms, int) and isinstance(origin, str)
                    and (rules is None or isinstance(rules, str))):
                raise ValueError("bad ACL entry")
            old = self.entries.get(name)
            if old is not None and (old[0], old[1]) >= (ms, origin):
                continue
            if rules is None:
                self.users.pop(name, None)
                if name == "default":
                    self.users["default"] = self._builtin_default()
            else:
                try:
                    self.users[name] = parse_description(name, rules)
                except RuleError as exc:
                    log.warning("ACL user %s: rules %r not understood: %s", name, rules, exc)
                    continue
            self.entries[name] = (ms, origin, rules)
            changed.add(name)
        if not changed:
            return
        if save:
            self.engine.meta_put(META_KEY, msgpack.packb(
                [(n, *e) for n, e in sorted(self.entries.items())], use_bin_type=True))
        if self.on_change is not None:
            self.on_change(changed)
