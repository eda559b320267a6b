"""``manage.py run_dunning``, the Celery task and the beat schedule."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from mwolo.core import clock
from mwolo.dunning.models import Reminder
from mwolo.dunning.tasks import dunning_run_zone
from mwolo.dunning.tests.factories import day, overdue_invoice, steps_taken
from mwolo.notifications.models import Notification

pytestmark = pytest.mark.django_db


def run(*arguments: str) -> str:
    out = io.StringIO()
    call_command("run_dunning", *arguments, stdout=out)
    return out.getvalue()


def test_the_command_runs_a_day_and_says_what_it_did(residential):
    invoice = overdue_invoice()

    printed = run("--as-of", day(3).isoformat(), "--agency", invoice.agency.code)

    assert printed.splitlines()[0] == (
        "Dunning of 2027-02-04: 1 overdue invoices; 1 reminders, 0 final notices, "
        "0 sites disconnected (0 already cut), 0 reconnected; 1 messages queued."
    )
    assert steps_taken(invoice) == [(3, "remind")]
    assert "1 reminders" not in run("--as-of", day(3).isoformat())  # nothing twice


def test_a_day_runs_as_beat_would_at_nine_and_a_moment_runs_at_that_moment(residential):
    invoice = overdue_invoice()
    for offset in range(3, 14):
        run("--as-of", day(offset).isoformat())

    # The cut-off hour is 15:00: at 16:00 the cut waits, the day run at 09:00 cuts.
    late = run("--as-of", f"{day(14).isoformat()}T16:00:00+01:00")
    assert "0 sites disconnected" in late
    assert "Waiting: 1 disconnections for a working day or hour" in late
    assert "1 sites disconnected" in run("--as-of", day(14).isoformat())
    assert steps_taken(invoice)[-1] == (14, "disconnect")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--as-of", "2027-02-30"],
            "--as-of must be a day such as 2026-12-20 or a moment with its offset such as "
            "2026-12-20T09:00:00+01:00, not '2027-02-30'",
        ),
        (
            ["--as-of", "demain"],
            "--as-of must be a day such as 2026-12-20 or a moment with its offset such as "
            "2026-12-20T09:00:00+01:00, not 'demain'",
        ),
        (["--as-of", "2027-02-04", "--agency", "NOPE"], "No agency has the code 'NOPE'."),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(residential, arguments, message):
    overdue_invoice()

    with pytest.raises(CommandError) as refused:
        run(*arguments)

    assert str(refused.value) == message
    assert not Reminder.objects.exists()
    assert not Notification.objects.filter(event="reminder").exists()


def test_beat_runs_the_pass_at_nine_in_each_zone():
    tasks = {
        task.name: task for task in PeriodicTask.objects.filter(task="dunning.dunning_run_zone")
    }

    assert set(tasks) == {"Dunning (Africa/Kinshasa)", "Dunning (Africa/Lubumbashi)"}
    for zone in ("Africa/Kinshasa", "Africa/Lubumbashi"):
        task = tasks[f"Dunning ({zone})"]
        assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == (
            "9",
            "0",
            zone,
        )
        assert task.kwargs == f'{{"time_zone": "{zone}"}}'


def test_the_task_runs_today_for_the_agencies_of_its_zone(residential):
    # A Kinshasa agency's invoice, due yesterday there: overdue today, no step yet.
    overdue_invoice(due=clock.today("Africa/Kinshasa") - dt.timedelta(days=1))

    east = dunning_run_zone("Africa/Lubumbashi")
    west = dunning_run_zone.delay("Africa/Kinshasa").get()

    assert east["invoices"] == 0
    assert (west["invoices"], west["reminders"], west["as_of"]) == (
        1,
        0,
        clock.today("Africa/Kinshasa").isoformat(),
    )
    assert set(west) >= {"as_of", "reminders", "disconnections", "reconnections"}
