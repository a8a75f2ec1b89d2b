"""The environment `dynredis cluster` gives its nodes: malloc's huge pages asked for."""

from __future__ import annotations

from dynredis.mallocenv import TUNABLE, with_huge_pages


def test_the_tunable_is_added_beside_others_and_a_given_one_is_kept() -> None:
    assert with_huge_pages({"A": "1"}) == {"A": "1", "GLIBC_TUNABLES": TUNABLE}
    other = "glibc.malloc.arena_max=2"
    assert with_huge_pages({"GLIBC_TUNABLES": other})["GLIBC_TUNABLES"] == f"{other}:{TUNABLE}"
    own = "glibc.malloc.hugetlb=0"
    assert with_huge_pages({"GLIBC_TUNABLES": own})["GLIBC_TUNABLES"] == own
