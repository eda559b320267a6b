from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session

from . import clock


def sessions_purge_expired() -> int:
    """Delete expired login sessions (they pile up in the database); returns how many."""
    engine = import_module(settings.SESSION_ENGINE)
    expired = Session.objects.filter(expire_date__lt=clock.now()).count()
    engine.SessionStore.clear_expired()
    return expired
