import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker
from django.apps import apps
from django.db import connections
from kombu import Exchange, Queue

from mwolo.billing.tests.factories import tariff
from mwolo.crm.models import SiteCategory

_policies = importlib.import_module("mwolo.dunning.migrations.0002_default_policies")
_holidays = importlib.import_module("mwolo.dunning.migrations.0003_public_holidays")
_gaps = importlib.import_module("mwolo.dunning.migrations.0005_step_gap_at_least_one_day")


@pytest.fixture(autouse=True)
def _dunning_defaults_after_flush(request):
    """Transactional tests start from a flushed database: the default policies and the
    holidays come back, as the migrations loaded them."""
    marker = request.node.get_closest_marker("django_db")
    if (marker is not None and marker.kwargs.get("transaction", False)) or (
        "transactional_db" in request.fixturenames
    ):
        request.getfixturevalue("transactional_db")
        _policies.seed(apps, None)
        _gaps.at_least_one_day(apps, None)
        _holidays.seed(apps, None)


@pytest.fixture
def residential(db):
    """2 500 CDF a month; the first 50 kWh at 100 CDF, the rest at 200 CDF; VAT 16 %."""
    return tariff()


@pytest.fixture
def public_tariff(db):
    return tariff(code="PUB-2026", category=SiteCategory.PUBLIC)


def _pools_reset(app: Any) -> None:
    """Forget the app's connection and producer pools and its router, so that the next
    task is published to the broker and queue configured now (what Celery itself does
    after a fork). Not closed: kombu keeps one pool per broker for the whole process, and
    the broker configured before (the run's Redis, say) gets its own back."""
    app._pool = None
    app.amqp._producer_pool = None
    # The router too, built from task_routes at its first use.
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)


def _connections_close(**_kwargs: Any) -> None:
    # The worker's thread has its own database connections: closed after each task, so
    # none outlives the test (PostgreSQL refuses to drop a database still connected to).
    connections.close_all()


@pytest.fixture
def task_worker(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """A real Celery worker, in a thread of this process, on the run's broker: Redis when
    ``CELERY_BROKER_URL`` names one (under the run's key prefix), otherwise a filesystem
    broker in the test's own folder. Tasks are published on commit and taken from the
    broker, as in production, not run in the caller (no eager mode). The queue is the
    test's own, so tests running side by side never take each other's tasks; it is
    deleted at the end. Yields the queue's name."""
    from config.celery import app

    queue = f"test-{uuid.uuid4().hex}"
    names = (
        "broker_url",
        "broker_transport_options",
        "task_always_eager",
        "task_default_queue",
        "task_routes",
        "worker_hijack_root_logger",
        "worker_enable_remote_control",
    )
    saved = {name: app.conf[name] for name in names}
    changes: dict[str, Any] = {
        "task_always_eager": False,
        "task_default_queue": queue,
        "task_routes": {},  # every task to the test's queue, deliveries included
        "worker_hijack_root_logger": False,
        "worker_enable_remote_control": False,  # no control queue left on the broker
    }
    if str(app.conf.broker_url).startswith("filesystem://"):
        folder = tmp_path / "broker"
        for name in ("queue", "control"):
            (folder / name).mkdir(parents=True)
        changes["broker_url"] = "filesystem://"
        changes["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
    app.conf.update(**changes)
    _pools_reset(app)
    signals.task_postrun.connect(_connections_close, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            queues=[queue],
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=60,
        ):
            yield queue
        with app.connection_for_write() as connection:
            # Declared on this channel first, so that its binding goes with it (Redis
            # keeps bindings in keys of their own).
            own = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)
            bound = own(connection.default_channel)
            bound.declare()
            bound.delete()
    finally:
        signals.task_postrun.disconnect(_connections_close)
        app.conf.update(**saved)
        _pools_reset(app)
