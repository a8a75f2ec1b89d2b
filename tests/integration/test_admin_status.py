"""`dynredis admin status` (and `make status`) shows every member at a glance: zone,
state, partitions owned, transfers in flight, hints waiting, last anti-entropy exchange;
a member that is down keeps its row, and the hints kept for it drain when it is back."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .conftest import Cluster, ClusterFactory, dynredis_cmd, wait_until

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["MEMBER", "ZONE", "STATE", "PARTITIONS", "TRANSFERS", "HINTS", "LAST ANTI-ENTROPY"]


def admin_status(c: Cluster, i: int) -> tuple[str, dict[str, dict[str, str]]]:
    """The output of `dynredis admin status` against node i, and its rows by member."""
    proc = subprocess.run(dynredis_cmd("admin", "status", "--port", str(c.ports[i]),
                                       "--data-dir", str(c.data_dir)),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout, table(proc.stdout)


def table(text: str) -> dict[str, dict[str, str]]:
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("MEMBER"))
    assert re.split(r"\s{2,}", lines[head]) == COLUMNS, lines[head]
    rows = {}
    for line in lines[head + 1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line)
        if len(cells) != len(COLUMNS):
            break
        rows[cells[0]] = dict(zip(COLUMNS, cells, strict=True))
    return rows


def test_admin_status_shows_each_member_and_the_hints_kept_for_one_that_is_down(
        cluster_factory: ClusterFactory) -> None:
    c = cluster_factory()
    names = [f"127.0.0.1:{p}" for p in c.ports]

    def exchanged() -> dict[str, dict[str, str]] | None:
        rows = admin_status(c, 0)[1]
        return rows if all(r["LAST ANTI-ENTROPY"] != "never" for r in rows.values()) else None

    rows = wait_until(exchanged, 30)
    assert sorted(rows) == names
    assert {r["STATE"] for r in rows.values()} == {"up"}
    assert {r["ZONE"] for r in rows.values()} == {"-"}  # none set (tests/netns: zones)
    ring_size = int(c.info(0)["ring_size"])
    assert sum(int(r["PARTITIONS"]) for r in rows.values()) == ring_size
    assert all(re.fullmatch(r".* ago with 127\.0\.0\.1:\d+", r["LAST ANTI-ENTROPY"])
               for r in rows.values()), rows

    c.kill_node(2)
    client = c.client(0)
    keys = [f"k{i}" for i in range(50)]
    for key in keys:
        client.set(key, key)

    def down_and_hinted() -> tuple[str, dict[str, dict[str, str]]] | None:
        text, rows = admin_status(c, 1)
        held = sum(int(r["HINTS"]) for r in rows.values() if r["HINTS"] != "-")
        return (text, rows) if rows[names[2]]["STATE"] == "down" and held == len(keys) \
            else None

    text, rows = wait_until(down_and_hinted, 30)
    gone = rows[names[2]]
    assert int(gone["PARTITIONS"]) > 0  # its ring share, known without it
    assert (gone["TRANSFERS"], gone["HINTS"], gone["LAST ANTI-ENTROPY"]) == ("-", "-", "-")
    assert f"{names[2]}: did not answer" in text

    c.restart_node(2)

    def drained() -> dict[str, dict[str, str]] | None:
        rows = admin_status(c, 2)[1]
        done = all(r["STATE"] == "up" and r["HINTS"] == "0" and r["TRANSFERS"] == "0"
                   for r in rows.values())
        return rows if done else None

    assert wait_until(drained, 60)
    # make status is the same table.
    shown = subprocess.run(["make", "-s", "status", f"PORT={c.ports[0]}",
                            f"DATA={c.data_dir}"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert sorted(table(shown.stdout)) == names

