"""Mobile-money callbacks under load: gunicorn on loopback, the real webhook path.

``n`` Airtel payments are pushed to the operator simulator through the real adapter, and
its customers pay. The bench then sends their signed callbacks to our webhook, 20 % of
them twice (as operators do), ``--concurrency`` at a time, from a Python client. Every
callback is authenticated, matched to its intent and stored raw with its outcome, and
answered; a Celery worker (its own process, on the ``celery`` queue, as in production)
confirms each with the operator's status query (real HTTP to the simulator) and settles
it once. It prints:

- ``webhooks_per_s``: callbacks answered per second, side by side with the same server
  answering ``/healthz/`` (a small JSON view that reads the database once) as many times
  in the same run; ``webhooks_per_s_vs_trivial``: the same figure side by side with a
  JSON view that reads nothing at all (``bench.urls``, a route of the bench's own, never
  the product's); all after a warm-up that is not counted; p50 and p99 of each;
- ``webhook_settlements_per_s``: distinct payments recorded per second, from the first
  callback sent to the last payment recorded (the worker runs during the whole load);

and checks that exactly one payment per distinct transaction was recorded. The receipts
for the clients stay queued: no worker reads the ``deliveries`` queue here.

    python -m bench.webhooks [--n 2000] [--concurrency 16] [--workers 2]
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench._broker import private_task_queue
from bench.harness import TRIVIAL_JSON_PATH, bench_database, emit, emit_comparison

ROOT = Path(__file__).resolve().parent.parent
DUPLICATES = 0.2
KEY_PREFIX = f"mwolo-bench-{os.getpid()}:"  # the bench's keys on the run's Redis
# Payments settled before the clock starts, so that each worker has made its first
# payment (imports, the task queue's set-up) as a server that has run a while has.
WARM_UP = 20


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="distinct payments")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument(
        "--task-workers", type=int, default=2, help="Celery worker processes confirming"
    )
    return parser.parse_args()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def fire(
    url: str, requests: list[tuple[str, bytes, dict]], concurrency: int
) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    queue: asyncio.Queue = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def worker() -> None:
            while not queue.empty():
                method, path_body, headers = queue.get_nowait()
                path, body = path_body
                started = time.perf_counter()
                if method == "GET":
                    response = await client.get(path)
                else:
                    response = await client.post(path, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                statuses.append(response.status_code)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, statuses


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn stopped: " + log.read_text(errors="replace")[-4000:])
        try:
            if httpx.get(f"{url}/healthz/", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer")


def trivial_reads_nothing() -> None:
    """The trivial baseline must stay trivial: no query, whatever the middleware becomes."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    with override_settings(ROOT_URLCONF="bench.urls"), CaptureQueriesContext(connection) as seen:
        answer = Client().get(TRIVIAL_JSON_PATH)
    if answer.status_code != 200 or seen.captured_queries:
        raise RuntimeError(f"{TRIVIAL_JSON_PATH}: {answer.status_code}, {len(seen)} queries")


def redis_keys_delete(url: str, prefix: str) -> None:
    """The bench's queues on the run's Redis (the receipts nobody read), if it used one."""
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)


def wait_for_payments(count: int, worker: subprocess.Popen) -> None:
    """Until the worker has recorded ``count`` payments (it confirms at its own pace)."""
    from mwolo.payments.models import Payment

    deadline = time.monotonic() + 600
    while Payment.objects.count() < count:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{Payment.objects.count()} of {count} payments recorded")
        time.sleep(0.05)


