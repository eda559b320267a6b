from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mwolo.core.management.as_of import add_as_of_argument, as_of_moment
from mwolo.notifications.services import notifications_deliver_due


class Command(BaseCommand):
    help = (
        "Deliver the messages due: queued ones, and failed ones whose next attempt has come "
        "(idempotent: a second run at the same moment sends nothing)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_as_of_argument(parser, "to deliver as of")
        parser.add_argument(
            "--limit", type=int, default=1000, help="at most this many messages (default 1000)"
        )

    def handle(self, *args: Any, as_of: str | None, limit: int, **options: Any) -> None:
        now = as_of_moment(as_of)
        if limit < 1:
            raise CommandError("--limit must be at least 1")
        report = notifications_deliver_due(now=now, limit=limit)
        self.stdout.write(
            f"{report.sent} sent, {report.failed} failed (will retry), {report.given_up} given up."
        )
