"""ACL users: Redis' ACL SETUSER rules, the permissions they give, the ACL LIST line.

Supported rules (as Redis spells them): `on` `off`, `>pass` `<pass` `#sha256` `!sha256`
`nopass` `resetpass`, `~pattern` `allkeys` `resetkeys`, `&pattern` `allchannels`
`resetchannels` (checked as Redis 7 checks them: see `channel_denial`), `+@all`/`allcommands`
`-@all`/`nocommands`, `+@category` `-@category`, `+command` `-command`,
`+command|sub` `-command|sub`, `sanitize-payload` `skip-sanitize-payload`, `reset`.
Commands are the ones dynredis serves, with Redis' ACL categories. Refused with an
error naming the rule: `%R~`/`%W~` key permissions, selectors `(...)`/`clearselectors`,
first-argument rules (`+select|0`).

Passwords are kept as SHA-256 hex, as Redis keeps them: a user's rules (its ACL LIST
line) hold no password, so they can travel to the other nodes and be stored as they are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..commands.glob import stringmatch
from ..commands.metadata import spec_keys
from ..commands.table import Command, commands
from ..resp import encode as resp

# Redis 7.0's categories, in its order (ACL CAT).
CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting")
_HASH = re.compile(r"[0-9a-f]{64}")


class RuleError(ValueError):
    """A rule ACL SETUSER refuses; str() is the reason Redis gives."""


@dataclass(frozen=True)
class Catalog:
    """Every command name a rule may use ("get", "config|get"), with its categories."""

    categories: dict[str, frozenset[str]]  # name -> categories (without '@')
    subs: dict[str, tuple[str, ...]]  # container -> its "container|sub" names
    all_categories: tuple[str, ...]


@cache
def catalog() -> Catalog:
    from ..commands.metadata import command_info

    cats: dict[str, frozenset[str]] = {}
    subs: dict[str, tuple[str, ...]] = {}

    def of(cmd: Command) -> frozenset[str]:
        return frozenset(str(c).removeprefix("@") for c in command_info(cmd)[6])

    for cmd in commands():
        cats[cmd.name] = of(cmd)
        names = []
        for sub in cmd.subcommands.values():
            cats[sub.name] = of(sub)
            names.append(sub.name)
        subs[cmd.name] = tuple(sorted(names))
    extra = sorted({c for cs in cats.values() for c in cs} - set(CATEGORIES))
    return Catalog(cats, subs, CATEGORIES + tuple(extra))


def password_hash(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


@dataclass
class User:
    name: str
    enabled: bool = False
    nopass: bool = False
    passwords: list[str] = field(default_factory=list)  # SHA-256 hex, in order added
    all_commands: bool = False  # the base: +@all (else -@all)
    rules: list[str] = field(default_factory=list)  # command rules after the base
    keys: list[str] = field(default_factory=list)  # "*" for allkeys
    channels: list[str] = field(default_factory=list)  # "*" for allchannels
    sanitize: str = ""  # "sanitize-payload", "skip-sanitize-payload" or ""
    _allowed: frozenset[str] | None = None

    # --- rules -----------------------------------------------------------------------

    def apply(self, op: str) -> None:
        """Apply one ACL SETUSER rule (RuleError if refused; the user may then be half
        changed: callers apply rules to a copy)."""
        low = op.lower()
        if low == "on":
            self.enabled = True
        elif low == "off":
            self.enabled = False
        elif low == "nopass":
            self.nopass = True
            self.passwords.clear()
        elif low == "resetpass":
            self.nopass = False
            self.passwords.clear()
        elif op[:1] in (">", "#"):
            digest = password_hash(op[1:].encode()) if op[0] == ">" else op[1:]
            if op[0] == "#" and not _HASH.fullmatch(digest):
                raise RuleError("The password hash must be exactly 64 characters and "
                                "contain only lowercase hexadecimal characters")
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif op[:1] in ("<", "!"):
            digest = password_hash(op[1:].encode()) if op[0] == "<" else op[1:]
            if op[0] == "!" and not _HASH.fullmatch(digest):
                raise RuleError("The password hash must be exactly 64 characters and "
                                "contain only lowercase hexadecimal characters")
            if digest not in self.passwords:
                raise RuleError("The password you are trying to remove from the user "
                                "does not exist")
            self.passwords.remove(digest)
        elif low == "allkeys":
            self.keys = ["*"]
        elif low == "resetkeys":
            self.keys = []
        elif op[:1] == "~":
            self._pattern(self.keys, op[1:], "allkeys", "resetkeys", "list of patterns")
        elif low == "allchannels":
            self.channels = ["*"]
        elif low == "resetchannels":
            self.channels = []
        elif op[:1] == "&":
            self._pattern(self.channels, op[1:], "allchannels", "resetchannels",
                          "list of channels")
        elif low in ("allcommands", "+@all"):
            self.all_commands = True
            self.rules = []
        elif low in ("nocommands", "-@all"):
            self.all_commands = False
            self.rules = []
        elif op[:1] in ("+", "-") and len(op) > 1:
            self._command_rule(op[0], low[1:])
        elif low in ("sanitize-payload", "skip-sanitize-payload"):
            self.sanitize = low
        elif low == "reset":
            for step in ("resetpass", "resetkeys", "resetchannels", "off", "-@all"):
                self.apply(step)
            self.sanitize = "sanitize-payload"
        elif op[:1] == "%" or op[:1] == "(" or low == "clearselectors":
            raise RuleError("not supported by dynredis (key permissions %R~/%W~ and "
                            "selectors are not)")
        else:
            raise RuleError("Syntax error")
        self._allowed = None

    @staticmethod
    def _pattern(patterns: list[str], pattern: str, every: str, reset: str,
                 what: str) -> None:
        if "*" in patterns:
            raise RuleError(f"Adding a pattern after the * pattern (or the '{every}' flag) "
                            f"is not valid and does not have any effect. Try '{reset}' to "
                            f"start with an empty {what}")
        if pattern == "*":
            patterns.clear()
        if pattern not in patterns:
            patterns.append(pattern)

    def _command_rule(self, sign: str, name: str) -> None:
        cat = catalog()
        if name.startswith("@"):
            if name[1:] not in cat.all_categories:
                raise RuleError("Unknown command or category name in ACL")
        elif name not in cat.categories:
            raise RuleError("Unknown command or category name in ACL")
        rule = sign + name
        if name.startswith("@"):
            self.rules.append(rule)
            return
        # A command's rule replaces an earlier rule of it (and of its subcommands).
        self.rules = [r for r in self.rules
                      if r[1:] != name and not r[1:].startswith(name + "|")]
        self.rules.append(rule)

    # --- what the rules allow --------------------------------------------------------

    def allowed(self) -> frozenset[str]:
        if self._allowed is None:
            self._allowed = frozenset(_apply_rules(self.all_commands, self.rules))
        return self._allowed

    def unrestricted(self) -> bool:
        """May run everything on every key and channel: no check needed per command."""
        return self.all_commands and self.keys == ["*"] and self.channels == ["*"] \
            and self.allowed() >= frozenset(catalog().categories)

    def check_password(self, password: bytes) -> bool:
        import hmac

        if self.nopass:
            return True
        digest = password_hash(password)
        return any(hmac.compare_digest(digest, p) for p in self.passwords)

    # --- ACL LIST / GETUSER ----------------------------------------------------------

    def command_rules(self) -> str:
        """The command part of the ACL LIST line: the base, the category rules, then the
        command rules that still change anything (so `+get -get` is just `-@all`)."""
        parts = ["+@all" if self.all_commands else "-@all"]
        cats = [r for r in self.rules if r[1:2] == "@"]
        parts += cats
        current = _apply_rules(self.all_commands, cats)
        for rule in self.rules:
            if rule[1:2] == "@":
                continue
            after = _apply_rules(False, [rule], current)
            if after != current:
                parts.append(rule)
                current = after
        return " ".join(parts)

    def keys_text(self) -> str:
        return " ".join(f"~{k}" for k in self.keys)

    def channels_text(self) -> str:
        if self.channels == ["*"]:
            return "&*"
        return " ".join(["resetchannels", *(f"&{c}" for c in self.channels)])

    def describe(self) -> str:
        """The user's rules as ACL LIST prints them (after "user <name> ")."""
        parts = ["on" if self.enabled else "off"]
        if self.nopass:
            parts.append("nopass")
        if self.sanitize:
            parts.append(self.sanitize)
        parts += [f"#{p}" for p in self.passwords]
        if self.keys:
            parts.append(self.keys_text())
        parts.append(self.channels_text())
        parts.append(self.command_rules())
        return " ".join(parts)

    def getuser(self, proto: int) -> bytes:
        flags = ["on" if self.enabled else "off"]
        if self.nopass:
            flags.append("nopass")
        if self.sanitize:
            flags.append(self.sanitize)
        return resp.encode({
            "flags": flags,
            "passwords": list(self.passwords),
            "commands": self.command_rules(),
            "keys": self.keys_text(),
            "channels": "&*" if self.channels == ["*"]
            else " ".join(f"&{c}" for c in self.channels),
            "selectors": [],
        }, proto)

    # --- checking a command ----------------------------------------------------------

    def denial(self, cmd: Command, args: list[bytes]) -> tuple[str, str] | None:
        """None if the user may run `args`; else (reason, object): ("command",
        "config|set"), ("key", the key) or ("channel", the channel), checked in Redis'
        order (command, keys, channels)."""
        name = cmd.name
        if cmd.subcommands and len(args) > 1:
            sub = cmd.subcommands.get(args[1].decode("utf-8", "replace").lower())
            if sub is not None:
                name = sub.name
        if name not in self.allowed():
            return "command", name
        if self.keys != ["*"] and (cmd.first_key or cmd.keys_of
                                   or "movablekeys" in cmd.flags):
            for key in command_keys(cmd, args):
                if not any(stringmatch(p.encode(), key) for p in self.keys):
                    return "key", key.decode("utf-8", "replace")
        channel = self.channel_denial(cmd.name, args)
        if channel is not None:
            return "channel", channel.decode("utf-8", "replace")
        return None

    def channel_denial(self, name: str, args: list[bytes]) -> bytes | None:
        """The first channel argument of a pub/sub command the user's `&` patterns do
        not allow, or None. As Redis 7: PUBLISH, SPUBLISH, SUBSCRIBE and SSUBSCRIBE
        name channels, which must match one of the patterns; PSUBSCRIBE names patterns,
        each of which must equal one of the user's patterns (a pattern's matches cannot
        be compared with another's); unsubscribing is always allowed."""
        where = CHANNEL_ARGS.get(name)
        if where is None or self.channels == ["*"]:
            return None
        first, last = where
        for arg in args[first:last]:
            if not self.may_access(arg, literal=name == "psubscribe"):
                return arg
        return None

    def may_access(self, channel: bytes, literal: bool = False) -> bool:
        """Whether a subscription to `channel` (a pattern, if `literal`) is allowed."""
        if self.channels == ["*"]:
            return True
        if literal:
            return any(p.encode() == channel for p in self.channels)
        return any(stringmatch(p.encode(), channel) for p in self.channels)

    def may_keep(self, subs: Any) -> bool:
        """Whether a connection's subscriptions (a SubState) are all still allowed."""
        if self.channels == ["*"]:
            return True
        return all(self.may_access(c) for c in subs.channels) \
            and all(self.may_access(c) for c in subs.shard) \
            and all(self.may_access(p, literal=True) for p in subs.patterns)


