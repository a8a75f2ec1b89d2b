"""The command table; importing this package registers every command family."""

from . import (  # noqa: F401
    acl,
    bitmaps,
    cluster,
    counters,
    dynamo,
    hyperloglog,
    keys,
    keyspace,
    replication,
    scripting,
    server,
    stringextras,
    strings,
    transactions,
)
from .table import TABLE, Command, lookup

__all__ = ["TABLE", "Command", "lookup"]
