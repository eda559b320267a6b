"""What every benchmark shares: a throw-away database and the JSON-line output.

A benchmark builds its data in a database of its own, created from the migrations next
to the one ``DATABASE_URL`` names (SQLite file under ``var/`` by default) and dropped at
the end, so it never touches development data and two runs do not collide.
"""

import argparse
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event
from typing import Any

# A route of the benchmarks' own (``bench.urls``): JSON that reads nothing, a baseline.
TRIVIAL_JSON_PATH = "/_bench/trivial/"


def parse_args(description: str, default_n: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=int, default=default_n, help="size of the data set")
    return parser.parse_args()


@contextmanager
def bench_database() -> Iterator[str]:
    """Set up Django on a fresh, migrated database; yields the database vendor."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("MWOLO_TEST_RUN_ID", f"bench{os.getpid()}")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import (
        setup_databases,
        setup_test_environment,
        teardown_databases,
    )

    from mwolo.geo.services import BUNDLED_LOCALITIES, localities_import

    setup_test_environment()  # the test client's host, locmem mail
    old_config = setup_databases(verbosity=0, interactive=False)
    with BUNDLED_LOCALITIES.open(encoding="utf-8") as source:
        localities_import(source=source)
    try:
        yield connection.vendor
    finally:
        teardown_databases(old_config, verbosity=0)


def timed(work: Callable[[], Any]) -> float:
    """Wall time of ``work()`` in seconds."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def emit(metric: str, value: float, unit: str, n: int, database: str, **extra: Any) -> None:
    """One result line: metric, value, unit, n, database, and any comparison fields."""
    print(  # noqa: T201 - a benchmark reports on stdout
        json.dumps(
            {
                "metric": metric,
                "value": round(value, 3),
                "unit": unit,
                "n": n,
                "database": database,
                **extra,
            }
        ),
        flush=True,
    )


def emit_comparison(
    metric: str,
    value: float,
    unit: str,
    n: int,
    database: str,
    *,
    baseline: str,
    baseline_value: float,
) -> None:
    """A throughput next to the same work done another way (ratio > 1: ours is faster)."""
    emit(
        metric,
        value,
        unit,
        n,
        database,
        baseline=baseline,
        baseline_value=round(baseline_value, 3),
        ratio=round(value / baseline_value, 3),
    )


def _headend_process(url: str, prefix: str, index: int, shared: bool, ready: Event, stop: Event):
    """One head-end process: the same code as ``manage.py headend``."""
    from mwolo.metering.headend import Headend

    headend = Headend(
        url=url,
        prefix=prefix,
        client_id=f"{prefix}-headend-{index}",
        shared_group="bench" if shared else None,
        statuses=index == 0,  # as deployed: one process of the group takes statuses
        dispatch_interval=0.05,
    )
    stopping = threading.Event()
    runner = threading.Thread(target=headend.run, args=(stopping,))
    runner.start()
    if headend.transport.wait_ready(30):
        ready.set()
    stop.wait()
    stopping.set()
    runner.join()


@contextmanager
def running_headends(url: str, prefix: str, workers: int) -> Iterator[None]:
    """``workers`` head-end processes (one shared subscription for acks and telemetry,
    statuses to the first), subscribed on entry.

    They are forked from the bench, so they use its database; its connections are closed
    first, each process opens its own.
    """
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    processes = []
    try:
        for index in range(workers):
            ready = context.Event()
            process = context.Process(
                target=_headend_process,
                args=(url, prefix, index, workers > 1, ready, stop),
            )
            process.start()
            processes.append(process)
            if not ready.wait(30):
                raise RuntimeError("a head-end process did not subscribe within 30 s")
        yield
    finally:
        stop.set()
        for process in processes:
            process.join(60)
