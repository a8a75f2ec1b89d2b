"""The command table; importing this package registers every command family."""

from . import (  # noqa: F401
    acl,
    cluster,
    counters,
    dynamo,
    keys,
    keyspace,
    replication,
    server,
    strings,
    transactions,
)
from .table import TABLE, Command, lookup

__all__ = ["TABLE", "Command", "lookup"]
