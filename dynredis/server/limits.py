"""Client limits, under Redis' names and with Redis' defaults, that hold before AUTH.

- `maxclients` (10000): connections beyond it are answered `-ERR max number of clients
  reached` and closed. Lowered at start, with a log line, when the process' open-file
  limit cannot be raised to maxclients + 32, as Redis does.
- `client-query-buffer-limit` (1gb): a client that makes the node hold more of its input
  (unparsed bytes and the arguments of the command being read) is closed, logged.
- `client-output-buffer-limit` (`normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432
  8388608 60`): hard and soft limits on a connection's unsent output, per class. Normal
  clients are clients; `slave` (alias `replica`) is a node's links to its peers, which carry
  what Redis sends its replicas; `pubsub` is a client subscribed to anything (as Redis
  classes it). Whatever the limits, a client's unsent replies never grow without bound:
  the node stops reading a client whose replies pile up unsent (see server/client.py).
- `maxmemory-clients` (2gb here; Redis' default is 0, no limit): the memory all clients
  make the node hold (input held and output unsent); past it the clients holding the
  most are closed (Redis' client eviction), logged.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform
import resource
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dynredis.limits")

MIN_RESERVED_FDS = 32  # Redis' CONFIG_MIN_RESERVED_FDS: for peers, storage and logs
DEFAULT_MAXCLIENTS = 10000
MAXCLIENTS_MAX = 4294967295
DEFAULT_QUERY_BUFFER = 1 << 30
QUERY_BUFFER_MIN = 1 << 20
DEFAULT_PROTO_MAX_BULK = 512 << 20
DEFAULT_MAXMEMORY_CLIENTS = 2 << 30

CLASSES = ("normal", "slave", "pubsub")  # in Redis' order (CONFIG GET shows them so)
_CLASS_ALIASES = {"normal": "normal", "slave": "slave", "replica": "slave", "pubsub": "pubsub"}

ERR_MAXCLIENTS = b"-ERR max number of clients reached\r\n"


class OutputLimit:
    """One class' output buffer limit: closed at `hard` bytes unsent, or after more than
    `soft_seconds` continuously at `soft` bytes or more (0: no such limit)."""

    __slots__ = ("hard", "soft", "soft_seconds")

    def __init__(self, hard: int, soft: int, soft_seconds: int) -> None:
        self.hard = hard
        self.soft = soft
        self.soft_seconds = soft_seconds

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputLimit) and (self.hard, self.soft, self.soft_seconds) \
            == (other.hard, other.soft, other.soft_seconds)

    def __repr__(self) -> str:
        return f"OutputLimit({self.hard}, {self.soft}, {self.soft_seconds})"

    @property
    def none(self) -> bool:
        return not self.hard and not self.soft

    def under(self, used: int) -> bool:
        """Below both the hard and the soft limit: `over` has nothing to time."""
        return (not self.soft or used < self.soft) and (not self.hard or used < self.hard)

    def over(self, used: int, since: float, now: float) -> tuple[bool, float]:
        """Redis' checkClientOutputBufferLimits: (limit reached, new soft-limit start;
        0.0 while under the soft limit)."""
        if self.hard and used >= self.hard:
            return True, since
        if self.soft and used >= self.soft:
            if not since:
                return False, now
            return now - since > self.soft_seconds, since
        return False, 0.0


def default_output_limits() -> dict[str, OutputLimit]:
    return {"normal": OutputLimit(0, 0, 0),
            "slave": OutputLimit(256 << 20, 64 << 20, 60),
            "pubsub": OutputLimit(32 << 20, 8 << 20, 60)}


def format_output_limits(limits: dict[str, OutputLimit]) -> str:
    return " ".join(f"{name} {limits[name].hard} {limits[name].soft} {limits[name].soft_seconds}"
                    for name in CLASSES)


class Limits:
    """The limits a node enforces on its connections (CONFIG GET/SET reach them)."""

    def __init__(self) -> None:
        self.maxclients = DEFAULT_MAXCLIENTS
        self.query_buffer = DEFAULT_QUERY_BUFFER
        self.proto_max_bulk_len = DEFAULT_PROTO_MAX_BULK
        self.maxmemory_clients = DEFAULT_MAXMEMORY_CLIENTS
        self.output = default_output_limits()


# --- open files ------------------------------------------------------------------------


def raise_open_files(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards `wanted` (at most to the hard limit); the
    limit in effect afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted
    best = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if best > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (best, hard))
            soft = best
        except (ValueError, OSError):
            pass
    return soft


def fit_maxclients(wanted: int) -> int:
    """maxclients as the open-file limit allows at start (Redis' adjustOpenFilesLimit),
    saying so in the log when it must be lowered."""
    need = wanted + MIN_RESERVED_FDS
    have = raise_open_files(need)
    if have >= need:
        return wanted
    fitted = max(1, have - MIN_RESERVED_FDS)
    log.warning("You requested maxclients of %d requiring at least %d max file descriptors. "
                "Current maximum open files is %d. maxclients has been reduced to %d to "
                "compensate for low ulimit. If you need higher maxclients increase "
                "'ulimit -n'.", wanted, need, have, fitted)
    return fitted


def maxclients_refusal(wanted: int) -> str | None:
    """Why CONFIG SET maxclients `wanted` cannot be honoured (None: it can, and the file
    limit now allows it), in Redis' words."""
    have = raise_open_files(wanted + MIN_RESERVED_FDS)
    if have >= wanted + MIN_RESERVED_FDS:
        return None
    return ("The operating system is not able to handle the specified number of clients, "
            f"try with {max(1, have - MIN_RESERVED_FDS)}")


# --- CONFIG values -----------------------------------------------------------------------


def parse_output_limits(raw: str, current: dict[str, OutputLimit],
                        to_bytes: Callable[[str], int | None],
                        ) -> tuple[dict[str, OutputLimit] | None, str | None]:
    """A client-output-buffer-limit value (`<class> <hard> <soft> <seconds>` ...) applied
    over `current`: (new limits, None) or (None, Redis' reason, for the first word in
    error, as Redis checks them in order)."""
    words = raw.split()
    if not words or len(words) % 4:
        return None, "Wrong number of arguments in buffer limit configuration."
    for i, word in enumerate(words):
        if i % 4 == 0:
            if word.lower() not in _CLASS_ALIASES:
                return None, "Invalid client class specified in buffer limit configuration."
        elif to_bytes(word) is None or (i % 4 == 3 and not (word.isascii() and word.isdigit())):
            return None, ("Error in hard, soft or soft_seconds setting in buffer limit "
                          "configuration.")
    new = dict(current)
    for i in range(0, len(words), 4):
        hard, soft = to_bytes(words[i + 1]), to_bytes(words[i + 2])
        assert hard is not None and soft is not None
        new[_CLASS_ALIASES[words[i].lower()]] = OutputLimit(hard, soft, int(words[i + 3]))
    return new, None


# --- memory given back -----------------------------------------------------------------

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
BIG_ALLOCATION = 1 << 20
_trim: Any = None  # glibc's malloc_trim, once give_back_freed_memory set the thresholds


def give_back_freed_memory() -> bool:
    """Make glibc's malloc return what a client held once it is freed.

    By default glibc raises its mmap threshold each time a big block is freed, after which
    blocks of that size (replies, values) come from the heap, whose free space goes back
    to the system only from its top: after a client that held hundreds of MB of replies
    left, the node kept them. Fixed thresholds keep blocks of BIG_ALLOCATION bytes or
    more in their own mappings (unmapped when freed) and trim the heap's top. Smaller
    blocks (a peer link's 256 KB reads and the parts of a large value cut from them, a
    reply's slices) come from the heap and are used again warm: at a 128 KB threshold
    each was a mapping of its own, faulted in a page at a time and unmapped when freed
    (two per 256 KB a replica received: 110 ms of CPU per 100 MB, against 5 ms so).
    What is freed inside the heap, under blocks still in use, goes back only through
    `trim_freed_memory`. False where the C library is not glibc."""
    global _trim
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fixed = bool(libc.mallopt(M_MMAP_THRESHOLD, BIG_ALLOCATION)
                     and libc.mallopt(M_TRIM_THRESHOLD, 2 * BIG_ALLOCATION))
        if fixed:
            _trim = libc.malloc_trim
        return fixed
    except (OSError, AttributeError):
        return False


def trim_freed_memory() -> None:
    """Give the heap's free pages back wherever they lie (glibc's malloc_trim(0)), not
    only from its top: the replies a client left unread (blocks under BIG_ALLOCATION)
    may lie under blocks still in use (a value written meanwhile), and the heap's top
    then never shrinks. Called once after such a client went, not on a timer: a trim
    each second cost SPOP of 50,000 members a third more CPU (every page it gave back
    faulted in again)."""
    if _trim is not None:
        _trim(0)
