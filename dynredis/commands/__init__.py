"""The command table; importing this package registers every command family."""

from . import dynamo, keys, server, strings  # noqa: F401
from .table import TABLE, Command, lookup

__all__ = ["TABLE", "Command", "lookup"]
