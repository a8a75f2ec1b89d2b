"""The benchmark report's arithmetic: ratios against redis-server, the client's CPU per
request, and the CPU-bound request rate the table uses to show a machine limit."""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"
_spec = importlib.util.spec_from_file_location("dynredis_bench_run", BENCH)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # dataclasses resolve annotations through sys.modules
_spec.loader.exec_module(bench)


def result(system: str, rps: float, server_s: float, client_s: float) -> object:
    return bench.Result(system=system, pipeline=1, test="GET", requests=100_000, rps=rps,
                        p50_ms=0.5, p99_ms=1.0, p999_ms=2.0, cpu_seconds=server_s,
                        client_cpu_seconds=client_s)


def test_rows_show_ratios_client_cpu_and_cpu_bound_rate() -> None:
    redis = result(bench.REDIS_NAME, 50_000, server_s=1.2, client_s=2.0)
    dyn = result(bench.DYN3_NAME, 25_000, server_s=3.0, client_s=1.6)
    rows = bench.table_rows([redis, dyn], cores=2)
    assert len(rows[0]) == len(bench.COLUMNS)
    cell = dict(zip(bench.COLUMNS, rows[1], strict=True))
    assert cell["rps vs redis"] == "0.50x"
    assert cell["CPU µs/req"] == "30.0"
    assert cell["CPU/req vs redis"] == "2.50x"
    assert cell["client µs/req"] == "16.0"
    # 2 CPUs / (30 µs server + 16 µs client) per request
    assert cell["CPU-bound rps"] == "43,478"
    assert dict(zip(bench.COLUMNS, rows[0], strict=True))["CPU-bound rps"] == "62,500"


def test_children_cpu_seconds_counts_a_finished_child() -> None:
    before = bench.rbench.children_cpu_seconds()
    out = subprocess.run(
        [sys.executable, "-c",
         "import time\nt = time.process_time()\n"
         "while time.process_time() - t < 0.2: pass\nprint(time.process_time())"],
        capture_output=True, text=True, check=True).stdout
    used_by_child = float(out)
    assert bench.rbench.children_cpu_seconds() - before >= used_by_child * 0.9


def test_collection_rows_put_redis_and_dynredis_side_by_side() -> None:
    collrows = bench.collrows
    ops = [collrows.OpResult(bench.REDIS_NAME, "SADD", 100, 200_000, 150_000.0, 0.4),
           collrows.OpResult(bench.DYN3_NAME, "SADD", 100, 20_000, 8_000.0, 1.8),
           collrows.OpResult(bench.DYN3_NAME, "SADD", 10_000, 20_000, 7_000.0, 2.0)]
    rows = collrows.op_rows(ops, bench.REDIS_NAME, bench.DYN3_NAME)
    cells = [dict(zip(collrows.OP_COLUMNS, r, strict=True)) for r in rows]
    assert cells[0]["redis µs/req"] == "2.0" and cells[0]["dynredis µs/req"] == "90.0"
    assert cells[0]["CPU vs redis"] == "45.0x"
    assert cells[1]["elements"] == "10,000" and cells[1]["redis req/s"] == "-"
    mems = [collrows.MemResult(bench.REDIS_NAME, "set", 990_000, 1_000_000, 64e6, 60e6),
            collrows.MemResult(bench.DYN3_NAME, "set", 990_000, 1_000_000, 396e6, 250e6)]
    (row,) = collrows.mem_rows(mems, bench.REDIS_NAME, bench.DYN3_NAME)
    assert row[2:] == ["65", "400", "253", "6.2x"]


def test_collection_sizes_parse_and_the_million_can_be_skipped() -> None:
    args = bench.parse_args(["--coll-sizes", "100,10000"])
    assert args.coll_sizes == [100, 10_000]
    assert bench.parse_args([]).coll_sizes == [100, 10_000, 1_000_000]
    assert bench.parse_args(["--suites", "collections"]).suites == ["collections"]


DATA = Path(__file__).resolve().parent / "data"


def test_a_real_redis_benchmark_run_reads_with_its_99_9th_percentile() -> None:
    # Captured from redis-benchmark 7.0 (-t set -n 20000 -c 50), progress redraws and all.
    text = (DATA / "redis-benchmark-7.0-set.txt").read_text()
    s = bench.rbench.parse_output(text)
    assert s.requests == 20_000
    assert s.rps == 33167.50
    assert (s.p50_ms, s.p99_ms, s.max_ms) == (0.679, 5.471, 7.383)
    # 19,980 requests (99.9%) are needed: "99.805% <= 6.463 ms" has 19,963, the first
    # line with enough is "99.902% <= 7.071 ms (cumulative count 19981)".
    assert s.p999_ms == 7.071
    assert bench.rbench.percentile_ms(text, 0.5) == 0.679


def test_the_99_9th_percentile_takes_the_tighter_of_both_distributions() -> None:
    text = "\n".join([
        "Latency by percentile distribution:",
        "99.805% <= 6.000 milliseconds (cumulative count 998)",
        "99.902% <= 9.000 milliseconds (cumulative count 1000)",
        "100.000% <= 9.000 milliseconds (cumulative count 1000)",
        "Cumulative distribution of latencies:",
        "99.800% <= 6.103 milliseconds (cumulative count 998)",
        "99.900% <= 7.103 milliseconds (cumulative count 999)",
        "100.000% <= 9.103 milliseconds (cumulative count 1000)",
    ])
    assert bench.rbench.percentile_ms(text, 0.999) == 7.103


