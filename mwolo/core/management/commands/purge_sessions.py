from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mwolo.core.management.as_of import add_as_of_argument, as_of_moment
from mwolo.core.services import sessions_purge_expired


class Command(BaseCommand):
    help = (
        "Delete the login sessions expired before --as-of (beat runs it every night at "
        "02:30, Kinshasa). Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_as_of_argument(parser, "to purge as of")

    def handle(self, *args: Any, as_of: str | None, **options: Any) -> None:
        deleted = sessions_purge_expired(now=as_of_moment(as_of))
        self.stdout.write(f"{deleted} expired sessions deleted.")
