"""The payments' periodic work: the reconciliation is on beat's schedule, as documented."""

import datetime as dt

import pytest
from django_celery_beat.models import PeriodicTask

from config.celery import app
from mwolo.core import clock
from mwolo.integrations.payments.base import PaymentStatus
from mwolo.payments.models import PaymentIntent
from mwolo.payments.tests.factories import PaymentIntentFactory

pytestmark = pytest.mark.django_db


def test_beat_reconciles_mobile_money_every_five_minutes():
    scheduled = PeriodicTask.objects.get(task="payments.intents_reconcile")

    assert scheduled.enabled
    assert (scheduled.interval.every, scheduled.interval.period) == (5, "minutes")
    assert scheduled.name == "Reconcile mobile money"
    # What beat sends is a task the workers know, and it expires what timed out: here a
    # push the operator never acknowledged (no reference to ask about), past its 30 min.
    assert scheduled.task in app.tasks
    lost = PaymentIntentFactory(
        provider_reference="", expires_at=clock.now() - dt.timedelta(minutes=1)
    )
    result = app.tasks[scheduled.task].delay().get()
    assert result == {"pushed": 0, "checked": 0, "settled": 0, "failed": 0, "expired": 1}
    assert PaymentIntent.objects.get(pk=lost.pk).status == PaymentStatus.EXPIRED
