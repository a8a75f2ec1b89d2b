"""MEMORY USAGE of a collection reads at most collmemory.SAMPLES_MOST of its records,
whatever SAMPLES asks (SAMPLES 0 read every record of a million elements in one loop
turn, 1.1-1.5 s of a node's CPU), and still answers about the size of all of them."""

from __future__ import annotations

from dynredis.commands import collmemory
from tests.collharness import LocalRunner


def test_samples_0_reads_a_bounded_sample_and_estimates_the_whole(monkeypatch) -> None:
    r = LocalRunner()
    r.run(b"SADD", b"s", *[b"m%03d" % i for i in range(400)])
    _, op = collmemory.build_memusage([b"dyn.memusage", b"s", b"0"], 2)
    t, everything = op(r.view(b"s"))
    assert t == "set"

    monkeypatch.setattr(collmemory, "SAMPLES_MOST", 20)
    engine = r.store.engine
    reads = []
    real_get = engine.get

    def counted_get(p: int, key: bytes) -> bytes | None:
        if key != b"s":  # an element's record, not the key's header
            reads.append(key)
        return real_get(p, key)

    monkeypatch.setattr(engine, "get", counted_get)
    for samples in (b"0", b"1000"):
        reads.clear()
        _, op = collmemory.build_memusage([b"dyn.memusage", b"s", samples], 2)
        t, estimate = op(r.view(b"s"))
        assert t == "set" and len(reads) == 20
        assert abs(estimate - everything) <= everything // 50  # members of one size
