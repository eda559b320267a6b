import datetime as dt
import io

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command

from mwolo.core import clock
from mwolo.core.tasks import sessions_purge_expired_task

pytestmark = pytest.mark.django_db


def test_the_nightly_job_deletes_expired_sessions_only():
    for expiry in (clock.now() - dt.timedelta(days=1), clock.now() + dt.timedelta(days=1)):
        store = SessionStore()
        store.set_expiry(expiry)
        store.save()

    assert sessions_purge_expired_task.delay().get() == 1
    assert Session.objects.count() == 1
    assert Session.objects.get().expire_date > clock.now()


def test_the_command_purges_what_expired_before_the_moment_it_is_given():
    for days in (-2, 1):
        store = SessionStore()
        store.set_expiry(clock.now() + dt.timedelta(days=days))
        store.save()
    out = io.StringIO()

    call_command("purge_sessions", stdout=out)
    call_command("purge_sessions", stdout=out)  # nothing more

    assert out.getvalue() == "1 expired sessions deleted.\n0 expired sessions deleted.\n"
    assert Session.objects.get().expire_date > clock.now()
