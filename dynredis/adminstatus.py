"""`dynredis admin status`: the cluster at a glance, one line per member.

The node asked first gives the membership as it sees it (members, zones, each one's
state from its failure detector, partitions owned by its ring); every member reachable
then gives its own counts (transfers and hints it is handing off, its last
anti-entropy exchange), each from its `INFO dynamo`. A member that does not answer
keeps the row the first node's view gives it, with `-` for what only it knows.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, TextIO

# A member's state, from the `members_<state>` fields of INFO dynamo, the first that
# lists it (membership changes add the ones of a node joining or leaving).
STATES = ("joining", "leaving", "down", "suspect", "up")
# INFO dynamo fields that count transfers in flight on a node (hinted handoffs now;
# ownership transfers add theirs), summed in the TRANSFERS column.
TRANSFER_FIELDS = ("handoffs_in_flight", "transfers_in_flight")

COLUMNS = ("MEMBER", "ZONE", "STATE", "PARTITIONS", "TRANSFERS", "HINTS", "LAST ANTI-ENTROPY")


class InfoProbe(Protocol):
    host: str

    def info(self, port: int) -> dict[str, str]: ...


def _pairs(field: str) -> dict[str, str]:
    """"a=1,b=2" -> {"a": "1", "b": "2"} (a member name holds no "=" or ",")."""
    out = {}
    for item in field.split(","):
        name, sep, value = item.rpartition("=")
        if sep:
            out[name] = value
    return out


def _names(field: str) -> list[str]:
    return [x for x in field.split(",") if x]


def split_address(member: str) -> tuple[str, int]:
    """A member's name is the address clients reach it on: host:port ([v6]:port)."""
    host, _, port = member.rpartition(":")
    return host.strip("[]"), int(port)


def ago(ms: int) -> str:
    if ms < 0:
        return "never"
    if ms < 1000:
        return f"{ms} ms ago"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s ago"
    return f"{ms // 60_000} min ago"


def rows(view: dict[str, str], own: dict[str, dict[str, str] | None]) -> list[tuple[str, ...]]:
    """The table's rows: `view` is the first node's INFO dynamo, `own` each member's
    (None for one that did not answer)."""
    state = {}
    for st in reversed(STATES):  # the first state listing a member wins
        for name in _names(view.get(f"members_{st}", "")):
            state[name] = st
    zones = _pairs(view.get("zones", ""))
    owned = _pairs(view.get("partitions_owned", ""))
    out: list[tuple[str, ...]] = []
    for name in _names(view.get("members", "")):
        info = own.get(name)
        if info is None:
            transfers = hints = last = "-"
        else:
            transfers = str(sum(int(info.get(f, "0") or 0) for f in TRANSFER_FIELDS))
            hints = info.get("hints_stored", "-")
            ms = int(info.get("ae_last_exchange_ms_ago", "-1") or -1)
            peer = info.get("ae_last_exchange_peer", "")
            last = ago(ms) + (f" with {peer}" if ms >= 0 and peer else "")
        out.append((name, zones.get(name) or "-", state.get(name, "?"),
                    owned.get(name, "0"), transfers, hints, last))
    return out


def render(view: dict[str, str], table: list[tuple[str, ...]], unreachable: list[str]) -> str:
    head = (f"ring epoch {view.get('ring_epoch', '?')} (claimant "
            f"{view.get('ring_claimant', '?')}), {view.get('ring_size', '?')} partitions, "
            f"N={view.get('n', '?')} R={view.get('r', '?')} W={view.get('w', '?')}; "
            f"states as {view.get('node_name', '?')} sees them")
    widths = [max(len(r[i]) for r in [COLUMNS, *table]) for i in range(len(COLUMNS))]
    lines = [head, ""]
    for r in [COLUMNS, *table]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if view.get("replica_zones_min") and zones_short(view):
        lines.append("")
        lines.append(f"warning: some keys have their {view.get('n')} replicas in only "
                     f"{view['replica_zones_min']} zone(s)")
    for name in unreachable:
        lines.append(f"{name}: did not answer (its own counts are shown as -)")
    return "\n".join(lines) + "\n"


def zones_short(view: dict[str, str]) -> bool:
    """Zones are in use and some partition's replicas span fewer zones than they could."""
    zoned = _pairs(view.get("zones", ""))
    if not zoned:
        return False
    members = _names(view.get("members", ""))
    distinct = len({zoned.get(m) or "\0" + m for m in members})
    want = min(int(view.get("n", "0") or 0), distinct)
    return int(view["replica_zones_min"]) < want


def show(probe: InfoProbe, port: int, out: TextIO) -> None:
    """Print the table for the cluster of the node at probe.host:port (raises what
    asking that node raises)."""
    view = probe.info(port)
    own: dict[str, dict[str, str] | None] = {view.get("node_name", ""): view}
    unreachable = []
    for name in _names(view.get("members", "")):
        if name in own:
            continue
        host, member_port = split_address(name)
        try:
            own[name] = dataclasses.replace(probe, host=host).info(member_port)  # type: ignore[type-var]
        except Exception:  # noqa: BLE001 - whatever failed, that member's counts are unknown
            own[name] = None
            unreachable.append(name)
    out.write(render(view, rows(view, own), unreachable))
