"""Fixtures of the namespace tests: a lab (skipped, saying why, where namespaces cannot
be made) and a cluster in it, stopped and taken apart afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .lab import Lab, unavailable
from .netcluster import NetCluster
from .topology import topology

_WHY = unavailable()


@pytest.fixture(scope="module")
def net_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetCluster]:
    if _WHY is not None:
        pytest.skip(f"network namespace tests skipped: {_WHY}")
    lab = Lab()
    try:
        c = NetCluster(lab, topology(), Path(tmp_path_factory.mktemp("netns")))
        c.start()
        yield c
    finally:
        lab.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    c = item.funcargs.get("net_cluster") if hasattr(item, "funcargs") else None
    if rep.failed and isinstance(c, NetCluster):
        rep.sections.append(("dynredis node logs", c.logs()))
