from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from mwolo.notifications.services import notifications_deliver_due


class Command(BaseCommand):
    help = (
        "Deliver the messages due: queued ones, and failed ones whose next attempt has come "
        "(idempotent: a second run at the same moment sends nothing)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of", help="the moment to deliver as of (ISO, with offset); default now"
        )
        parser.add_argument(
            "--limit", type=int, default=1000, help="at most this many messages (default 1000)"
        )

    def handle(self, *args: Any, as_of: str | None, limit: int, **options: Any) -> None:
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
        if limit < 1:
            raise CommandError("--limit must be at least 1")
        report = notifications_deliver_due(now=now, limit=limit)
        self.stdout.write(
            f"{report.sent} sent, {report.failed} failed (will retry), {report.given_up} given up."
        )
