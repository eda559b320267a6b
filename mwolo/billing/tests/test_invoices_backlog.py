"""Invoices a crash or a lost task left undelivered reach their clients all the same."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from mwolo.billing import delivery, services, tasks
from mwolo.billing.models import Invoice
from mwolo.billing.tests.factories import OCTOBER, local, metered_site, tariff
from mwolo.core import clock
from mwolo.notifications.models import MessageTemplate, Notification

pytestmark = pytest.mark.django_db

LATER = dt.timedelta(hours=1)  # past the grace a running delivery task is given


@pytest.fixture(autouse=True)
def residential():
    return tariff()


def issued_undelivered(count=1):
    """Invoices issued with their delivery lost: the task queued on commit never ran."""
    sites = [
        metered_site(readings=[(local("2026-09-30"), "1100"), (local("2026-10-31"), "1220")])
        for _ in range(count)
    ]
    services.invoices_draft(period=OCTOBER, site_ids=[site.pk for site in sites])
    # Outside django_capture_on_commit_callbacks(execute=True): the delivery is never run.
    services.invoices_issue(
        invoice_ids=list(Invoice.objects.filter(site__in=sites).values_list("pk", flat=True)),
        actor=None,
    )
    return list(Invoice.objects.filter(site__in=sites).order_by("pk"))


def deliver(as_of, capture):
    out = io.StringIO()
    with capture(execute=True):  # the notices' own delivery tasks run (eagerly)
        call_command("deliver_invoices", "--as-of", as_of.isoformat(), stdout=out)
    return out.getvalue()


def notices(invoice):
    return Notification.objects.filter(
        event="invoice_issued", idempotency_key=f"invoice_issued:{invoice.pk}"
    )


def test_a_lost_delivery_is_caught_up_once(sms_gateway, django_capture_on_commit_callbacks):
    first, second = issued_undelivered(2)

    output = deliver(clock.now() + LATER, django_capture_on_commit_callbacks)

    assert "2 invoices to deliver: 2 delivered, 0 failed" in output
    for invoice in (first, second):
        invoice.refresh_from_db()
        assert invoice.number in invoice.pdf.name
        assert invoice.pdf.name.endswith(".pdf")
        assert notices(invoice).get().status == Notification.Status.SENT
    texts = sorted(sms.message for sms in sms_gateway.messages)
    assert len(texts) == 2
    assert texts[0].startswith(f"Mwolo Energy: facture {first.number} de 24 940,00 CDF")

    again = deliver(clock.now() + LATER, django_capture_on_commit_callbacks)

    assert "0 invoices to deliver" in again
    assert len(sms_gateway.messages) == 2
    assert Notification.objects.count() == 2


def test_an_invoice_whose_notice_is_missing_gets_it_and_keeps_its_pdf(
    sms_gateway, django_capture_on_commit_callbacks
):
    (invoice,) = issued_undelivered()
    stored = delivery.invoice_pdf(invoice_id=invoice.pk).name  # crashed right after this

    deliver(clock.now() + LATER, django_capture_on_commit_callbacks)

    invoice.refresh_from_db()
    assert invoice.pdf.name == stored
    assert notices(invoice).count() == 1
    assert len(sms_gateway.messages) == 1


def test_an_invoice_whose_pdf_is_missing_gets_it_without_a_second_notice(
    sms_gateway, django_capture_on_commit_callbacks
):
    (invoice,) = issued_undelivered()
    with django_capture_on_commit_callbacks(execute=True):
        delivery.invoices_deliver(invoice_ids=[invoice.pk])
    Invoice.objects.filter(pk=invoice.pk).update(pdf="")  # the file was lost

    deliver(clock.now() + LATER, django_capture_on_commit_callbacks)

    invoice.refresh_from_db()
    assert invoice.pdf.name.endswith(".pdf")
    assert notices(invoice).count() == 1
    assert len(sms_gateway.messages) == 1


def test_a_delivery_still_running_and_a_stale_invoice_are_left_alone(
    django_capture_on_commit_callbacks,
):
    (invoice,) = issued_undelivered()

    # Just issued: its own delivery task is presumably on its way.
    assert "0 invoices" in deliver(clock.now(), django_capture_on_commit_callbacks)
    # Issued more than a week ago: the notice would be stale, a person decides.
    in_two_weeks = clock.now() + dt.timedelta(days=14)
    assert "0 invoices" in deliver(in_two_weeks, django_capture_on_commit_callbacks)
    # An operator catches up that day by giving its date.
    assert "1 invoices" in deliver(clock.now() + LATER, django_capture_on_commit_callbacks)
    assert notices(invoice).count() == 1


def test_drafts_and_cancelled_invoices_are_not_delivered(django_capture_on_commit_callbacks):
    cancelled, _kept = issued_undelivered(2)
    services.credit_note_issue(invoice_id=cancelled.pk, reason="Erreur de site", actor=None)
    unread = metered_site(readings=[(local("2026-08-31"), "1900"), (local("2026-09-30"), "2800")])
    services.invoices_draft(period=OCTOBER, site_ids=[unread.pk])

    output = deliver(clock.now() + LATER, django_capture_on_commit_callbacks)

    assert "1 invoices to deliver: 1 delivered" in output
    assert not notices(cancelled).exists()
    assert Notification.objects.count() == 1
    assert not Notification.objects.filter(related_id=Invoice.objects.get(site=unread).pk).exists()


def test_one_invoice_that_cannot_be_sent_holds_back_no_other(
    sms_gateway, django_capture_on_commit_callbacks
):
    english, french = issued_undelivered(2)
    client = english.client
    client.preferred_language = "en"
    client.save()
    MessageTemplate.objects.filter(event="invoice_issued", language="en").delete()

    with pytest.raises(CommandError, match="1 invoices could not be delivered"):
        deliver(clock.now() + LATER, django_capture_on_commit_callbacks)

    assert notices(french).count() == 1
    assert not notices(english).exists()
    assert len(sms_gateway.messages) == 1


@pytest.mark.parametrize("as_of", ["hier", "2026-12-01T10:00:00"])
def test_a_bad_moment_is_refused(as_of, django_capture_on_commit_callbacks):
    (invoice,) = issued_undelivered()

    with pytest.raises(
        CommandError, match="--as-of must be a day such as 2026-12-20 or a moment with its offset"
    ):
        call_command("deliver_invoices", "--as-of", as_of, stdout=io.StringIO())

    assert not Notification.objects.exists()
    invoice.refresh_from_db()
    assert not invoice.pdf


def test_beat_runs_the_backlog_every_fifteen_minutes(django_capture_on_commit_callbacks):
    scheduled = PeriodicTask.objects.get(task="billing.invoices_backlog")
    assert (scheduled.interval.every, scheduled.interval.period) == (15, "minutes")
    assert scheduled.enabled

    # What beat queues, run here: the invoices issued more than the grace ago.
    (invoice,) = issued_undelivered()
    Invoice.objects.filter(pk=invoice.pk).update(issued_at=clock.now() - LATER)
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.invoices_backlog.delay().get()

    assert result == {"found": 1, "delivered": 1, "failed": 0}
    assert notices(invoice).count() == 1
