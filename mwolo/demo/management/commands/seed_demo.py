import argparse
import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mwolo.core.exceptions import ApplicationError
from mwolo.demo import data
from mwolo.demo.services import demo_seed, summary_text


def _client_count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"give a whole number, 0 or more (not {value!r})")
    return count


class Command(BaseCommand):
    help = (
        "Load the demo data: agencies, staff for every role, clients with their sites, "
        "connection requests, a client portal account. Idempotent and deterministic: run it "
        f"as often as you like. Every new demo account gets the password in {data.PASSWORD_ENV} "
        f"(default {data.DEFAULT_PASSWORD}); existing accounts keep theirs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--clients",
            type=_client_count,
            default=data.DEFAULT_CLIENT_COUNT,
            help=f"number of demo clients (default {data.DEFAULT_CLIENT_COUNT})",
        )
        parser.add_argument("--quiet", action="store_true", help="print nothing on success")

    def handle(self, *args: Any, clients: int, quiet: bool, **options: Any) -> None:
        password = os.environ.get(data.PASSWORD_ENV) or data.DEFAULT_PASSWORD
        if password == data.DEFAULT_PASSWORD and not settings.DEBUG:
            # A published password on a real deployment would open the back office to anyone.
            raise CommandError(
                f"DEBUG is off: set {data.PASSWORD_ENV} to a password of your own "
                "before loading demo accounts."
            )
        try:
            summary = demo_seed(client_count=clients, password=password)
        except ApplicationError as error:
            raise CommandError(error.message) from error
        except ValidationError as error:
            raise CommandError(f"The demo data did not validate: {error}") from error
        if quiet:
            return
        note = (
            f"the value of {data.PASSWORD_ENV}"
            if password != data.DEFAULT_PASSWORD
            else f"{data.DEFAULT_PASSWORD}, set {data.PASSWORD_ENV} to change it"
        )
        base_url = f"http://127.0.0.1:{os.environ.get('PORT') or '8000'}"
        self.stdout.write(summary_text(summary=summary, base_url=base_url, password_note=note))
