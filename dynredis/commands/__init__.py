"""The command table; importing this package registers every command family."""

from . import (  # noqa: F401
    acl,
    bitmaps,
    blocking,
    cluster,
    counters,
    diagnostics,
    dynamo,
    geocmds,
    hashes,
    hyperloglog,
    info,
    keymoves,
    keys,
    keyspace,
    latencytrace,
    lists,
    monitor,
    pubsub,
    replication,
    scripting,
    server,
    sets,
    sortcmd,
    stringextras,
    strings,
    transactions,
    watch,
    zsetplans,
    zsetrange,
    zsets,
)
from .table import TABLE, Command, lookup

__all__ = ["TABLE", "Command", "lookup"]
