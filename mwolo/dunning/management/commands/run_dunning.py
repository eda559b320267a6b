from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mwolo.agencies.models import Agency
from mwolo.core.management.as_of import EXAMPLE, EXAMPLE_DAY, as_of_day
from mwolo.dunning.services import dunning_run


class Command(BaseCommand):
    help = (
        "The day's dunning: settle promises to pay, reconnect clients who owe nothing "
        "overdue, then send each overdue invoice the step it is due for (reminders, final "
        "notice, disconnection). Idempotent: running a day again sends nothing twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            help=(
                f"the day of the pass, e.g. {EXAMPLE_DAY}: as beat would have run it, at 09:00 "
                f"(today: now); or a moment with its offset, e.g. {EXAMPLE}, to run it then "
                "(default: today in Kinshasa)"
            ),
        )
        parser.add_argument("--agency", help="an agency code (default: every agency)")

    def handle(self, *args: Any, **options: Any) -> None:
        as_of, moment = as_of_day(options["as_of"])
        agency_id = None
        if options["agency"]:
            agency_id = (
                Agency.objects.filter(code=options["agency"]).values_list("pk", flat=True).first()
            )
            if agency_id is None:
                raise CommandError(f"No agency has the code {options['agency']!r}.")
        report = dunning_run(as_of=as_of, agency_id=agency_id, now=moment)
        self.stdout.write(
            f"Dunning of {as_of.isoformat()}: {report.invoices} overdue invoices; "
            f"{report.reminders} reminders, {report.final_notices} final notices, "
            f"{report.disconnections} sites disconnected ({report.joined} already cut), "
            f"{report.reconnections} reconnected; {report.messages} messages queued."
        )
        self.stdout.write(
            f"Waiting: {report.waiting_quiet_day} disconnections for a working day or hour, "
            f"{report.waiting_no_meter} for a meter to switch, {report.exempt} exempt, "
            f"{report.paused} under a promise or hold, {report.below_minimum} below the minimum. "
            f"Promises: {report.promises_kept} kept, {report.promises_broken} broken. "
            f"Meters of sites cut sent their disconnection again: {report.cuts_resent}."
        )
