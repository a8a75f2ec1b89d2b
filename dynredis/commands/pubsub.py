"""SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, PUBLISH, SPUBLISH, PUBSUB.

Replies are Redis 7.0's: one subscribe/unsubscribe message per channel (a RESP3 push),
with the client's count (channels and patterns; shard channels count apart). Messages
reach the subscribers of every node (cluster/pubsub.py); PUBLISH answers how many
received it cluster-wide, and PUBSUB's figures are the cluster's. Shard channels are a
namespace of their own, delivered the same way (every node serves every slot here).
"""

from __future__ import annotations

from typing import Any

from ..resp import encode as resp
from .context import Context
from .table import command, dispatch, help_reply, subcommand

CHANNELS = "channels"
PATTERNS = "patterns"
SHARD = "shard"

# What a RESP2 client in subscriber mode may still run (Redis' words in the error).
SUBSCRIBER_COMMANDS = frozenset({"subscribe", "unsubscribe", "psubscribe", "punsubscribe",
                                 "ssubscribe", "sunsubscribe", "ping", "quit", "reset"})


def subscriber_refusal(name: str) -> bytes:
    return resp.error(f"ERR Can't execute '{name}': only (P|S)SUBSCRIBE / "
                      "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")


def _reply(c: Context, kind: bytes, name: bytes | None, count: int) -> bytes:
    head = b">3\r\n" if c.proto == 3 else b"*3\r\n"
    return (head + resp.bulk(kind) + (resp.bulk(name) if name is not None else c.nil)
            + resp.integer(count))


def _count(c: Any, table: str) -> int:
    return len(c.subs.shard) if table == SHARD else c.subs.count


def _subscribe(c: Any, table: str, kind: bytes, names: list[bytes]) -> bytes:
    subs = c.pubsub.subs
    out = []
    for name in names:
        subs.add(c, table, name)
        out.append(_reply(c, kind, name, _count(c, table)))
    return b"".join(out)


def _unsubscribe(c: Any, table: str, kind: bytes, names: list[bytes]) -> bytes:
    subs = c.pubsub.subs
    if not names:
        names = list(getattr(c.subs, table))
        if not names:
            return _reply(c, kind, None, _count(c, table))
    out = []
    for name in names:
        subs.remove(c, table, name)
        out.append(_reply(c, kind, name, _count(c, table)))
    return b"".join(out)


FLAGS = ("pubsub", "noscript", "loading", "stale")


@command("subscribe", -2, FLAGS, group="pubsub",
         summary="Listens for messages published to channels (on every node).", since="2.0.0")
def cmd_subscribe(c: Context, args: list[bytes]) -> bytes:
    return _subscribe(c, CHANNELS, b"subscribe", args[1:])


@command("unsubscribe", -1, FLAGS, group="pubsub",
         summary="Stops listening to messages posted to channels.", since="2.0.0")
def cmd_unsubscribe(c: Context, args: list[bytes]) -> bytes:
    return _unsubscribe(c, CHANNELS, b"unsubscribe", args[1:])


@command("psubscribe", -2, FLAGS, group="pubsub",
         summary="Listens for messages published to channels that match patterns.",
         since="2.0.0")
def cmd_psubscribe(c: Context, args: list[bytes]) -> bytes:
    return _subscribe(c, PATTERNS, b"psubscribe", args[1:])


@command("punsubscribe", -1, FLAGS, group="pubsub",
         summary="Stops listening to messages published to channels that match patterns.",
         since="2.0.0")
def cmd_punsubscribe(c: Context, args: list[bytes]) -> bytes:
    return _unsubscribe(c, PATTERNS, b"punsubscribe", args[1:])


@command("ssubscribe", -2, FLAGS, 1, -1, 1, group="pubsub",
         summary="Listens for messages published to shard channels.", since="7.0.0")
def cmd_ssubscribe(c: Context, args: list[bytes]) -> bytes:
    return _subscribe(c, SHARD, b"ssubscribe", args[1:])


@command("sunsubscribe", -1, FLAGS, 1, -1, 1, group="pubsub",
         summary="Stops listening to messages posted to shard channels.", since="7.0.0")
def cmd_sunsubscribe(c: Context, args: list[bytes]) -> bytes:
    return _unsubscribe(c, SHARD, b"sunsubscribe", args[1:])


