"""A day's dunning pass over ``n`` overdue invoices, side by side with the per-invoice loop.

Builds ``n`` clients with one postpaid site and meter each, bills October through the real
billing run (draft and issue), then gives the invoices due dates 3 to 18 days before the
measured day and walks the ladder on three earlier days, so that the measured day has
every kind of step: first and second reminders, final notices and disconnections.

- ``dunning_run``: the real pass (``mwolo.dunning.services``), messages written to the
  outbox in the same transactions, delivery queued for the workers — into a task queue of
  the bench's own (``bench._broker``), deleted at the end, never the developer's.
- The baseline is the customer's loop done right: for each overdue invoice one query for
  what is left to pay, one for its reminders, the same decision (the same ladder rules),
  then one insert per reminder and one ``notification_send`` per message, a
  ``meter_relay_request`` per meter cut — the same rows in the end (checked).

Both start from the same state (the first run's rows are removed before the second).
``dunning_pass_wall_time`` carries the loop's time as its baseline, and the ratio of the
throughputs (the loop's time over ours: higher is better, as on every line).

    python -m bench.dunning [--n 100000] [--workers 2]
"""

import argparse
import datetime as dt
import time
from decimal import Decimal
from zoneinfo import ZoneInfo

from bench._broker import private_task_queue
from bench.harness import bench_database, emit, emit_comparison

KINSHASA = ZoneInfo("Africa/Kinshasa")
AS_OF = dt.date(2027, 3, 1)  # a Monday
HISTORY = (dt.date(2027, 2, 23), dt.date(2027, 2, 25), dt.date(2027, 2, 27))
SPREAD = 16  # due dates 3 to 18 days before AS_OF


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="overdue invoices")
    parser.add_argument("--workers", type=int, default=2, help="processes issuing invoices")
    return parser.parse_args()


def build(n: int, workers: int) -> None:
    from django.db.models import F
    from django.db.models.functions import Mod

    from mwolo.billing.models import Invoice
    from mwolo.billing.runner import billing_run_execute
    from mwolo.billing.services import billing_run_start
    from mwolo.billing.tests.factories import tariff
    from mwolo.crm.tests.bulk import bulk_clients, bulk_sites
    from mwolo.metering.models import MeterReading
    from mwolo.metering.tests.bulk import bulk_meters

    tariff()
    installed = dt.datetime(2026, 9, 1, 8, tzinfo=KINSHASA)
    for agency in bulk_clients(count=n, agency_count=4):
        sites = bulk_sites(agency=agency, count=n)
        meters = bulk_meters(
            registers={f"DUN-{agency.code}-{i:06d}": Decimal(1000) for i in range(len(sites))},
            agency=agency,
            read_at=installed,
            sites=sites,
        )
        readings = []
        for index, meter in enumerate(meters):
            daily = Decimal(2 + index % 30)
            for day in (27, 32, 58, 63):  # around the start and the end of October
                readings.append(
                    MeterReading(
                        meter=meter,
                        taken_at=installed + dt.timedelta(days=day),
                        energy_kwh=meter.last_energy_kwh + daily * day,
                        source="telemetry",
                    )
                )
        MeterReading.objects.bulk_create(readings, batch_size=5000)
    run = billing_run_start(period=dt.date(2026, 10, 1), agency_id=None, actor=None, issue=True)
    totals = billing_run_execute(run=run, workers=workers)
    if totals.issued != n:
        raise RuntimeError(f"{totals.issued} invoices issued for {n} sites")
    for offset in range(SPREAD):
        Invoice.objects.alias(slot=Mod(F("pk"), SPREAD)).filter(slot=offset).update(
            due_date=AS_OF - dt.timedelta(days=3 + offset)
        )


def nine(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9), tzinfo=KINSHASA)


