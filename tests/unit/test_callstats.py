"""The node's command figures: histogram buckets, percentiles, error codes, slow log."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from dynredis.commands.callstats import (
    CallStat,
    CallStats,
    bucket_of,
    bucket_top,
    commandstats,
    errorstats,
    latencystats,
    slowlog_args,
)


@given(st.integers(min_value=0, max_value=2**62))
def test_a_duration_lies_within_its_bucket_of_a_quarter_power_of_two(ns: int) -> None:
    i = bucket_of(ns)
    assert ns <= bucket_top(i)
    assert bucket_top(i) - ns <= max(3, ns // 4)
    assert bucket_of(ns + 1) >= i  # buckets never go back as durations grow


def test_percentiles_come_from_the_histogram() -> None:
    s = CallStat()
    for _ in range(99):
        s.timed(1000)  # 1 µs
    s.timed(1_000_000)  # 1 ms
    assert 1.0 <= s.percentile(50) < 1.25
    assert s.percentile(99) < 1.25
    assert 1000 <= s.percentile(99.9) < 1250


def conn() -> SimpleNamespace:
    return SimpleNamespace(name=b"app", peer="127.0.0.1:5")


def test_info_lines_have_redis_field_names() -> None:
    stats = CallStats()
    stats.ran(stats.stat("set"), 5000, [b"set", b"k", b"v"], conn())
    stats.stat("set").failed += 1
    stats.stat("get").rejected += 1
    stats.error(b"-ERR wrong number of arguments\r\n")
    stats.error(b"-WRONGTYPE Operation against a key\r\n")
    stats.error(b"-NOQUORUM\r\n")
    assert commandstats(stats) == {
        "cmdstat_set": "calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=1",
        "cmdstat_get": "calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0"}
    assert errorstats(stats) == {"errorstat_ERR": "count=1", "errorstat_WRONGTYPE": "count=1",
                                 "errorstat_NOQUORUM": "count=1"}
    assert list(latencystats(stats)) == ["latency_percentiles_usec_set"]
    assert latencystats(stats)["latency_percentiles_usec_set"].startswith("p50=5.")
    stats.reset()
    assert not commandstats(stats) and not errorstats(stats)


def test_the_slow_log_keeps_the_newest_entries_truncated_as_redis() -> None:
    stats = CallStats()
    stats.slower_than_us = 10
    stats.slowlog_max = 2
    for i in range(3):
        stats.ran(stats.stat("get"), 20_000, [b"get", b"k%d" % i], conn())
    stats.ran(stats.stat("get"), 5_000, [b"get", b"fast"], conn())  # under the limit
    assert [e.args for e in stats.slowlog] == [[b"get", b"k2"], [b"get", b"k1"]]
    assert [e.id for e in stats.slowlog] == [2, 1]
    assert stats.slowlog[0].us == 20 and stats.slowlog[0].name == "app"
    args = slowlog_args([b"x" * 200] + [b"a"] * 40)
    assert args[0] == b"x" * 128 + b"... (72 more bytes)"
    assert len(args) == 32 and args[-1] == b"... (10 more arguments)"


def test_the_latency_monitor_records_commands_over_its_threshold() -> None:
    stats = CallStats()
    stats.ran(stats.stat("get"), 50_000_000, [b"get"], conn())
    assert not stats.latency  # threshold 0: off
    stats.latency_threshold_ms = 10
    stats.ran(stats.stat("get"), 50_000_000, [b"get"], conn())
    stats.ran(stats.stat("get"), 5_000_000, [b"get"], conn())
    assert [ms for _, ms in stats.latency["command"]] == [50]
    assert stats.latency_max["command"] == 50
