"""The namespace tests' history checker finds what it is there to find."""

from __future__ import annotations

from tests.netns.checker import Op, check


def w(client: str, key: str, value: str, t0: float, t1: float, status: str = "ok") -> Op:
    return Op(client, "set", key, value, t0, t1, status)


def r(client: str, key: str, value: str | None, t0: float = 9.0) -> Op:
    return Op(client, "get", key, value, t0, t0 + 0.1, "ok")


def test_a_history_whose_final_state_keeps_the_last_writes_passes() -> None:
    ops = [w("a", "k", "a:1", 0, 1), w("a", "k", "a:2", 2, 3), r("b", "k", "a:1")]
    assert check(ops, {"k": ["a:2"]}) == []


def test_an_acknowledged_write_missing_from_the_final_state_is_lost() -> None:
    ops = [w("a", "k", "a:1", 0, 1), w("a", "k", "a:2", 2, 3)]
    problems = check(ops, {"k": ["a:1"]})
    assert len(problems) == 1 and "'a:2'" in problems[0] and "lost" in problems[0]
    assert check(ops, {}) and "lost" in check(ops, {})[0]


def test_a_write_superseded_only_by_one_that_ended_before_it_began_is_lost() -> None:
    ops = [w("a", "k", "a:1", 5, 6), w("b", "k", "b:1", 0, 1)]
    assert "a:1" in check(ops, {"k": ["b:1"]})[0]
    # A concurrent one, or one not acknowledged (it may have been stored), may win.
    assert check([w("a", "k", "a:1", 5, 6), w("b", "k", "b:1", 4, 7)], {"k": ["b:1"]}) == []
    assert check([w("a", "k", "a:1", 5, 6), w("b", "k", "b:1", 0, 1, "info")],
                 {"k": ["b:1"]}) == []


def test_unacknowledged_writes_may_be_lost() -> None:
    assert check([w("a", "k", "a:1", 0, 1, "fail"), w("a", "k", "a:2", 2, 3, "info")],
                 {"k": []}) == []


def test_a_value_nobody_wrote_is_reported_where_read_and_where_held() -> None:
    ops = [w("a", "k", "a:1", 0, 1), r("b", "k", "zz"), r("b", "k", None)]
    problems = check(ops, {"k": ["a:1", "yy"]})
    assert any("'zz'" in p and "nobody wrote" in p for p in problems)
    assert any("'yy'" in p and "nobody wrote" in p for p in problems)
    assert len(problems) == 2
    # A value written to another key is not this key's.
    assert check([w("a", "j", "a:1", 0, 1)], {"k": ["a:1"]})


def test_without_root_the_namespace_tests_say_why_they_skip(monkeypatch) -> None:
    from tests.netns import lab

    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    assert lab.unavailable() == "network namespaces need root (CI runs as root)"
