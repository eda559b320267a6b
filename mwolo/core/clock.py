"""The one place the platform asks what time it is.

Jobs take an ``--as-of`` date and pass it down; everything else calls ``now()`` so a test
moves time by passing dates, never by patching the clock.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()


def today(tz: str | ZoneInfo | None = None) -> dt.date:
    """The calendar date now in ``tz`` (an agency's zone), or in the active zone."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return timezone.localdate(now(), timezone=zone)
