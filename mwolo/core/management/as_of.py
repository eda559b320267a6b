"""The ``--as-of`` option every scheduled job's command takes: a moment, with its offset."""

import datetime as dt

from django.core.management.base import CommandError, CommandParser
from django.utils.dateparse import parse_datetime

EXAMPLE = "2026-12-20T09:00:00+01:00"


def add_as_of_argument(parser: CommandParser, what: str) -> None:
    parser.add_argument("--as-of", help=f"the moment {what} (ISO, with offset); default now")


def as_of_moment(value: str | None) -> dt.datetime | None:
    """The moment ``--as-of`` names, or None when it is not given (the job runs now)."""
    if not value:
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:  # well formed but impossible, e.g. a 13th month
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CommandError(f"--as-of must be a date and time with its offset, e.g. {EXAMPLE}")
    return moment
