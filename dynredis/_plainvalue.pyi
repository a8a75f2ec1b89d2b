"""Types of the C helper dynredis/csrc/plainvalue.c (see core/obj.py's plain_value)."""

from typing import Any

def plain_value(b: bytes, now_ms: int, not_plain: Any) -> Any: ...
