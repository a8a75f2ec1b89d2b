"""Types of the C helper dynredis/csrc/geoscan.c (see commands/geosearch.py's find)."""

from collections.abc import Iterable
from typing import Any

def scan(pairs: Iterable[tuple[float, bytes]], box: bool, lon: float, lat: float,
         radius_m: float, half_w: float, half_h: float, limit: int, out: list[Any],
         cls: type) -> None: ...

def scan_flat(pairs: Iterable[tuple[float, bytes]], box: bool, lon: float, lat: float,
              radius_m: float, half_w: float, half_h: float,
              members: list[bytes]) -> bytes: ...

def scan_lists(segments: list[tuple[list[Any], int, int]], box: bool, lon: float,
               lat: float, radius_m: float, half_w: float, half_h: float,
               members: list[bytes]) -> bytes: ...
