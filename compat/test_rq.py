"""rq, a job queue on Redis lists, sets, sorted sets and hashes, through one node of a
3-node cluster: a producer enqueues through one node, and an in-process SimpleWorker in
burst mode runs the job through another.

Enqueueing works: the job's hash, the queue's list and the queues' set are written and
read back through any node. Running a job to its result cannot work yet, for two reasons
of the current design, so that test is an expected failure (strict: it fails the run the
day it passes): rq finishes a job inside `WATCH job:dependents ... MULTI ... EXEC`, and
WATCH is refused (transactions are ordered batches, not isolated); and rq 1.12 and later
keep results in a stream (XADD, XREVRANGE), and streams are not served. The worker also
logs that SUBSCRIBE (its command channel) is unknown, which it survives.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import rq_jobs
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from tests.integration.conftest import SOCKET_TIMEOUT_S, Cluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def nodes(cluster: Cluster) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    # rq keeps pickled bytes: clients without decode_responses, as rq's docs use.
    a = cluster.client(0, decode_responses=False, socket_timeout=SOCKET_TIMEOUT_S)
    b = cluster.client(2, decode_responses=False, socket_timeout=SOCKET_TIMEOUT_S)
    yield a, b
    a.close()
    b.close()


@pytest.mark.compat(client="rq", family="lists")
def test_enqueue_through_one_node_is_seen_through_another(
        nodes: tuple[redis.Redis, redis.Redis]) -> None:
    producer, other = nodes
    q = Queue("compat-enqueue", connection=producer)
    jobs = [q.enqueue(rq_jobs.count_words, f"one two {i}") for i in range(5)]
    seen = Queue("compat-enqueue", connection=other)
    assert seen.count == 5
    assert seen.job_ids == [j.id for j in jobs]
    fetched = Job.fetch(jobs[2].id, connection=other)
    assert fetched.get_status() == JobStatus.QUEUED
    assert fetched.func_name == "rq_jobs.count_words" and fetched.args == ("one two 2",)
    assert b"compat-enqueue" in {name.rsplit(b":", 1)[-1]
                                 for name in other.smembers("rq:queues")}


@pytest.mark.xfail(strict=True, reason="rq stores a job's result in a stream (XADD): streams "
                   "are not served (see the README's command table)")
@pytest.mark.compat(client="rq", family="lists")
def test_a_burst_worker_runs_the_job_and_its_result_is_read(
        nodes: tuple[redis.Redis, redis.Redis]) -> None:
    producer, worker_node = nodes
    job = Queue("compat-work", connection=producer).enqueue(rq_jobs.count_words, "a b c d")
    worker = SimpleWorker([Queue("compat-work", connection=worker_node)],
                          connection=worker_node)
    assert worker.work(burst=True) is True
    done = Job.fetch(job.id, connection=producer)
    assert done.get_status() == JobStatus.FINISHED
    assert done.return_value() == 4