def main() -> None:
    args = arguments()
    # One line per request otherwise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("mwolo.integrations.payments").setLevel(logging.WARNING)
    # Receipts and reconnection checks are queued for the workers as in production (none
    # runs): in this process into a task queue of the bench's own, in gunicorn's into its
    # own folder; both deleted at the end, never the developer's broker.
    with bench_database() as database, private_task_queue():
        from django.conf import settings
        from django.db import connection

        from mwolo.core import clock
        from mwolo.core.testing.mqtt import free_port
        from mwolo.core.testing.operators import mobile_money_settings, start_operator_sandbox
        from mwolo.crm.models import Client
        from mwolo.crm.tests.bulk import bulk_clients
        from mwolo.payments.models import Payment, PaymentIntent, WebhookCall
        from mwolo.payments.services import INTENT_LIFETIME, payment_intent_push
        from sandbox.operators import accounts

        sandbox = start_operator_sandbox()
        gunicorn = worker = None
        var_dir = None
        try:
            sandbox.configure(airtel_callback_url="", callback_delay=0)
            settings.MOBILE_MONEY = mobile_money_settings(sandbox.url)
            distinct = args.n + WARM_UP
            bulk_clients(count=distinct, agency_count=1)
            now = clock.now()
            intents = PaymentIntent.objects.bulk_create(
                PaymentIntent(
                    client=client,
                    purpose=PaymentIntent.Purpose.ACCOUNT,
                    provider="airtel",
                    # Ends in 0: never one of the simulator's scripted failures (99x).
                    msisdn=f"+24397{index:06d}0",
                    amount=5000,
                    currency="CDF",
                    expires_at=now + INTENT_LIFETIME,
                )
                for index, client in enumerate(Client.objects.order_by("pk")[:distinct], start=1)
            )
            for intent in intents:
                payment_intent_push(intent_id=intent.pk)
            # The customers answer in the simulator's own threads: wait for the last ones.
            paid = {
                intent.reference: sandbox.wait_until_done("airtel", intent.reference)
                for intent in intents
            }
            key = accounts.AIRTEL["callback_key"].encode()
            callbacks = []
            for intent in intents:
                transaction = paid[intent.reference]
                body = json.dumps(
                    {
                        "transaction": {
                            "id": intent.reference,
                            "message": "Paid",
                            "status_code": "TS",
                            "airtel_money_id": transaction["receipt"],
                        }
                    },
                    separators=(",", ":"),
                ).encode()
                signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
                headers = {"Content-Type": "application/json", "hash": signature}
                callbacks.append(("POST", ("/api/payments/webhooks/airtel/", body), headers))
            warm_up, callbacks = callbacks[:WARM_UP], callbacks[WARM_UP:]
            rng = random.Random(args.n)  # noqa: S311 - which callbacks come twice, not a secret
            requests = callbacks + rng.sample(callbacks, int(len(callbacks) * DUPLICATES))
            rng.shuffle(requests)

            port = free_port()
            settings_dict = connection.settings_dict
            if connection.vendor == "sqlite":
                database_url = f"sqlite:///{settings_dict['NAME']}"
            else:
                host, db_port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
                database_url = (
                    f"postgres://{settings_dict['USER']}@{host}:{db_port}/{settings_dict['NAME']}"
                )
            var_dir = tempfile.mkdtemp(prefix="mwolo-bench-")
            gunicorn_log = Path(var_dir) / "gunicorn.log"
            trivial_reads_nothing()
            environment = {
                **os.environ,
                # The test settings, with the bench's trivial route added.
                "DJANGO_SETTINGS_MODULE": "bench.settings",
                "DATABASE_URL": database_url,
                "MWOLO_VAR_DIR": var_dir,
                "MWOLO_TEST_TASKS_EAGER": "0",
                # The run's broker (Redis when CELERY_BROKER_URL names it), under a key
                # prefix of this run's own; else files in the throw-away folder.
                "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
                "CELERY_KEY_PREFIX": KEY_PREFIX,
                "MOBILE_MONEY_SIMULATOR_URL": sandbox.url,
                # As in production: connections kept between requests, no line per request.
                "DATABASE_CONN_MAX_AGE": "60",
                "LOG_LEVEL": "WARNING",
            }
            connection.close()
            gunicorn = subprocess.Popen(  # noqa: S603 - our own command line
                [
                    str(Path(sys.executable).with_name("gunicorn")),
                    "config.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(args.workers),
                    "--threads",
                    "4",
                    "--log-level",
                    "warning",
                    "--graceful-timeout",
                    "5",
                ],
                cwd=ROOT,
                env=environment,
                # A file, not a pipe: a full pipe would block the workers' logging.
                stderr=gunicorn_log.open("wb"),
            )
            url = f"http://127.0.0.1:{port}"
            worker = subprocess.Popen(  # noqa: S603 - our own command line
                [
                    str(Path(sys.executable).with_name("celery")),
                    "--app",
                    "config",
                    "worker",
                    "--queues",
                    "celery",
                    "--concurrency",
                    str(args.task_workers),
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env=environment,
                stderr=(Path(var_dir) / "worker.log").open("wb"),
            )
            wait_until_up(url, gunicorn, gunicorn_log)
            healthz = [("GET", ("/healthz/", b""), {})] * len(requests)
            trivial = [("GET", (TRIVIAL_JSON_PATH, b""), {})] * len(requests)
            asyncio.run(fire(url, healthz[:200] + trivial[:200] + warm_up, args.concurrency))
            wait_for_payments(WARM_UP, worker)
            started = time.perf_counter()
            seconds, latencies, statuses = asyncio.run(fire(url, requests, args.concurrency))
            wait_for_payments(distinct, worker)
            settle_seconds = time.perf_counter() - started
            base_seconds, base_latencies, base_statuses = asyncio.run(
                fire(url, healthz, args.concurrency)
            )
            bare_seconds, bare_latencies, bare_statuses = asyncio.run(
                fire(url, trivial, args.concurrency)
            )
        finally:
            for process in (gunicorn, worker):
                if process is not None:
                    process.terminate()
                    process.wait(30)
            sandbox.stop()
            if var_dir is not None:  # gunicorn's broker (thousands of tasks), log, cache
                shutil.rmtree(var_dir, ignore_errors=True)
            redis_keys_delete(os.environ.get("CELERY_BROKER_URL", ""), KEY_PREFIX)

        payments = Payment.objects.count()
        if payments != distinct or any(status != 200 for status in statuses):
            outcomes = Counter(
                WebhookCall.objects.exclude(outcome__in=["settled", "duplicate"]).values_list(
                    "outcome", "detail"
                )
            )
            raise RuntimeError(
                f"{payments} payments for {distinct} transactions; statuses {set(statuses)}; "
                f"other outcomes {dict(outcomes)}"
            )
        if WebhookCall.objects.filter(outcome="settled").count() != distinct:
            raise RuntimeError("not one settled callback per transaction")
        if set(base_statuses) | set(bare_statuses) != {200}:
            raise RuntimeError(f"baselines answered {set(base_statuses) | set(bare_statuses)}")
        emit_comparison(
            "webhooks_per_s",
            len(requests) / seconds,
            "requests/s",
            args.n,
            database,
            baseline="the same server answering /healthz/ (one database query)",
            baseline_value=len(healthz) / base_seconds,
        )
        emit_comparison(
            "webhooks_per_s_vs_trivial",
            len(requests) / seconds,
            "requests/s",
            args.n,
            database,
            baseline=f"the same server answering {TRIVIAL_JSON_PATH} (JSON, no database query)",
            baseline_value=len(trivial) / bare_seconds,
        )
        emit("webhook_settlements_per_s", args.n / settle_seconds, "payments/s", args.n, database)
        emit("webhooks_p50", percentile(latencies, 0.5) * 1000, "ms", args.n, database)
        emit("webhooks_p99", percentile(latencies, 0.99) * 1000, "ms", args.n, database)
        emit("healthz_p99", percentile(base_latencies, 0.99) * 1000, "ms", args.n, database)
        emit("trivial_p50", percentile(bare_latencies, 0.5) * 1000, "ms", args.n, database)
        emit("trivial_p99", percentile(bare_latencies, 0.99) * 1000, "ms", args.n, database)


if __name__ == "__main__":
    main()
