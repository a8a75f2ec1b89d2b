"""prometheus-redis-exporter (Debian's package) scraping a node of a 3-node cluster
and a redis-server: every metric it exports for redis-server it exports for the node,
and the scrape of the node reports no error."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis

from tests.integration.conftest import HOST, Cluster, wait_until

pytestmark = pytest.mark.timeout(120)

EXPORTER = "prometheus-redis-exporter"
# Exported for redis-server only while it has something a node never has.
ONLY_REDIS: set[str] = set()


@contextmanager
def exporter(target: int, port: int) -> Iterator[str]:
    """Run the exporter against `target`; yields its metrics URL."""
    path = shutil.which(EXPORTER)
    assert path is not None, f"{EXPORTER} is not installed (scripts/install.sh --test does)"
    proc = subprocess.Popen([path, "-redis.addr", f"redis://{HOST}:{target}",
                             "-web.listen-address", f"{HOST}:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    url = f"http://{HOST}:{port}/metrics"
    try:
        wait_until(lambda: _get(url), 20, what="the exporter to serve its metrics")
        yield url
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        errors = [line for line in out.splitlines() if "level=error" in line]
        assert not errors, "\n".join(errors)


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def metric_names(text: str) -> set[str]:
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def value(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name):
            return line.rsplit(" ", 1)[1]
    raise AssertionError(f"{name} not exported")


def exercise(c: redis.Redis) -> None:
    """Some commands, an error, a key with a TTL: what the exporter's metrics describe."""
    c.set("exporter:k", "v", ex=1000)
    c.get("exporter:k")
    with pytest.raises(redis.ResponseError):
        c.execute_command("INCR", "exporter:k")


@pytest.mark.compat(client="prometheus-redis-exporter", family="server")
def test_the_exporter_exports_for_a_node_what_it_exports_for_redis(
        cluster: Cluster, real_redis: redis.Redis, free_port: Callable[[], int]) -> None:
    node = cluster.client(0)
    exercise(node)
    exercise(real_redis)
    with exporter(cluster.ports[0], free_port()) as url:
        ours = _get(url)
        ours = _get(url)  # a second scrape: the first one's commands are counted
    with exporter(real_redis.port, free_port()) as url:  # type: ignore[attr-defined]
        _get(url)
        theirs = _get(url)
    assert value(ours, "redis_up") == "1"
    assert value(ours, "redis_exporter_last_scrape_error") == "0"
    missing = metric_names(theirs) - metric_names(ours) - ONLY_REDIS
    assert not missing, sorted(missing)
    # figures it reads from INFO commandstats / errorstats / memory
    assert 'redis_commands_total{cmd="set"}' in ours
    assert re.search(r'redis_errors_total\{err="ERR"\} [1-9]', ours)
    assert float(value(ours, "redis_memory_used_bytes")) > 0
    assert 'redis_commands_total{cmd="config|get"}' in ours
