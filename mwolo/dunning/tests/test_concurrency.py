"""Two passes of the same day at the same time (beat's task and an operator's
``run_dunning``, say), each on its own database connection: every step is taken once."""

import threading
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection, transaction

from mwolo.core.testing.threads import in_thread
from mwolo.crm.models import Client
from mwolo.dunning.models import Action, Disconnection, Reminder
from mwolo.dunning.services import DunningReport, dunning_run
from mwolo.dunning.tests.factories import billed_site, day, overdue_invoice
from mwolo.dunning.tests.test_ladder import walk
from mwolo.metering.models import MeterCommand
from mwolo.notifications.models import Notification

POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def waiting_for_locks() -> int:
    """Connections of this database waiting for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.skipif(not POSTGRES, reason="SQLite has one writer: its transactions never interleave")
@pytest.mark.django_db(transaction=True)
def test_two_passes_of_the_same_day_at_once_take_each_step_once(residential):
    # On D+14 of the first: one invoice per kind of step (cut, final notice, two reminders).
    site = billed_site()
    invoices = {
        Action.DISCONNECT: overdue_invoice(site=site),
        Action.FINAL_NOTICE: overdue_invoice(due=day(2)),
        "second reminder": overdue_invoice(due=day(7)),
        Action.REMIND: overdue_invoice(due=day(11)),
    }
    walk(0, 13)
    steps_before = Reminder.objects.count()
    messages_before = Notification.objects.count()
    last_message = Notification.objects.order_by("pk").values_list("pk", flat=True).last()
    reports: list[DunningReport] = []
    errors: list[BaseException] = []
    holding, release = threading.Event(), threading.Event()

    def hold_the_clients():
        # Both passes meet at the clients' locks, then go as soon as they are free.
        with transaction.atomic():
            list(Client.objects.select_for_update())
            holding.set()
            release.wait(20)

    blocker = in_thread(hold_the_clients, errors)
    assert holding.wait(10)
    passes = [
        in_thread(lambda: reports.append(dunning_run(as_of=day(14))), errors) for _ in range(2)
    ]
    deadline = time.monotonic() + 10
    while waiting_for_locks() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting_for_locks() == 2
    release.set()
    for thread in (blocker, *passes):
        thread.join(30)

    assert errors == []
    assert len(reports) == 2
    # One pass took the day's four steps; the other, once the clients were free, saw them.
    assert sorted(r.reminders + r.final_notices + r.disconnections for r in reports) == [0, 4]
    assert sum(r.messages for r in reports) == Notification.objects.count() - messages_before
    taken = Counter(Reminder.objects.values_list("invoice_id", "step_id"))
    assert set(taken.values()) == {1}
    assert Reminder.objects.count() - steps_before == 4
    today = Counter(
        Notification.objects.filter(pk__gt=last_message).values_list(
            "related_id", "event", "channel"
        )
    )
    assert set(today.values()) == {1}
    assert {(related, event) for related, event, _channel in today} == {
        (invoices["second reminder"].pk, "reminder"),
        (invoices[Action.REMIND].pk, "reminder"),
        (invoices[Action.FINAL_NOTICE].pk, "final_notice"),
        (invoices[Action.DISCONNECT].pk, "disconnection"),
    }
    assert Disconnection.objects.get().site == site
    assert MeterCommand.objects.count() == 1
