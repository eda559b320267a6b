"""A task queue of the bench's own, thrown away at the end.

A benchmark that lets the code queue its tasks as in production (delivery of messages,
receipts, invoices) must not publish them into the developer's broker: the default one is
the folder ``var/broker/queue`` that ``make run``'s worker reads, and it would then run
thousands of stray tasks against the development database (Redis, when
``CELERY_BROKER_URL`` names one, is no better). Inside ``private_task_queue()`` tasks are
published, not run, into a filesystem broker in a temporary folder deleted on exit.
"""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def broker_settings(folder: Path) -> dict[str, object]:
    """Celery settings (lower-case names) of a filesystem broker in ``folder``."""
    queue, control = folder / "queue", folder / "control"
    queue.mkdir(parents=True, exist_ok=True)
    control.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(control),
            "store_processed": False,
        },
    }


@contextmanager
def private_task_queue() -> Iterator[Path]:
    """Tasks published (not run in this process) into a throw-away folder; yields its
    queue folder. Enter it before anything publishes."""
    from config.celery import app

    folder = Path(tempfile.mkdtemp(prefix="mwolo-bench-broker-"))
    saved = {
        name: app.conf[name]
        for name in ("broker_url", "broker_transport_options", "task_always_eager")
    }
    _pools_reset(app)
    app.conf.update(**broker_settings(folder), task_always_eager=False)
    try:
        yield folder / "queue"
    finally:
        _pools_reset(app)
        app.conf.update(**saved)
        shutil.rmtree(folder, ignore_errors=True)


def _pools_reset(app: Any) -> None:
    """Forget the app's connection and producer pools, so that the next task is published
    to the broker configured now (what Celery itself does after a fork). Not closed: kombu
    keeps one pool per broker for the whole process, and the broker configured before
    (the run's Redis, say) gets its own back."""
    app._pool = None
    app.amqp._producer_pool = None
