import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mwolo.agencies.models import Agency
from mwolo.billing.runner import billing_run_execute
from mwolo.billing.services import CHUNK_SIZE, billing_run_start


def _period(value: str) -> dt.date:
    try:
        return dt.datetime.strptime(value, "%Y-%m").date()  # noqa: DTZ007 - a month, no time
    except ValueError as error:
        raise CommandError(f"--period must be a month such as 2026-10, not {value!r}") from error


class Command(BaseCommand):
    help = (
        "Bill a month: draft one invoice per postpaid site (for all agencies or one), "
        "then issue the ready drafts with --issue. Safe to run again: it finishes what a "
        "crash left and never bills a site twice for a month."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", required=True, help="the month billed, e.g. 2026-10")
        parser.add_argument("--agency", help="an agency code (default: every agency)")
        parser.add_argument(
            "--issue", action="store_true", help="issue the ready drafts as they are drafted"
        )
        parser.add_argument("--workers", type=int, default=1, help="processes drafting")
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="sites per chunk")

    def handle(self, *args: Any, **options: Any) -> None:
        period = _period(options["period"])
        agency_id = None
        if options["agency"]:
            agency = Agency.objects.filter(code=options["agency"]).first()
            if agency is None:
                raise CommandError(f"No agency has the code {options['agency']!r}.")
            agency_id = agency.pk
        if options["workers"] < 1 or options["chunk_size"] < 1:
            raise CommandError("--workers and --chunk-size must be at least 1.")
        try:
            run = billing_run_start(
                period=period,
                agency_id=agency_id,
                actor=None,
                issue=options["issue"],
                chunk_size=options["chunk_size"],
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        totals = billing_run_execute(run=run, workers=options["workers"])
        self.stdout.write(
            f"{run}: {totals.drafted} drafted ({totals.flagged} to review), "
            f"{totals.kept} already issued or reviewed"
            + (
                f", {totals.issued} issued, {totals.held} held for review."
                if options["issue"]
                else "."
            )
        )