def _publish(c: Context, args: list[bytes], shard: bool) -> bytes | None:
    """Delivered here at once (so a RESP3 publisher subscribed to the channel gets the
    message before the reply, as from Redis), then counted across the cluster."""
    got: list[int] = []
    slot: list[Any] = []

    def counted(n: int) -> None:
        if slot:
            slot[0].set(resp.integer(n))
        else:
            got.append(n)

    c.pubsub.publish(args[1], args[2], shard, counted)
    if got:
        return resp.integer(got[0])
    slot.append(c.defer())
    return None


@command("publish", 3, ("pubsub", "loading", "stale", "fast", "may_replicate"),
         group="pubsub", summary="Posts a message to a channel (its subscribers on every node).",
         since="2.0.0")
def cmd_publish(c: Context, args: list[bytes]) -> bytes | None:
    return _publish(c, args, False)


@command("spublish", 3, ("pubsub", "loading", "stale", "fast", "may_replicate"), 1, 1, 1,
         group="pubsub", summary="Post a message to a shard channel.", since="7.0.0")
def cmd_spublish(c: Context, args: list[bytes]) -> bytes | None:
    return _publish(c, args, True)


# --- PUBSUB ---------------------------------------------------------------------------


@command("pubsub", -2, (), group="pubsub",
         summary="A container for Pub/Sub commands.", since="2.8.0")
def cmd_pubsub(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("pubsub", c, args)


def _syntax(sub: str) -> bytes:
    return resp.error(f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
                      "Try PUBSUB HELP.")


def _ask(c: Context, what: str, args: list[bytes], merge: Any) -> None:
    slot = c.defer()
    proto = c.proto

    def answered(results: list[Any]) -> None:
        slot.set(resp.encode(merge([r for r in results if isinstance(r, (list, tuple))]),
                             proto))

    c.pubsub.query(what, args, answered)


def _union(results: list[Any]) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for names in results:
        for name in names:
            if isinstance(name, bytes):
                seen[name] = None
    return list(seen)


def _sums(names: list[bytes]) -> Any:
    def merge(results: list[Any]) -> list[Any]:
        out: list[Any] = []
        for i, name in enumerate(names):
            out.append(name)
            out.append(sum(r[i] for r in results if len(r) > i and isinstance(r[i], int)))
        return out
    return merge


def _channels(c: Context, args: list[bytes], what: str) -> bytes | None:
    if len(args) > 3:
        return _syntax(args[1].decode("utf-8", "replace").lower())
    _ask(c, what, args[2:], _union)
    return None


@subcommand("pubsub", "channels", -2, ("pubsub", "loading", "stale"),
            summary="Returns the active channels (of every node).", since="2.8.0")
def cmd_pubsub_channels(c: Context, args: list[bytes]) -> bytes | None:
    return _channels(c, args, "channels")


@subcommand("pubsub", "shardchannels", -2, ("pubsub", "loading", "stale"),
            summary="Returns the active shard channels (of every node).", since="7.0.0")
def cmd_pubsub_shardchannels(c: Context, args: list[bytes]) -> bytes | None:
    return _channels(c, args, "shardchannels")


@subcommand("pubsub", "numsub", -2, ("pubsub", "loading", "stale"),
            summary="Returns a count of subscribers to channels (on every node).",
            since="2.8.0")
def cmd_pubsub_numsub(c: Context, args: list[bytes]) -> bytes | None:
    _ask(c, "numsub", args[2:], _sums(args[2:]))
    return None


@subcommand("pubsub", "shardnumsub", -2, ("pubsub", "loading", "stale"),
            summary="Returns the count of subscribers of shard channels (on every node).",
            since="7.0.0")
def cmd_pubsub_shardnumsub(c: Context, args: list[bytes]) -> bytes | None:
    _ask(c, "shardnumsub", args[2:], _sums(args[2:]))
    return None


@subcommand("pubsub", "numpat", 2, ("pubsub", "loading", "stale"),
            summary="Returns a count of unique pattern subscriptions (on every node).",
            since="2.8.0")
def cmd_pubsub_numpat(c: Context, args: list[bytes]) -> bytes | None:
    _ask(c, "numpat", [], lambda results: len(_union(results)))
    return None


@subcommand("pubsub", "help", 2, ("loading", "stale"), summary="Returns helpful text.",
            since="6.2.0")
def cmd_pubsub_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "pubsub", [
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> "
        "(default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help."])
