import datetime as dt

from django.contrib.sessions.models import Session

from . import clock


def sessions_purge_expired(*, now: dt.datetime | None = None) -> int:
    """Delete the login sessions expired before ``now`` (default: now); returns how many.

    Sessions live in the database (Django's default engine); they pile up there. Idempotent:
    a second run at the same moment deletes nothing.
    """
    deleted, _by_model = Session.objects.filter(expire_date__lt=now or clock.now()).delete()
    return deleted
