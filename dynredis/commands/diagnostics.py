"""SLOWLOG and LATENCY: the node's slow commands and latency events
(commands/callstats.py records them); DEBUG, refused as Redis 7.0 refuses it by default."""

from __future__ import annotations

from typing import Any

from ..resp import encode as resp
from .callstats import bucket_top
from .context import Context
from .table import ERR_NOT_INT, command, dispatch, err_protected, help_reply, parse_int, subcommand

FLAGS = ("admin", "noscript", "loading", "stale")


@command("slowlog", -2, (), group="server", since="2.2.12",
         summary="A container for slow log commands.")
def cmd_slowlog(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("slowlog", c, args)


@subcommand("slowlog", "get", -2, FLAGS, summary="Returns the slow log's entries.")
def cmd_slowlog_get(c: Context, args: list[bytes]) -> bytes:
    if len(args) > 3:
        return resp.error("ERR wrong number of arguments for 'slowlog|get' command")
    count = 10
    if len(args) == 3:
        n = parse_int(args[2])
        if n is None or n < -1:
            return resp.error("ERR count should be greater than or equal to -1")
        count = n if n >= 0 else -1
    entries = list(c.callstats.slowlog)
    if count >= 0:
        entries = entries[:count]
    out: list[Any] = [[e.id, e.when, e.us, list(e.args), e.peer, e.name] for e in entries]
    return resp.encode(out, c.proto)


@subcommand("slowlog", "len", 2, FLAGS, summary="Returns the number of entries in the slow log.")
def cmd_slowlog_len(c: Context, args: list[bytes]) -> bytes:
    return resp.integer(len(c.callstats.slowlog))


@subcommand("slowlog", "reset", 2, FLAGS, summary="Clears all entries from the slow log.")
def cmd_slowlog_reset(c: Context, args: list[bytes]) -> bytes:
    c.callstats.slowlog.clear()
    return resp.OK


@subcommand("slowlog", "help", 2, ("loading", "stale"), summary="Returns helpful text.")
def cmd_slowlog_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "slowlog", [
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog."])


@command("latency", -2, (), group="server", since="2.8.13",
         summary="A container for latency diagnostics commands.")
def cmd_latency(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("latency", c, args)


@subcommand("latency", "latest", 2, FLAGS, summary="Returns the latest latency samples.")
def cmd_latency_latest(c: Context, args: list[bytes]) -> bytes:
    stats = c.callstats
    out: list[Any] = []
    for name, samples in stats.latency.items():
        if samples:
            when, ms = samples[-1]
            out.append([name, when, ms, stats.latency_max.get(name, ms)])
    return resp.encode(out, c.proto)


@subcommand("latency", "history", 3, FLAGS, summary="Returns timestamp-latency samples.")
def cmd_latency_history(c: Context, args: list[bytes]) -> bytes:
    samples = c.callstats.latency.get(args[2].decode("utf-8", "replace"), ())
    return resp.encode([[when, ms] for when, ms in samples], c.proto)


@subcommand("latency", "reset", -2, FLAGS, summary="Resets the latency data of events.")
def cmd_latency_reset(c: Context, args: list[bytes]) -> bytes:
    stats = c.callstats
    names = [a.decode("utf-8", "replace") for a in args[2:]] or list(stats.latency)
    done = 0
    for name in names:
        if stats.latency.pop(name, None) is not None:
            done += 1
        stats.latency_max.pop(name, None)
    return resp.integer(done)


@subcommand("latency", "histogram", -2, FLAGS,
            summary="Returns the cumulative distribution of commands' latencies.")
def cmd_latency_histogram(c: Context, args: list[bytes]) -> bytes:
    stats = c.callstats
    wanted = {a.decode("utf-8", "replace").lower() for a in args[2:]}
    out: dict[str, Any] = {}
    for name, s in stats.by_name.items():
        if s.hist is None or (wanted and name not in wanted):
            continue
        # Redis' buckets: powers of two of microseconds, cumulative counts.
        buckets: dict[int, int] = {}
        total = 0
        for i, n in enumerate(s.hist):
            if n:
                total += n
                us = max(1, -(-bucket_top(i) // 1000))
                top = 1 << (us - 1).bit_length()
                buckets[top] = total
        out[name] = {"calls": s.calls, "histogram_usec": buckets}
    return resp.encode(out, c.proto)


@subcommand("latency", "help", 2, ("loading", "stale"), summary="Returns helpful text.")
def cmd_latency_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "latency", [
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram "
        "for the specified command names.",
        "    If no commands are specified then all histograms are replied."])


# --- DEBUG ------------------------------------------------------------------------------

ERR_DEBUG = err_protected("debug")


@command("debug", -2, (*FLAGS, "protected"), group="server", summary="Refused: as Redis 7.0 with its "
         "default enable-debug-command no.")
def cmd_debug(c: Context, args: list[bytes]) -> bytes:
    """Redis 7.0 ships with `enable-debug-command no`, and test suites and tools that
    call DEBUG (SLEEP, OBJECT, RELOAD, JMAP...) already handle its refusal; several of
    its subcommands (SEGFAULT, RELOAD, SET-ACTIVE-EXPIRE) have no meaning for a
    cluster of nodes, and DEBUG OBJECT's fields are OBJECT ENCODING / REFCOUNT /
    IDLETIME here. So every subcommand gets Redis' default refusal, word for word."""
    return ERR_DEBUG


__all__ = ["ERR_NOT_INT"]
