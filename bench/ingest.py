"""Telemetry ingest end to end: simulated meters -> MQTT broker -> head-end -> stored rows.

The meter simulator publishes the recent history of ``--meters`` meters, ``n`` readings in
all, ``--per-message`` readings per telemetry message, at QoS 1, as fast as the broker
takes it. Meanwhile ``--workers`` head-end processes (one shared subscription) store it
through the real ingest service. The clock runs from the first publish to the moment the
last reading is in the database.

The baseline stores the same rows with one ``bulk_create`` in one transaction, in the same
database, in the same run: the ratio says how much of the raw insert rate survives the
trip through the broker, parsing, validation and the checks on every reading.

The broker is a Mosquitto of the bench's own with the windows and queue limits of
deploy/mosquitto.conf (the embedded broker where Mosquitto is not installed).

    python -m bench.ingest [--n 200000] [--meters 2000] [--per-message 10] [--workers 2]
"""

import argparse
import datetime as dt
import time

from bench.harness import bench_database, emit, emit_comparison, running_headends

STEP_SECONDS = 900  # a reading every quarter of an hour
WAIT_SECONDS = 600


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000, help="readings in all")
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--per-message", type=int, default=10, help="readings per message")
    parser.add_argument("--workers", type=int, default=2, help="head-end processes")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    readings_per_meter = max(1, args.n // args.meters)
    n = readings_per_meter * args.meters
    with bench_database() as database:
        from django.db import transaction

        from mwolo.agencies.tests.factories import AgencyFactory
        from mwolo.core.testing.mqtt import private_broker
        from mwolo.metering.models import MeterReading
        from mwolo.metering.tests.bulk import bulk_meters
        from sandbox.meters import Fleet

        broker = private_broker()
        workers = args.workers if database != "sqlite" else 1  # SQLite has one writer
        try:
            end = dt.datetime.now(dt.UTC).replace(microsecond=0)
            fleet = Fleet(broker.host, broker.port, broker.prefix, count=args.meters)
            before = end.timestamp() - (readings_per_meter + 1) * STEP_SECONDS
            bulk_meters(
                registers={m.spec.serial: m.spec.register_at(before) for m in fleet.meters},
                agency=AgencyFactory(),
                read_at=dt.datetime.fromtimestamp(before, dt.UTC),
            )
            with running_headends(broker.url, broker.prefix, workers):
                published = fleet.publish_history(
                    readings_per_meter,
                    STEP_SECONDS,
                    batch_size=args.per_message,
                    end=end,
                    timeout=WAIT_SECONDS,
                )
                deadline = time.monotonic() + WAIT_SECONDS
                while (stored := MeterReading.objects.count()) < n:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {stored} of {n} readings stored")
                    time.sleep(0.02)
                seconds = time.time() - published.started_at.timestamp()
        finally:
            broker.close()

        flagged = MeterReading.objects.exclude(flag="").count()
        if flagged:
            raise RuntimeError(f"{flagged} readings of the simulated meters were flagged")
        rows = [
            MeterReading(meter_id=meter_id, taken_at=at, energy_kwh=energy, source=source)
            for meter_id, at, energy, source in MeterReading.objects.values_list(
                "meter_id", "taken_at", "energy_kwh", "source"
            )
        ]
        MeterReading.objects.all().delete()
        started = time.perf_counter()
        with transaction.atomic():
            MeterReading.objects.bulk_create(rows, batch_size=5000)
        raw_seconds = time.perf_counter() - started

        emit_comparison(
            "ingest_readings_per_s",
            n / seconds,
            "readings/s",
            n,
            database,
            baseline="bulk_create of the same rows",
            baseline_value=n / raw_seconds,
        )
        emit("ingest_messages_per_s", published.messages / seconds, "messages/s", n, database)
        emit(
            "broker_accepted_messages_per_s",
            published.messages_per_second,
            "messages/s",
            n,
            database,
        )


if __name__ == "__main__":
    main()