# Pub/sub commands' channel arguments: args[first:last] (last None: to the end).
CHANNEL_ARGS: dict[str, tuple[int, int | None]] = {
    "publish": (1, 2), "spublish": (1, 2),
    "subscribe": (1, None), "ssubscribe": (1, None), "psubscribe": (1, None),
}


def command_keys(cmd: Command, args: list[bytes]) -> list[bytes]:
    """The key arguments of a command (as COMMAND GETKEYS): where its `keys_of` or, for
    a command whose keys move, Redis' key specs find them (SORT's STORE, the keys after
    a numkeys), else by its key positions."""
    if cmd.keys_of is not None or "movablekeys" in cmd.flags:
        keys = cmd.keys_of(args) if cmd.keys_of is not None else spec_keys(cmd.name, args)
        if keys is not None:
            return keys
    first, last, step = cmd.first_key, cmd.last_key, cmd.step or 1
    if not first or first >= len(args):
        return []
    end = len(args) + last if last < 0 else min(last, len(args) - 1)
    return [args[i] for i in range(first, end + 1, step)]


def _apply_rules(all_commands: bool, rules: list[str],
                 start: set[str] | None = None) -> set[str]:
    cat = catalog()
    if start is not None:
        allowed = set(start)
    else:
        allowed = set(cat.categories) if all_commands else set()
    for rule in rules:
        allow, name = rule[0] == "+", rule[1:]
        if name.startswith("@"):
            names = {n for n, cs in cat.categories.items() if name[1:] in cs}
        else:
            names = {name, *cat.subs.get(name, ())}
        if allow:
            allowed |= names
        else:
            allowed -= names
    return allowed


def new_user(name: str, rules: list[str]) -> User:
    """A user made from rules (as ACL SETUSER name rules... on a new user)."""
    user = User(name)
    for op in rules:
        user.apply(op)
    return user


def parse_description(name: str, text: str) -> User:
    """A user from its ACL LIST rules (what the cluster stores and passes around)."""
    return new_user(name, text.split())
