"""The pass works in bulk: its number of queries does not grow with the invoices."""

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mwolo.billing import services as billing
from mwolo.billing.models import Invoice
from mwolo.dunning.models import Disconnection, Reminder
from mwolo.dunning.services import dunning_run
from mwolo.dunning.tests.factories import DUE, day, overdue_invoice

pytestmark = pytest.mark.django_db

LATER = dt.date(2027, 6, 7)  # another Monday


def queries_of_each_step(count: int, due: dt.date) -> list[int]:
    invoices = [overdue_invoice(due=due) for _ in range(count)]
    counts = []
    for offset in (3, 7, 12, 14, 15):  # reminders, final notices, cuts, a quiet day after
        with CaptureQueriesContext(connection) as captured:
            dunning_run(as_of=day(offset, due))
        counts.append(len(captured.captured_queries))
    assert Reminder.objects.filter(invoice__in=invoices).count() == 4 * count
    assert Disconnection.objects.filter(invoice__in=invoices).count() == count
    return counts


def test_the_pass_costs_the_same_queries_for_2_or_12_invoices(residential):
    ContentType.objects.get_for_model(Invoice)  # looked up once per process, then cached
    few = queries_of_each_step(2, DUE)
    # Those two are settled and reconnected before the next twelve fall due.
    for invoice in Invoice.objects.all():
        billing.credit_note_issue(invoice_id=invoice.pk, reason="Erreur", actor=None)
    assert dunning_run(as_of=LATER).reconnections == 2

    many = queries_of_each_step(12, LATER)

    assert few == many
    assert max(many) < 60
