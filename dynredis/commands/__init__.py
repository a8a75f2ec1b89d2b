"""The command table; importing this package registers every command family."""

from . import (  # noqa: F401
    cluster,
    counters,
    dynamo,
    geocmds,
    hashes,
    keys,
    keyspace,
    lists,
    replication,
    server,
    sets,
    strings,
    transactions,
    zsetplans,
    zsetrange,
    zsets,
)
from .table import TABLE, Command, lookup

__all__ = ["TABLE", "Command", "lookup"]
