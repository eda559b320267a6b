"""Every periodic job is on Celery beat's database schedule, as the migrations made it and
README and docs/operations.md document it, and an administrator can change it."""

import datetime as dt
import inspect
import json
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest
from django import forms
from django.urls import reverse
from django_celery_beat.models import (
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)

from config.celery import app
from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.core.permissions import Role

pytestmark = pytest.mark.django_db

KINSHASA, LUBUMBASHI = "Africa/Kinshasa", "Africa/Lubumbashi"


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    every_minutes: int | None = None  # an interval job
    at: str | None = None  # a daily job: "HH:MM" in ``zone``
    zone: str = KINSHASA
    kwargs: dict[str, str] = field(default_factory=dict)


JOBS = [
    Job(
        "Dunning (Africa/Kinshasa)",
        "dunning.dunning_run_zone",
        at="09:00",
        kwargs={"time_zone": KINSHASA},
    ),
    Job(
        "Dunning (Africa/Lubumbashi)",
        "dunning.dunning_run_zone",
        at="09:00",
        zone=LUBUMBASHI,
        kwargs={"time_zone": LUBUMBASHI},
    ),
    Job("Reconcile mobile money", "payments.intents_reconcile", every_minutes=5),
    Job("Reconcile meters", "metering.meters_reconcile", every_minutes=5),
    Job("Deliver invoices left undelivered", "billing.invoices_backlog", every_minutes=15),
    Job("Deliver due messages", "notifications.notifications_retry_due", every_minutes=1),
    Job("Back up the database", "core.database_backup", at="02:00"),
    Job("Purge expired sessions", "core.sessions_purge_expired", at="02:30"),
]


def test_the_schedule_holds_every_job_and_nothing_else():
    assert sorted(PeriodicTask.objects.values_list("name", flat=True)) == sorted(
        job.name for job in JOBS
    )


@pytest.mark.parametrize("job", JOBS, ids=[job.name for job in JOBS])
def test_each_job_runs_its_task_when_documented(job):
    scheduled = PeriodicTask.objects.get(name=job.name)
    app.loader.import_default_modules()

    assert (scheduled.task, scheduled.enabled, scheduled.one_off) == (job.task, True, False)
    # The worker knows the task and takes the job's arguments.
    assert job.task in app.tasks
    inspect.signature(app.tasks[job.task].run).bind(
        *json.loads(scheduled.args), **json.loads(scheduled.kwargs)
    )
    assert json.loads(scheduled.kwargs) == job.kwargs
    assert (scheduled.solar, scheduled.clocked) == (None, None)
    if job.every_minutes is not None:
        assert scheduled.crontab is None
        assert scheduled.schedule.run_every == dt.timedelta(minutes=job.every_minutes)
        return
    assert scheduled.interval is None
    crontab = scheduled.crontab
    assert (crontab.day_of_week, crontab.day_of_month, crontab.month_of_year) == ("*",) * 3
    # When beat runs it next, an hour before the time in the job's zone, and after it.
    zone = ZoneInfo(job.zone)
    at = dt.time.fromisoformat(job.at)
    today = dt.datetime.combine(dt.date(2027, 2, 15), at, tzinfo=zone)
    for last_run, expected in [
        (today - dt.timedelta(hours=1), today),
        (today, today + dt.timedelta(days=1)),
    ]:
        last, wait, _now = scheduled.schedule.remaining_delta(last_run.astimezone(dt.UTC))
        assert last + wait == expected


def form_data(form: forms.BaseForm) -> dict[str, str]:
    """What the browser sends back for ``form`` as the page showed it."""
    data: dict[str, str] = {}
    for bound in form:
        value = bound.value()
        widget = bound.field.widget
        if isinstance(widget, forms.CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(widget, forms.MultiWidget):
            for index, part in enumerate(widget.decompress(value)):
                data[f"{bound.html_name}_{index}"] = "" if part is None else str(part)
        else:
            data[bound.html_name] = "" if value is None else str(value)
    return data


@pytest.mark.parametrize("job", JOBS, ids=[job.name for job in JOBS])
def test_an_administrator_opens_a_job_and_changes_its_schedule(client, job):
    scheduled = PeriodicTask.objects.get(name=job.name)
    url = reverse("admin:django_celery_beat_periodictask_change", args=[scheduled.pk])
    client.force_login(EmployeeFactory(role=Role.ADMINISTRATOR))
    changed_before = PeriodicTasks.last_change()

    page = client.get(url)
    assert page.status_code == 200
    assert job.name in page.content.decode()
    data = form_data(page.context["adminform"].form)
    if job.every_minutes is not None:
        later, _created = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
        data["interval"] = str(later.pk)
    else:
        later, _created = CrontabSchedule.objects.get_or_create(
            minute="30",
            hour="8",
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=job.zone,
        )
        data["crontab"] = str(later.pk)
    saved = client.post(url, data)

    assert saved.status_code == 302, saved.context["adminform"].form.errors
    scheduled.refresh_from_db()
    assert (scheduled.interval or scheduled.crontab) == later
    assert (scheduled.task, scheduled.enabled, json.loads(scheduled.kwargs)) == (
        job.task,
        True,
        job.kwargs,
    )
    # Beat reads the change at its next tick.
    assert PeriodicTasks.last_change() != changed_before
