"""Billing a month for ``n`` postpaid sites, and rendering their invoices as PDFs.

Builds ``n`` clients, one site and one telemetry meter each, with readings every few days
from September to the end of November, and the residential block tariff. Then:

- ``billing_run``: the real ``manage.py billing_run --issue`` path (``billing_run_start``
  and ``billing_run_execute``: consumption from the metering selector, pricing, then each
  chunk written issued, with gap-free numbers and account entries), October with one
  worker process, November with two; and September in two steps (drafts, then the issue
  of each chunk's drafts, as staff who review first do). invoices/s for draft + issue. The
  baseline inserts the same invoice and line rows raw, in one transaction (COPY on
  PostgreSQL, executemany on SQLite), in the same run: the ratio says how much of the raw
  write rate the whole run keeps.
- ``pdf_invoices``: the invoice PDFs of a sample of those invoices through the real
  renderer, side by side with the straightforward platypus approach (``bench._pdf``).

    python -m bench.billing [--n 100000] [--pdf 500]
"""

import argparse
import datetime as dt
import json
import random
import time
from decimal import Decimal

from bench._broker import private_task_queue
from bench.harness import bench_database, emit, emit_comparison

READ_EVERY_DAYS = 5


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="postpaid sites")
    parser.add_argument("--pdf", type=int, default=200, help="invoices rendered as PDFs")
    return parser.parse_args()


def build(n: int) -> None:
    from mwolo.billing.tests.factories import KINSHASA, tariff
    from mwolo.crm.tests.bulk import bulk_clients, bulk_sites
    from mwolo.metering.models import MeterReading
    from mwolo.metering.tests.bulk import bulk_meters

    tariff()
    agencies = bulk_clients(count=n, agency_count=4)
    installed = dt.datetime(2026, 9, 1, 8, tzinfo=KINSHASA)
    rng = random.Random(n)  # noqa: S311 - made-up consumption, not a secret
    for agency in agencies:
        sites = bulk_sites(agency=agency, count=n)
        meters = bulk_meters(
            registers={
                f"BEN-{agency.code}-{i:06d}": Decimal(1000 + i % 5000) for i in range(len(sites))
            },
            agency=agency,
            read_at=installed,
            sites=sites,
        )
        readings = []
        for meter in meters:
            register = meter.last_energy_kwh
            daily = Decimal(rng.randint(2, 40))
            readings.append(
                MeterReading(
                    meter=meter, taken_at=installed, energy_kwh=register, source="technician"
                )
            )
            for day in range(READ_EVERY_DAYS, 95, READ_EVERY_DAYS):
                register += daily * READ_EVERY_DAYS
                readings.append(
                    MeterReading(
                        meter=meter,
                        taken_at=installed + dt.timedelta(days=day, hours=rng.randint(0, 8)),
                        energy_kwh=register,
                        source="telemetry",
                    )
                )
        MeterReading.objects.bulk_create(readings, batch_size=5000)


def _insert(cursor, vendor: str, table: str, columns: list[str], rows: list[list]) -> None:
    if vendor == "postgresql":
        # Table and column names come from the models, never from input.
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        cursor.executemany(sql, rows)


