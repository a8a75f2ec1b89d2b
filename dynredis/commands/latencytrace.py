"""DYN.LATENCY: the node's sampled latency breakdown (server/latency.py records it)."""

from __future__ import annotations

import json
from typing import Any

from ..resp import encode as resp
from .table import command, dispatch, help_reply, parse_int, subcommand

FLAGS = ("admin", "noscript", "loading", "stale")
ERR_NO_TRACE = resp.error("ERR this connection cannot reach the node's latency trace")
ERR_OFF = resp.error("ERR the latency trace is off (DYN.LATENCY ON [every])")
DEFAULT_EVERY = 8


def _server(c: Any) -> Any:
    return getattr(c, "server", None)


def _trace(c: Any) -> Any:
    """The node's latency trace, or None when it is off (or out of this caller's reach)."""
    server = _server(c)
    return None if server is None else server.trace


@command("dyn.latency", -2, (), group="dynamo", since="0.1.0",
         summary="A container for the node's sampled latency breakdown.")
def cmd_latency(c: Any, args: list[bytes]) -> bytes | None:
    return dispatch("dyn.latency", c, args)


@subcommand("dyn.latency", "on", -2, FLAGS,
            summary="Follows one request in <every> (default 8) through the node.")
def cmd_latency_on(c: Any, args: list[bytes]) -> bytes:
    server = _server(c)
    if server is None:
        return ERR_NO_TRACE
    every = DEFAULT_EVERY
    if len(args) > 3:
        return resp.error("ERR wrong number of arguments for 'dyn.latency|on' command")
    if len(args) == 3:
        n = parse_int(args[2])
        if n is None or n < 1:
            return resp.error("ERR every must be a positive integer")
        every = n
    server.trace_on(every)
    return resp.OK


@subcommand("dyn.latency", "off", 2, FLAGS,
            summary="Stops following requests and forgets what was recorded.")
def cmd_latency_off(c: Any, args: list[bytes]) -> bytes:
    server = _server(c)
    if server is None:
        return ERR_NO_TRACE
    server.trace_off()
    return resp.OK


@subcommand("dyn.latency", "reset", 2, FLAGS,
            summary="Forgets what was recorded (the trace stays on).")
def cmd_latency_reset(c: Any, args: list[bytes]) -> bytes:
    trace = _trace(c)
    if trace is None:
        return ERR_OFF
    trace.reset()
    return resp.OK


@subcommand("dyn.latency", "stages", 2, FLAGS,
            summary="Per stage: name, count, p50, p99, p99.9 and max in microseconds.")
def cmd_latency_stages(c: Any, args: list[bytes]) -> bytes:
    trace = _trace(c)
    if trace is None:
        return ERR_OFF
    return resp.encode(trace.stages(), c.proto)


@subcommand("dyn.latency", "dump", 2, FLAGS,
            summary="Every record and histogram, as JSON (for bench/latency.py).")
def cmd_latency_dump(c: Any, args: list[bytes]) -> bytes:
    trace = _trace(c)
    if trace is None:
        return ERR_OFF
    return resp.bulk(json.dumps(trace.dump(), separators=(",", ":")).encode())


@subcommand("dyn.latency", "help", 2, ("loading", "stale"), summary="Returns helpful text.")
def cmd_latency_help(c: Any, args: list[bytes]) -> bytes:
    return help_reply(c, "dyn.latency", [
        "ON [<every>]",
        "    Follow one request in <every> (default 8) from its read to its reply, on",
        "    its coordinator and its replicas; time event-loop work and GC pauses.",
        "OFF",
        "    Stop, and forget what was recorded.",
        "RESET",
        "    Forget what was recorded so far.",
        "STAGES",
        "    Per stage: name, count, p50, p99, p99.9, max (microseconds).",
        "DUMP",
        "    Every record and histogram as JSON (monotonic nanoseconds).",
        "HELP",
        "    Print this help.",
    ])
