"""Celery with dynredis as its result backend and its broker, through different nodes of
a 3-node cluster.

The result backend stores each task's result under `celery-task-meta-<id>` and
publishes it on a channel of that name; a client waiting for a result subscribes to it,
here on another node than the one the result is stored through. The broker needs BRPOP
(kombu's Redis transport waits for tasks with it)."""

from __future__ import annotations

import threading
import uuid

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from tests.integration.conftest import HOST, Cluster

pytestmark = pytest.mark.timeout(120)

mark = pytest.mark.compat(client="celery", family="pubsub")


def make_app(broker_port: int, backend_port: int) -> Celery:
    app = Celery("dynredis_compat", broker=f"redis://{HOST}:{broker_port}/0",
                 backend=f"redis://{HOST}:{backend_port}/0")
    app.conf.broker_connection_retry_on_startup = False
    app.conf.broker_connection_max_retries = 1
    app.conf.result_expires = 300
    return app


@mark
def test_a_result_stored_through_one_node_reaches_a_waiter_on_another(
        cluster: Cluster) -> None:
    worker_side = make_app(cluster.ports[0], cluster.ports[2])
    client_side = make_app(cluster.ports[0], cluster.ports[1])
    task_id = str(uuid.uuid4())
    got: list[object] = []
    waiting = client_side.AsyncResult(task_id)
    waiter = threading.Thread(target=lambda: got.append(waiting.get(timeout=20)))
    waiter.start()
    # The waiter subscribes, then reads the stored meta: whichever comes first, it
    # gets the result the worker side stores through another node.
    worker_side.backend.store_result(task_id, {"sum": 42}, "SUCCESS")
    waiter.join(25)
    assert got == [{"sum": 42}]
    assert client_side.AsyncResult(task_id).state == "SUCCESS"
    for app in (worker_side, client_side):
        app.close()


@mark
def test_a_worker_runs_tasks_sent_through_another_node(cluster: Cluster) -> None:
    app = make_app(cluster.ports[0], cluster.ports[1])

    @app.task(name="dynredis_compat.add")
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        sender = make_app(cluster.ports[2], cluster.ports[1])
        results = [sender.send_task("dynredis_compat.add", (i, i)) for i in range(5)]
        assert [r.get(timeout=20) for r in results] == [0, 2, 4, 6, 8]
    app.close()
