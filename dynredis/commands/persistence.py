"""SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE: Redis' persistence commands mapped to the
storage engine's sync.

dynredis keeps no snapshot: every write is committed to the engine as it comes and
synced to disk by the durability mode (fsync: before the acknowledgement; buffered:
within about a second; none: when the OS writes it back). SAVE makes the node sync what
it holds now and answers once that sync ended; BGSAVE starts it and answers at once;
LASTSAVE is when this node's last sync ended. The sync runs in the engine's thread, as
the buffered mode's do, so a SAVE never stalls the node (Redis' SAVE blocks its server:
here the other clients and the peers go on being served). As in Redis Cluster, each
node saves its own share: send SAVE to every node (`redis-cli --cluster call`) to sync
the whole cluster. A node with the memory engine keeps nothing on disk and refuses both
rather than answer a save that did not happen.
"""

from __future__ import annotations

from ..resp import encode as resp
from .context import Context, Retry
from .table import ERR_SYNTAX, command

ERR_MEMORY = resp.error(
    "ERR this node keeps its data in memory only (--engine memory): there is no disk to "
    "save to")
ERR_BUSY = resp.error("ERR Background save already in progress")
ERR_FAILED = resp.error("ERR the sync to disk failed (see the node's log)")
STARTED = resp.simple("Background saving started")
SCHEDULED = resp.simple("Background saving scheduled")
AOF_STARTED = resp.simple("Background append only file rewriting started")
AOF_SCHEDULED = resp.simple("Background append only file rewriting scheduled")
RETRY_MS = 5  # how often a SAVE looks whether its sync ended


class _Save:
    """One SAVE: once no sync runs (one running may have begun before this command's
    writes were committed), start one, and answer when a sync that began after the
    command ended (OK), or failed (an error)."""

    __slots__ = ("c", "slot", "mark", "retry")

    def __init__(self, c: Context) -> None:
        self.c = c
        self.slot = c.defer_blocking()  # (as long as the disk takes)
        self.mark: tuple[int, int] | None = None  # syncs ended and failed when it began
        self.retry: Retry = c.retry_until(0, RETRY_MS, self.step, self.step)

    def step(self) -> None:
        ended, failed, running = self.c.sync_state()
        if self.mark is None:
            if running:
                self.retry.again()
                return
            self.mark = (ended, failed)
            self.c.save(False)
            ended, failed, running = self.c.sync_state()
        if failed > self.mark[1]:
            self.answer(ERR_FAILED)
        elif ended > self.mark[0]:
            self.answer(resp.OK)
        else:
            self.retry.again()

    def answer(self, reply: bytes) -> None:
        self.retry.stop()
        self.slot.set(reply)


@command("save", 1, ("admin", "noscript", "no_multi"), group="server",
         summary="Syncs this node's storage to disk; answers once it is there.")
def cmd_save(c: Context, args: list[bytes]) -> bytes | None:
    if c.figures().engine == "memory":
        return ERR_MEMORY
    _Save(c).step()
    return None


@command("bgsave", -1, ("admin", "noscript"), group="server",
         summary="Asynchronously syncs this node's storage to disk.")
def cmd_bgsave(c: Context, args: list[bytes]) -> bytes:
    schedule = False
    if len(args) > 1:
        if len(args) > 2 or args[1].upper() != b"SCHEDULE":
            return ERR_SYNTAX
        schedule = True
    answer = c.save(schedule)
    if answer == "memory":
        return ERR_MEMORY
    if answer == "busy":
        return ERR_BUSY
    return SCHEDULED if answer == "scheduled" else STARTED


@command("bgrewriteaof", 1, ("admin", "noscript"), group="server",
         summary="Asynchronously syncs this node's storage to disk (there is no "
                 "append-only file to rewrite: the engine's log is its own).")
def cmd_bgrewriteaof(c: Context, args: list[bytes]) -> bytes:
    """Operators run it to make the AOF compact and current; the engine keeps itself
    compact (LMDB reuses freed pages), so what is left to do is BGSAVE's sync."""
    answer = c.save(True)
    if answer == "memory":
        return ERR_MEMORY
    return AOF_SCHEDULED if answer == "scheduled" else AOF_STARTED


@command("lastsave", 1, ("loading", "stale", "fast"), group="server",
         summary="Returns the Unix timestamp of this node's last completed sync to disk.")
def cmd_lastsave(c: Context, args: list[bytes]) -> bytes:
    return resp.integer(int(c.figures().last_save))
