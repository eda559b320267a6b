from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from mwolo.billing.delivery import invoices_backlog_deliver


class Command(BaseCommand):
    help = (
        "Deliver the open invoices issued in the week before --as-of that have no PDF or "
        "no 'invoice issued' notice yet (a crash, a lost task). Idempotent: a second run "
        "sends nothing twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of", help="the moment to look back from (ISO, with offset); default now"
        )

    def handle(self, *args: Any, as_of: str | None, **options: Any) -> None:
        now = None
        if as_of:
            try:
                now = parse_datetime(as_of)
            except ValueError:
                now = None
            if now is None or now.tzinfo is None:
                raise CommandError(
                    "--as-of must be a date and time with its offset, "
                    "e.g. 2026-11-21T09:00:00+01:00"
                )
        report = invoices_backlog_deliver(as_of=now)
        self.stdout.write(
            f"{report.found} invoices to deliver: {report.delivered} delivered, "
            f"{report.failed} failed (see the log)."
        )
        if report.failed:
            raise CommandError(f"{report.failed} invoices could not be delivered.")
