from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from mwolo.payments.services import payment_intents_reconcile


class Command(BaseCommand):
    help = (
        "Ask the operators about every mobile-money request still pending (a callback "
        "lost or late): record what was paid, once; expire what timed out. Idempotent."
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
                    "e.g. 2026-12-20T09:00:00+01:00"
                )
        report = payment_intents_reconcile(as_of=now)
        self.stdout.write(
            f"{report.checked} requests checked: {report.settled} paid, {report.failed} "
            f"failed; {report.expired} expired; {report.pushed} pushed again."
        )
