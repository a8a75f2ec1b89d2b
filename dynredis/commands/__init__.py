"""The command table; importing this package registers every command family."""

from . import (  # noqa: F401
    acl,
    bitmaps,
    cluster,
    counters,
    diagnostics,
    dynamo,
    geocmds,
    hashes,
    hyperloglog,
    info,
    keys,
    keyspace,
    lists,
    monitor,
    replication,
    scripting,
    server,
    sets,
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
