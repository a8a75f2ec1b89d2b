"""The checker over a recorded history (client.py's lines) and the final state.

What it demands, for every key:
- no value nobody wrote: every value a GET returned, and every sibling of the final
  state, was written by some SET of that key (acknowledged or not);
- no acknowledged write lost: for every acknowledged SET w, the final state holds w's
  value or the value of a SET v of the same key that may supersede w: one that had not
  completed before w started (v could have been coordinated by a node that already
  held w); a SET that was not acknowledged may have been stored, so it counts as
  completing never. For a key one client writes (sequentially), that is: the final
  state holds its last acknowledged value or a later one.
Convergence (every node answering the same final state) is the caller's to wait for.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Op:
    client: str
    op: str
    key: str
    value: str | None
    t0: float
    t1: float
    status: str
    err: str = ""  # the error, for "fail" and "info"


def load(paths: Iterable[Path]) -> list[Op]:
    ops = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                ops.append(Op(d["client"], d["op"], d["key"], d["value"], d["t0"], d["t1"],
                              d["status"], d.get("err", "")))
    return ops


def check(ops: list[Op], final: dict[str, list[str]]) -> list[str]:
    """Every violation found (empty: the history passes)."""
    problems: list[str] = []
    writes: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.op == "set":
            writes[op.key].append(op)
    written = {k: {w.value for w in ws} for k, ws in writes.items()}
    for op in ops:
        if op.op == "get" and op.status == "ok" and op.value is not None \
                and op.value not in written.get(op.key, ()):
            problems.append(f"GET {op.key} by {op.client} returned {op.value!r}, "
                            "which nobody wrote")
    for key, values in final.items():
        for v in values:
            if v not in written.get(key, ()):
                problems.append(f"final state of {key} holds {v!r}, which nobody wrote")
    for key, ws in writes.items():
        held = set(final.get(key, ()))
        for w in ws:
            if w.status != "ok" or w.value in held:
                continue
            if not any(v.value in held and (v.t1 if v.status == "ok" else math.inf) > w.t0
                       for v in ws if v is not w):
                problems.append(f"acknowledged SET {key} {w.value!r} (at {w.t0:.3f}) is lost: "
                                f"the final state holds {sorted(held)}")
    return problems
