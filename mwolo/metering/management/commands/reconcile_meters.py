from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mwolo.core.management.as_of import add_as_of_argument, as_of_moment
from mwolo.metering.services import meters_reconcile


class Command(BaseCommand):
    help = (
        "Issue commands wherever a meter's reported relay differs from the wanted one, "
        "raise alarms on repeated disagreement, mark silent meters offline (idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_as_of_argument(parser, "to reconcile as of")

    def handle(self, *args: Any, as_of: str | None, **options: Any) -> None:
        now = as_of_moment(as_of)
        report = meters_reconcile(now=now)
        self.stdout.write(
            f"{report.commands} commands issued, {report.alarms} alarms, "
            f"{report.offline} meters marked offline."
        )
