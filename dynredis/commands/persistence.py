"""SAVE, BGSAVE, LASTSAVE: Redis' snapshot commands mapped to the storage engine's sync.

dynredis keeps no snapshot: every write is committed to the engine as it comes and
synced to disk by the durability mode (fsync: before the acknowledgement; buffered:
within about a second; none: when the OS writes it back). SAVE forces that sync now on
the node it is sent to, waiting for it as Redis' SAVE blocks; BGSAVE starts it in the
background; LASTSAVE is when this node's last sync ended. As in Redis Cluster, each
node saves its own share: send SAVE to every node (`redis-cli --cluster call`) to sync
the whole cluster. A node with the memory engine keeps nothing on disk and refuses both
rather than answer a save that did not happen.
"""

from __future__ import annotations

from ..resp import encode as resp
from .context import Context
from .table import ERR_SYNTAX, command

ERR_MEMORY = resp.error(
    "ERR this node keeps its data in memory only (--engine memory): there is no disk to "
    "save to")
ERR_BUSY = resp.error("ERR Background save already in progress")
STARTED = resp.simple("Background saving started")
SCHEDULED = resp.simple("Background saving scheduled")


@command("save", 1, ("admin", "noscript"), group="server",
         summary="Synchronously syncs this node's storage to disk.")
def cmd_save(c: Context, args: list[bytes]) -> bytes:
    return ERR_MEMORY if c.save(False, False) == "memory" else resp.OK


@command("bgsave", -1, ("admin", "noscript"), group="server",
         summary="Asynchronously syncs this node's storage to disk.")
def cmd_bgsave(c: Context, args: list[bytes]) -> bytes:
    schedule = False
    if len(args) > 1:
        if len(args) > 2 or args[1].upper() != b"SCHEDULE":
            return ERR_SYNTAX
        schedule = True
    answer = c.save(True, schedule)
    if answer == "memory":
        return ERR_MEMORY
    if answer == "busy":
        return ERR_BUSY
    return SCHEDULED if answer == "scheduled" else STARTED


@command("lastsave", 1, ("loading", "stale", "fast"), group="server",
         summary="Returns the Unix timestamp of this node's last completed sync to disk.")
def cmd_lastsave(c: Context, args: list[bytes]) -> bytes:
    f = c.figures()
    return resp.integer(int(f.last_save or f.started))