def test_an_output_without_a_summary_is_an_error_not_a_row() -> None:
    text = (DATA / "redis-benchmark-7.0-set.txt").read_text()
    cut = text[:text.index("Summary:")]
    with pytest.raises(bench.BenchError):
        bench.rbench.parse_output(cut)
    assert bench.rbench.first_error(
        "", "Error from server: NOQUORUM only 1 replica answered\n", 1,
    ) == "Error from server: NOQUORUM only 1 replica answered"


def test_failure_rows_compare_with_the_healthy_row_and_show_failed_requests() -> None:
    fr = bench.failrows
    healthy = fr.FailResult("healthy", 16, "SET", 50_000, 20_000.0, 100.0, 2.0, "", 0, 600)
    slow = fr.FailResult("paused", 16, "SET", 50_000, 9_000.0, 150.0, 1.5, "", 0, 600)
    late = fr.FailResult("killed", 16, "SET", 50_000, 15_000.0, 240.0, 1.5, "", 0, 600)
    fine = fr.FailResult("killed", 16, "SET", 50_000, 10_000.0, 200.0, 1.5, "", 0, 600)
    failed = fr.FailResult("paused", 16, "SET", 50_000, 0.0, 0.0, 1.0,
                           "Error from server: NOQUORUM", 3, 600, "SET: NOQUORUM")
    assert fr.within_goal(slow, healthy) is False  # under half the throughput
    assert fr.within_goal(late, healthy) is False  # p99.9 more than twice
    assert fr.within_goal(fine, healthy) is True  # exactly half and exactly twice
    assert fr.within_goal(failed, healthy) is False
    assert fr.within_goal(fine, None) is None
    cells = [dict(zip(fr.COLUMNS, r, strict=True))
             for r in fr.rows([healthy, slow, fine, failed])]
    assert cells[0]["within 2x"] == "n/a" and cells[0]["CPU µs/req"] == "40.0"
    assert cells[1]["rps vs healthy"] == "0.45x" and cells[1]["within 2x"] == "NO"
    assert cells[2]["p99.9 vs healthy"] == "2.00x" and cells[2]["within 2x"] == "yes"
    assert cells[3]["requests/s"] == "-" and cells[3]["within 2x"] == "NO"
    assert cells[3]["failed requests"] == "Error from server: NOQUORUM"
    assert cells[3]["check after"] == "3/600 failed (SET: NOQUORUM)"


def test_value_size_rows_scale_requests_and_keyspace_and_compare_with_redis() -> None:
    sr = bench.scalerows
    assert sr.size_requests(50_000, 1024) == 50_000
    assert sr.size_requests(50_000, 102_400) == 2_000  # 50,000 x 4 KiB of values
    assert sr.size_requests(5_000, 102_400) == sr.MIN_REQUESTS
    assert sr.size_keyspace(100_000, 1024) == 100_000
    assert sr.size_keyspace(100_000, 102_400) == 1024  # 100 MiB of values per node
    assert [sr.size_label(s) for s in sr.VALUE_SIZES] == ["1 KB", "100 KB"]
    rows = [sr.Row(bench.REDIS_NAME, "1 KB", "SET", 10_000, 100_000.0, 5.0, 0.04),
            sr.Row(bench.DYN3_NAME, "1 KB", "SET", 10_000, 10_000.0, 50.0, 0.6)]
    cells = [dict(zip(sr.ROW_COLUMNS, r, strict=True)) for r in sr.rows_cells(rows,
                                                                                bench.REDIS_NAME)]
    assert cells[1]["CPU µs/req"] == "60.0" and cells[1]["CPU vs redis"] == "15.0x"


def test_million_rows_name_keys_as_redis_benchmark_and_count_bytes_per_key(
        tmp_path: Path) -> None:
    sr = bench.scalerows
    assert sr.million_key(123) == b"key:000000000123"  # redis-benchmark -r's 12 digits
    sparse = tmp_path / "node-1" / "data.mdb"
    sparse.parent.mkdir()
    with open(sparse, "wb") as f:
        f.truncate(1 << 30)  # a map this size, nothing written: LMDB's file with writemap
        f.write(b"x" * 8192)
    assert 8192 <= sr.allocated_bytes(sparse.parent) < 1 << 20
    mems = [sr.Memory(bench.REDIS_NAME, 1_000_000, 300e6, 180e6, None, 170e6),
            sr.Memory(bench.DYN3_NAME, 1_000_000, 1.5e9, 1.1e9, 270e6, None)]
    cells = [dict(zip(sr.MEM_COLUMNS, r, strict=True)) for r in sr.mem_cells(mems)]
    assert cells[0]["used_memory B/key"] == "170" and cells[0]["disk B/key (node)"] == "-"
    assert cells[1]["RSS B/key"] == "1500" and cells[1]["RSS growth B/key"] == "1100"
    assert cells[1]["disk B/key (node)"] == "270"


def test_the_clusters_take_the_cluster_port_offset_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """--cluster-port-offset reaches both dynredis clusters' start (a run inside a range
    of ports: their cluster ports went at port+10000 otherwise)."""
    started: list[tuple] = []

    def cluster(name: str, nodes: int, port: int, extra: list[str] = []) -> object:  # noqa: B006
        started.append((nodes, list(extra)))
        return contextlib.nullcontext()

    monkeypatch.setattr(bench, "dynredis_cluster", cluster)
    monkeypatch.setattr(bench, "redis_server", lambda port: contextlib.nullcontext())
    monkeypatch.setattr(bench, "announce", lambda system, builds: None)
    for offset, expected in ((["--cluster-port-offset", "0"], ["--cluster-port-offset", "0"]),
                             ([], [])):
        started.clear()
        for start in bench.system_starters(bench.parse_args(offset), {}):
            with start():
                pass
        assert started == [(1, ["--n", "1", "--r", "1", "--w", "1", *expected]),
                           (3, expected)]
