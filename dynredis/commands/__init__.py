"""The command table; importing this package registers every command family."""

from . import cluster, counters, dynamo, keys, server, strings, transactions  # noqa: F401
from .table import TABLE, Command, lookup

__all__ = ["TABLE", "Command", "lookup"]
