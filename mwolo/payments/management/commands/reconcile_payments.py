from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mwolo.core.management.as_of import add_as_of_argument, as_of_moment
from mwolo.payments.services import payment_intents_reconcile


class Command(BaseCommand):
    help = (
        "Ask the operators about every mobile-money request still pending (a callback "
        "lost or late): record what was paid, once; expire what timed out. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_as_of_argument(parser, "to reconcile as of")

    def handle(self, *args: Any, as_of: str | None, **options: Any) -> None:
        now = as_of_moment(as_of)
        report = payment_intents_reconcile(as_of=now)
        self.stdout.write(
            f"{report.checked} requests checked: {report.settled} paid, {report.failed} "
            f"failed; {report.expired} expired; {report.pushed} pushed again."
        )
