"""``manage.py run_dunning``, the Celery task and the beat schedule."""

import io

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

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


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--as-of", "2027-02-30"], "--as-of must be a day such as 2026-12-20, not '2027-02-30'"),
        (["--as-of", "demain"], "--as-of must be a day such as 2026-12-20, not 'demain'"),
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
    overdue_invoice()  # a Kinshasa agency

    east = dunning_run_zone("Africa/Lubumbashi")
    west = dunning_run_zone.delay("Africa/Kinshasa").get()

    assert east["invoices"] == 0
    assert west["invoices"] == 0  # due in 2027: not overdue today
    assert set(west) >= {"as_of", "reminders", "disconnections", "reconnections"}
