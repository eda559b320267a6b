from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mwolo.billing.delivery import invoices_backlog_deliver
from mwolo.core.management.as_of import add_as_of_argument, as_of_moment


class Command(BaseCommand):
    help = (
        "Deliver the open invoices issued in the week before --as-of that have no PDF or "
        "no 'invoice issued' notice yet (a crash, a lost task). Idempotent: a second run "
        "sends nothing twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_as_of_argument(parser, "to look back from")

    def handle(self, *args: Any, as_of: str | None, **options: Any) -> None:
        now = as_of_moment(as_of)
        report = invoices_backlog_deliver(as_of=now)
        self.stdout.write(
            f"{report.found} invoices to deliver: {report.delivered} delivered, "
            f"{report.failed} failed (see the log)."
        )
        if report.failed:
            raise CommandError(f"{report.failed} invoices could not be delivered.")
