from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from mwolo.metering.services import meters_reconcile


class Command(BaseCommand):
    help = (
        "Issue commands wherever a meter's reported relay differs from the wanted one, "
        "raise alarms on repeated disagreement, mark silent meters offline (idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of", help="the moment to reconcile as of (ISO, with offset); default now"
        )

    def handle(self, *args: Any, as_of: str | None, **options: Any) -> None:
        now = None
        if as_of:
            now = parse_datetime(as_of)
            if now is None or now.tzinfo is None:
                raise CommandError(
                    "--as-of must be a date and time with its offset, "
                    "e.g. 2026-11-21T09:00:00+01:00"
                )
        report = meters_reconcile(now=now)
        self.stdout.write(
            f"{report.commands} commands issued, {report.alarms} alarms, "
            f"{report.offline} meters marked offline."
        )
