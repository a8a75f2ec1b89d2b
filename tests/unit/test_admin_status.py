"""`dynredis admin status` reads each member's row from INFO dynamo fields: the first
node's view (members, states, zones, partitions) and each member's own counts."""

from __future__ import annotations

from dynredis.adminstatus import ago, render, rows, split_address

VIEW = {
    "node_name": "10.0.0.1:7000", "members": "10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000",
    "members_up": "10.0.0.1:7000,10.0.0.3:7000", "members_suspect": "",
    "members_down": "10.0.0.2:7000", "zones": "10.0.0.1:7000=a,10.0.0.2:7000=b",
    "partitions_owned": "10.0.0.1:7000=85,10.0.0.2:7000=86,10.0.0.3:7000=85",
    "n": "3", "replica_zones_min": "2", "ring_epoch": "4", "ring_size": "256",
}


def own(hints: str, inflight: str, ms: str, peer: str) -> dict[str, str]:
    return {"hints_stored": hints, "handoffs_in_flight": inflight,
            "ae_last_exchange_ms_ago": ms, "ae_last_exchange_peer": peer}


def test_rows_take_the_view_for_everyone_and_each_members_own_counts() -> None:
    table = rows(VIEW, {"10.0.0.1:7000": own("12", "3", "250", "10.0.0.3:7000"),
                        "10.0.0.2:7000": None,
                        "10.0.0.3:7000": own("0", "0", "-1", "")})
    assert table == [
        ("10.0.0.1:7000", "a", "up", "85", "3", "12", "250 ms ago with 10.0.0.3:7000"),
        ("10.0.0.2:7000", "b", "down", "86", "-", "-", "-"),
        ("10.0.0.3:7000", "-", "up", "85", "0", "0", "never"),
    ]


def test_a_membership_state_listed_by_the_view_wins_over_up() -> None:
    view = dict(VIEW, members_leaving="10.0.0.3:7000", transfers_in_flight="")
    table = rows(view, {"10.0.0.3:7000": dict(own("0", "1", "10", "x"),
                                               transfers_in_flight="4")})
    assert table[2][2:5] == ("leaving", "85", "5")


def test_render_warns_when_zones_do_not_spread_every_key() -> None:
    text = render(VIEW, rows(VIEW, {}), ["10.0.0.2:7000"])
    assert "warning: some keys have their 3 replicas in only 2 zone(s)" in text
    assert "10.0.0.2:7000: did not answer" in text
    spread = dict(VIEW, zones="10.0.0.1:7000=a,10.0.0.2:7000=b,10.0.0.3:7000=c",
                  replica_zones_min="3")
    assert "warning" not in render(spread, rows(spread, {}), [])


def test_addresses_and_ages() -> None:
    assert split_address("[fd00::1]:7000") == ("fd00::1", 7000)
    assert split_address("10.0.0.1:7001") == ("10.0.0.1", 7001)
    assert [ago(x) for x in (-1, 5, 1500, 600_000)] == [
        "never", "5 ms ago", "1.5 s ago", "10 min ago"]
