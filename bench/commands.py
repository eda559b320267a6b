"""Command round trip: a disconnection run over ``n`` meters, from decision to acknowledgement.

``n`` simulated meters are online (the simulator, over a Mosquitto of the bench's own
configured as deploy/mosquitto.conf). The platform decides to disconnect every one of them
through ``meters_relay_request``, 500 meters per transaction, as the dunning run will; a
head-end process sends the
commands and applies the acknowledgements. The run ends when every command is
acknowledged and every simulated relay is open. Prints commands/s over the whole run and
the 50th and 99th percentile of each command's time from decision to acknowledgement, and
how many commands went out more than once and how many acks came back for nothing.

    python -m bench.commands [--n 5000]
"""

import time

from bench.harness import bench_database, emit, parse_args, running_headends

WAIT_SECONDS = 300
CHUNK = 500  # meters decided per transaction, as a dunning run does


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def main() -> None:
    args = parse_args(__doc__ or "", default_n=5000)
    n = args.n
    with bench_database() as database:
        from django.db.models import Sum

        from mwolo.core import clock
        from mwolo.core.testing.mqtt import private_broker
        from mwolo.crm.tests.bulk import bulk_clients, bulk_sites
        from mwolo.metering import services
        from mwolo.metering.models import HeadendRejection, Meter, MeterCommand, Relay
        from mwolo.metering.tests.bulk import bulk_meters
        from sandbox.meters import Fleet

        broker = private_broker()
        try:
            (agency,) = bulk_clients(count=n, agency_count=1)
            # Readings every six hours: the fleet is mostly quiet, as between reports.
            fleet = Fleet(broker.host, broker.port, broker.prefix, count=n, interval=6 * 3600)
            now = clock.now()
            bulk_meters(
                registers={
                    m.spec.serial: m.spec.register_at(now.timestamp()) for m in fleet.meters
                },
                agency=agency,
                read_at=now,
                sites=bulk_sites(agency=agency, count=n),
            )
            meter_ids = list(Meter.objects.order_by("pk").values_list("pk", flat=True))
            fleet.start(wait=60)
            with running_headends(broker.url, broker.prefix, workers=1):
                started = time.perf_counter()
                for start in range(0, n, CHUNK):
                    services.meters_relay_request(
                        meter_ids=meter_ids[start : start + CHUNK],
                        wanted=Relay.OFF,
                        why=Meter.RelayReason.DUNNING,
                        source=MeterCommand.Source.DUNNING,
                    )
                deadline = time.monotonic() + WAIT_SECONDS
                acknowledged = MeterCommand.objects.filter(status=MeterCommand.Status.ACKNOWLEDGED)
                while (done := acknowledged.count()) < n:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {done} of {n} commands acknowledged")
                    time.sleep(0.02)
                seconds = time.perf_counter() - started
            open_relays = sum(meter.relay == Relay.OFF for meter in fleet.meters)
            fleet.stop()
        finally:
            broker.close()

        if open_relays != n:
            raise RuntimeError(f"{n - open_relays} simulated relays are still closed")
        # Each command should go out once: a re-send (or an ack counted as a duplicate)
        # is a message the run did not need.
        sends = acknowledged.aggregate(sends=Sum("attempts"))["sends"] or 0
        duplicate_acks = HeadendRejection.objects.filter(reason="duplicate_ack").aggregate(
            count=Sum("count")
        )["count"]
        latencies = sorted(
            (acked - issued).total_seconds() * 1000
            for issued, acked in acknowledged.values_list("issued_at", "acknowledged_at")
        )
        emit("disconnect_commands_per_s", n / seconds, "commands/s", n, database)
        emit("disconnect_latency_p50", percentile(latencies, 0.50), "ms", n, database)
        emit("disconnect_latency_p99", percentile(latencies, 0.99), "ms", n, database)
        emit("disconnect_commands_resent", sends - n, "commands", n, database)
        emit("disconnect_duplicate_acks", duplicate_acks or 0, "acks", n, database)


if __name__ == "__main__":
    main()
