"""The ``--as-of`` option every scheduled job's command takes: a day or a moment.

So that an operator can re-run a missed day with the same words for every job:

- a **day** (``2026-12-20``) means the **end of that day** in Kinshasa (23:59:59.999999,
  UTC+1, the westernmost zone: the day is over in both of the country's zones). The
  catch-up jobs (payments and meters reconciled, messages sent, invoices delivered,
  sessions purged) then do everything that was due during that day. **Today** means
  *now*, never later: a mobile-money request still pending, or a message planned for this
  afternoon, is not treated as late before its time. A day in the future is its end, as
  asked (tests move time forward so);
- a **moment** with its offset (``2026-12-20T09:00:00+01:00``) is that moment;
- nothing: now.

Jobs of a day (the dunning pass, the nightly backup) read it with ``as_of_day``: a day is
that day (the job knows its own hour: the dunning pass runs "at" 09:00), a moment is its
day in Kinshasa, at that moment.

Anything else is refused before any work, with the same message for every command.
"""

import datetime as dt
import re
from zoneinfo import ZoneInfo

from django.core.management.base import CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from mwolo.core import clock

EXAMPLE_DAY = "2026-12-20"
EXAMPLE = "2026-12-20T09:00:00+01:00"
ZONE = ZoneInfo("Africa/Kinshasa")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def add_as_of_argument(parser: CommandParser, what: str) -> None:
    parser.add_argument(
        "--as-of",
        help=(
            f"the moment {what}: a day such as {EXAMPLE_DAY} (its end, Kinshasa time; today: "
            f"now) or a moment with its offset such as {EXAMPLE}; default now"
        ),
    )


def _refused(value: str) -> CommandError:
    return CommandError(
        f"--as-of must be a day such as {EXAMPLE_DAY} or a moment with its offset such as "
        f"{EXAMPLE}, not {value!r}"
    )


def _parse(value: str) -> dt.date | dt.datetime:
    if _DAY.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:  # well formed but impossible, e.g. 30 February
            raise _refused(value) from None
    try:
        moment = parse_datetime(value)
    except ValueError:  # well formed but impossible, e.g. a 13th month
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _refused(value)
    return moment


def day_end(day: dt.date) -> dt.datetime:
    """The last moment of ``day`` in Kinshasa."""
    return dt.datetime.combine(day, dt.time.max, tzinfo=ZONE)


def as_of_moment(value: str | None) -> dt.datetime | None:
    """The moment ``--as-of`` names (see the module docstring), or None when it is not
    given or is today (the job runs now)."""
    if not value:
        return None
    parsed = _parse(value)
    if isinstance(parsed, dt.datetime):
        return parsed
    if parsed == clock.today(ZONE):
        return None
    return day_end(parsed)


def as_of_day(value: str | None) -> tuple[dt.date, dt.datetime | None]:
    """The day ``--as-of`` names (today in Kinshasa by default), and the moment when one
    was given (None: the job chooses its moment in the day)."""
    if not value:
        return clock.today(ZONE), None
    parsed = _parse(value)
    if isinstance(parsed, dt.datetime):
        return parsed.astimezone(ZONE).date(), parsed
    return parsed, None