def baseline_pass(as_of: dt.date) -> None:
    """The per-invoice loop: the same decisions, one invoice at a time."""
    from django.db import transaction

    from mwolo.billing.models import Invoice
    from mwolo.billing.selectors import invoices_open_amounts
    from mwolo.core import clock
    from mwolo.dunning import services
    from mwolo.dunning.models import (
        CHANNELS_OF_STEP,
        Action,
        Disconnection,
        DisconnectionMeter,
        Reminder,
    )
    from mwolo.dunning.selectors import OverdueInvoice
    from mwolo.metering.models import Meter, MeterCommand, PaymentMode, Relay
    from mwolo.metering.services import meter_relay_request
    from mwolo.notifications.services import notification_send

    context = services._context(as_of=as_of, agency_ids=None, now=nine(as_of))
    invoices = Invoice.objects.filter(status__in=Invoice.OPEN, due_date__lt=as_of).select_related(
        "site", "client__agency__province"
    )
    for invoice in invoices.order_by("pk").iterator(chunk_size=2000):
        left = invoices_open_amounts(invoice_ids=[invoice.pk])[invoice.pk]
        taken = list(
            Reminder.objects.filter(invoice=invoice)
            .select_related("step")
            .order_by("-sent_on", "-pk")
        )
        overdue = OverdueInvoice(
            pk=invoice.pk,
            number=invoice.number,
            client_id=invoice.client_id,
            site_id=invoice.site_id,
            site_reference=invoice.site.reference,
            category=invoice.site.category,
            agency_id=invoice.agency_id,
            currency=invoice.currency,
            due_date=invoice.due_date,
            open_amount=left,
            last_step_id=taken[0].step_id if taken else None,
            last_sent_on=taken[0].sent_on if taken else None,
            noticed=any(reminder.step.action == Action.FINAL_NOTICE for reminder in taken),
            cut_announced_on=max(
                (r.cut_announced_on for r in taken if r.cut_announced_on), default=None
            ),
        )
        policy = context.policy(invoice.agency_id, invoice.site.category)
        if policy is None or left <= policy.minimum(invoice.currency):
            continue
        step = services._next_step(context, policy, overdue)
        if step is None:
            continue
        now = clock.now()
        with transaction.atomic():
            disconnection = None
            cut_on = None
            if step.action == Action.DISCONNECT:
                until = context.cut_until(policy, invoice.agency_id)
                if until is None or as_of < (overdue.cut_announced_on or as_of):
                    continue
                meters = list(
                    Meter.objects.filter(site=invoice.site, payment_mode=PaymentMode.POSTPAID)
                )
                disconnection = Disconnection.objects.create(
                    site=invoice.site,
                    client=invoice.client,
                    agency_id=invoice.agency_id,
                    invoice=invoice,
                    opened_on=as_of,
                    opened_at=now,
                    amount_due=left,
                    currency=invoice.currency,
                )
                for meter in meters:
                    command = meter_relay_request(
                        meter_id=meter.pk,
                        wanted=Relay.OFF,
                        why=Meter.RelayReason.DUNNING,
                        source=MeterCommand.Source.DUNNING,
                        reason="Factures impayées",
                        deadline=until,
                    )
                    DisconnectionMeter.objects.create(
                        disconnection=disconnection,
                        meter=meter,
                        cut_command=command,
                        cut_commands=int(command is not None),
                    )
                event_context: dict[str, object] = {
                    "site_reference": invoice.site.reference,
                    "amount_due": left,
                    "currency": invoice.currency,
                }
            elif step.action == Action.REMIND:
                event_context = {
                    "invoice_number": invoice.number,
                    "amount_due": left,
                    "currency": invoice.currency,
                    "due_date": invoice.due_date,
                    "days_overdue": overdue.days_overdue(as_of),
                    "step": services._remind_ordinal(context, step),
                }
            else:
                cut_on = context.disconnection_date(policy, overdue)
                event_context = {
                    "invoice_number": invoice.number,
                    "amount_due": left,
                    "currency": invoice.currency,
                    "disconnection_date": cut_on,
                }
            Reminder.objects.create(
                invoice=invoice,
                step=step,
                sent_on=as_of,
                created_at=now,
                days_overdue=overdue.days_overdue(as_of),
                amount_due=left,
                currency=invoice.currency,
                cut_announced_on=cut_on,
                disconnection=disconnection,
            )
            notification_send(
                client=invoice.client,
                event=step.event,
                context=event_context,
                related=invoice,
                idempotency_key=f"dunning:{invoice.pk}:{step.pk}",
                channels=CHANNELS_OF_STEP[step.channel],
            )


