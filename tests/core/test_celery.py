"""A real Celery worker consumes a task from the real Redis broker (no eager mode)."""

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery_app import app
from core.tasks import ping


@pytest.mark.redis
def test_a_real_worker_executes_a_task_through_redis(settings):
    assert app.conf.broker_url.startswith("redis://")
    assert not app.conf.task_always_eager
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = ping.delay("hello")
        assert result.get(timeout=20) == "pong: hello"
