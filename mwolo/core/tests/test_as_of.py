"""``--as-of`` on every scheduled job's command: a day or a moment, the same words for all;
anything else is refused before any work."""

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command

from mwolo.core import clock
from mwolo.core.management.as_of import as_of_day, as_of_moment

KINSHASA = ZoneInfo("Africa/Kinshasa")
MOMENT_COMMANDS = [
    "reconcile_payments",
    "reconcile_meters",
    "send_notifications",
    "deliver_invoices",
    "purge_sessions",
]
COMMANDS = [*MOMENT_COMMANDS, "run_dunning"]


@pytest.mark.django_db
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "value",
    [
        "demain",
        "2026-13-45T09:00:00+01:00",
        "2026-12-20T09:00:00",
        "2026-02-30",
        "20/12/2026",
    ],
)
def test_what_is_neither_a_day_nor_a_moment_is_refused_clearly(
    command, value, django_assert_num_queries
):
    out = io.StringIO()
    with django_assert_num_queries(0), pytest.raises(CommandError) as refused:
        call_command(command, "--as-of", value, stdout=out)

    assert str(refused.value) == (
        "--as-of must be a day such as 2026-12-20 or a moment with its offset such as "
        f"2026-12-20T09:00:00+01:00, not {value!r}"
    )
    assert out.getvalue() == ""


@pytest.mark.django_db
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("value", ["2026-12-20", "2026-12-20T09:00:00+01:00"])
def test_a_day_or_a_moment_runs_the_job(command, value):
    out = io.StringIO()
    call_command(command, "--as-of", value, stdout=out)

    assert out.getvalue().strip()


def test_a_day_is_its_last_moment_in_kinshasa_and_today_is_now():
    assert as_of_moment("2026-12-20") == dt.datetime(
        2026, 12, 20, 23, 59, 59, 999999, tzinfo=KINSHASA
    )
    assert as_of_moment(clock.today(KINSHASA).isoformat()) is None  # now: never later
    assert as_of_moment("2026-12-20T09:00:00+02:00") == dt.datetime(
        2026, 12, 20, 7, 0, tzinfo=dt.UTC
    )
    assert as_of_moment(None) is None


def test_a_job_of_a_day_reads_the_day_and_the_moment_if_one_is_given():
    assert as_of_day("2026-12-20") == (dt.date(2026, 12, 20), None)
    # 00:30 in Lubumbashi is still the 20th in Kinshasa.
    moment = dt.datetime(2026, 12, 21, 0, 30, tzinfo=ZoneInfo("Africa/Lubumbashi"))
    assert as_of_day(moment.isoformat()) == (dt.date(2026, 12, 20), moment)
    assert as_of_day(None) == (clock.today(KINSHASA), None)


def session_expiring(at: dt.datetime) -> str:
    store = SessionStore()
    store.set_expiry(at)
    store.save()
    return store.session_key


@pytest.mark.django_db
def test_a_missed_night_run_again_does_what_was_due_by_the_end_of_that_day():
    yesterday = clock.today(KINSHASA) - dt.timedelta(days=1)
    late_yesterday = session_expiring(dt.datetime.combine(yesterday, dt.time(22), KINSHASA))
    early_today = session_expiring(
        dt.datetime.combine(yesterday + dt.timedelta(days=1), dt.time(0, 30), KINSHASA)
    )
    in_a_minute = session_expiring(clock.now() + dt.timedelta(minutes=1))
    out = io.StringIO()

    call_command("purge_sessions", "--as-of", yesterday.isoformat(), stdout=out)

    assert out.getvalue() == "1 expired sessions deleted.\n"
    assert set(Session.objects.values_list("session_key", flat=True)) == {
        early_today,
        in_a_minute,
    }
    assert late_yesterday not in set(Session.objects.values_list("session_key", flat=True))

    # Today means now, not tonight: a login valid for another minute stays.
    call_command("purge_sessions", "--as-of", clock.today(KINSHASA).isoformat(), stdout=out)
    assert Session.objects.filter(session_key=in_a_minute).exists()