def outcome(as_of: dt.date, since: dt.datetime) -> tuple[set, dict, int, int]:
    from django.db.models import Count

    from mwolo.dunning.models import Disconnection, Reminder
    from mwolo.metering.models import MeterCommand
    from mwolo.notifications.models import Notification

    return (
        set(Reminder.objects.filter(sent_on=as_of).values_list("invoice_id", "step_id")),
        dict(
            Notification.objects.filter(created_at__gte=since)
            .values("event")
            .annotate(count=Count("pk"))
            .values_list("event", "count")
        ),
        Disconnection.objects.filter(opened_on=as_of).count(),
        MeterCommand.objects.filter(issued_at__gte=since).count(),
    )


def undo(as_of: dt.date, since: dt.datetime) -> None:
    """Remove what the measured day wrote, so that the other way starts from the same."""
    from django.db import transaction

    from mwolo.dunning.models import Disconnection, DisconnectionMeter, Reminder
    from mwolo.metering.models import Meter, MeterCommand, Relay
    from mwolo.notifications.models import Notification

    with transaction.atomic():
        cut = DisconnectionMeter.objects.filter(disconnection__opened_on=as_of)
        meter_ids = list(cut.values_list("meter_id", flat=True))
        cut.delete()
        Reminder.objects.filter(sent_on=as_of).delete()
        Disconnection.objects.filter(opened_on=as_of).delete()
        MeterCommand.objects.filter(issued_at__gte=since).delete()
        Meter.objects.filter(pk__in=meter_ids).update(
            relay_wanted=Relay.ON, relay_wanted_reason=Meter.RelayReason.NORMAL, relay_deadline=None
        )
        Notification.objects.filter(created_at__gte=since).delete()


BASELINE = (
    "per-invoice loop (a query per invoice, an insert per reminder, notification_send per message)"
)


def main() -> None:
    args = arguments()
    with bench_database() as database, private_task_queue():
        from mwolo.core import clock
        from mwolo.dunning.services import dunning_run

        # Messages are queued for the workers as in production (none runs here), into a
        # task queue of the bench's own, deleted at the end: never the developer's.
        workers = args.workers if database == "postgresql" else 1
        build(args.n, workers)
        for day in HISTORY:
            dunning_run(as_of=day, now=nine(day))

        since = clock.now()
        started = time.perf_counter()
        report = dunning_run(as_of=AS_OF, now=nine(AS_OF))
        ours = time.perf_counter() - started
        ours_outcome = outcome(AS_OF, since)
        undo(AS_OF, since)

        since = clock.now()
        started = time.perf_counter()
        baseline_pass(AS_OF)
        theirs = time.perf_counter() - started
        theirs_outcome = outcome(AS_OF, since)

        if ours_outcome != theirs_outcome:
            raise RuntimeError(
                "the two ways did not do the same: "
                f"{len(ours_outcome[0])} vs {len(theirs_outcome[0])} reminders, "
                f"{ours_outcome[1:]} vs {theirs_outcome[1:]}"
            )
        if report.invoices != args.n:
            raise RuntimeError(f"{report.invoices} overdue invoices looked at, not {args.n}")
        emit_comparison(
            "dunning_pass_invoices_per_s",
            args.n / ours,
            "invoices/s",
            args.n,
            database,
            baseline=BASELINE,
            baseline_value=args.n / theirs,
        )
        # A time: lower is better, so the ratio is the baseline's time over ours (the same
        # as the throughputs' ratio above): higher is better, as on every line.
        emit(
            "dunning_pass_wall_time",
            ours,
            "s",
            args.n,
            database,
            baseline=BASELINE,
            baseline_value=round(theirs, 3),
            ratio=round(theirs / ours, 3),
            reminders=report.reminders,
            final_notices=report.final_notices,
            disconnections=report.disconnections,
            messages=report.messages,
        )


if __name__ == "__main__":
    main()