def raw_insert_rate(period: dt.date) -> float:
    """Invoices/s of writing the month's invoice and line rows again, raw, in one
    transaction (as another month with other numbers and ids, so the constraints hold)."""
    from django.db import connection, transaction
    from django.db.models import Max

    from mwolo.billing.models import Invoice, InvoiceLine

    def copy_of(model, queryset, change) -> tuple[list[str], list[list]]:
        fields = model._meta.concrete_fields
        json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
        rows = [
            change(dict(zip([f.attname for f in fields], values, strict=True)))
            for values in queryset.values_list(*[f.attname for f in fields])
        ]
        return [f.column for f in fields], [
            [
                json.dumps(row[f.attname]) if f.attname in json_fields else row[f.attname]
                for f in fields
            ]
            for row in rows
        ]

    shift = (Invoice.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
    line_shift = (InvoiceLine.objects.aggregate(top=Max("pk"))["top"] or 0) + 1

    def invoice_copy(row: dict) -> dict:
        return {
            **row,
            "id": row["id"] + shift,
            "period": dt.date(2027, 1, 1),
            "number": "B" + row["number"],
        }

    def line_copy(row: dict) -> dict:
        return {**row, "id": row["id"] + line_shift, "invoice_id": row["invoice_id"] + shift}

    invoice_columns, invoices = copy_of(
        Invoice, Invoice.objects.filter(period=period), invoice_copy
    )
    line_columns, lines = copy_of(
        InvoiceLine, InvoiceLine.objects.filter(invoice__period=period), line_copy
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        _insert(cursor, connection.vendor, Invoice._meta.db_table, invoice_columns, invoices)
        _insert(cursor, connection.vendor, InvoiceLine._meta.db_table, line_columns, lines)
    return len(invoices) / (time.perf_counter() - started)


def billing_rate(period: dt.date, n: int, *, workers: int, two_step: bool) -> float:
    """Invoices/s of billing ``period`` for every site, drafts and issue.

    One step: the run issues each chunk as it drafts it (``manage.py billing_run --issue``).
    Two steps: the run drafts, then each chunk's drafts are issued (what staff who review
    first get: the admin's issue action runs ``billing_run_issue_chunk`` per chunk).
    """
    from mwolo.billing.models import Invoice
    from mwolo.billing.runner import billing_run_execute
    from mwolo.billing.services import billing_run_issue_chunk, billing_run_start

    started = time.perf_counter()
    run = billing_run_start(period=period, agency_id=None, actor=None, issue=not two_step)
    totals = billing_run_execute(run=run, workers=workers)
    if two_step:
        for index in range(len(run.chunks)):
            totals.issued += billing_run_issue_chunk(run_id=run.pk, index=index, actor=None).issued
    seconds = time.perf_counter() - started
    issued = Invoice.objects.filter(period=period, status=Invoice.Status.ISSUED).count()
    if issued != n or totals.issued != n:
        raise RuntimeError(f"{issued} invoices issued for {n} sites")
    return n / seconds


def main() -> None:
    args = arguments()
    # Issuing queues the PDFs and notices for the workers, as in production: into a task
    # queue of the bench's own (none runs), never the developer's broker.
    with bench_database() as database, private_task_queue():
        from mwolo.billing.models import Invoice

        build(args.n)
        rates = {
            # September: the meters were installed on its first morning (a shorter month).
            "billing_run_two_steps_invoices_per_s_1_worker": billing_rate(
                dt.date(2026, 9, 1), args.n, workers=1, two_step=True
            ),
            "billing_run_invoices_per_s_1_worker": billing_rate(
                dt.date(2026, 10, 1), args.n, workers=1, two_step=False
            ),
        }
        if database != "sqlite":  # one writer at a time: a second process only waits
            rates["billing_run_invoices_per_s_2_workers"] = billing_rate(
                dt.date(2026, 11, 1), args.n, workers=2, two_step=False
            )
        raw = raw_insert_rate(dt.date(2026, 10, 1))
        for metric, rate in rates.items():
            emit_comparison(
                metric,
                rate,
                "invoices/s",
                args.n,
                database,
                baseline="raw insert of the same invoice and line rows (COPY / executemany)",
                baseline_value=raw,
            )
        if args.pdf:
            from bench._pdf import pdf_metrics
            from mwolo.billing.delivery import invoice_document

            sample = list(
                Invoice.objects.filter(period=dt.date(2026, 10, 1)).order_by("pk")[: args.pdf]
            )
            documents = [invoice_document(invoice) for invoice in sample]
            for line in pdf_metrics(documents):
                emit(**{**line, "database": database})


if __name__ == "__main__":
    main()
