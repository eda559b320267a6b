"""The customer's workflow for one invoice, over the real parts: the database, a Celery
worker taking the tasks from the run's broker (Redis, or the filesystem broker), the MQTT
broker with a simulated meter and the head-end, the operator simulator calling our webhook
on a live server, SMTP to a local sink and SMS to the Africa's Talking fake.

Invoice sent (day 0) → reminder D+3 → reminder D+7 → final notice → disconnection D+14,
acknowledged by the meter → the client pays with Airtel Money → receipt → reconnection,
acknowledged → invoice paid. The daily job runs as ``manage.py run_dunning --as-of``; every
message, push, receipt and reconnection check after it is a task the worker runs.
"""

import datetime as dt
import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from email.message import EmailMessage
from typing import TypeVar

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from pypdf import PdfReader

from mwolo.accounts.tests.factories import UserFactory
from mwolo.billing import services as billing
from mwolo.billing.models import Invoice
from mwolo.billing.selectors import client_balances
from mwolo.billing.tests.factories import OCTOBER
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.core.testing.mqtt import MqttBroker
from mwolo.dunning.models import Disconnection
from mwolo.dunning.tests.factories import (
    billed_site,
    first_day_to_cut,
    site_meter,
    steps_taken,
)
from mwolo.integrations.payments.base import PaymentStatus
from mwolo.metering.headend import Headend
from mwolo.metering.models import Relay
from mwolo.metering.tests.test_headend_scenarios import (
    command_status,
    eventually,
    fleet_for,
    running_headend,
)
from mwolo.notifications.models import Notification
from mwolo.payments import services as payments
from mwolo.payments.models import Payment

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")

EMAIL = "beatrice.kalala@example.cd"
PHONE = "+243970000101"  # the simulator reads no scripted outcome in it: the payment works
OWED = Decimal("24940.00")


@pytest.fixture
def headend(mqtt_broker: MqttBroker) -> Iterator[Headend]:
    yield from running_headend(mqtt_broker, f"{mqtt_broker.prefix}-workflow-headend")


def run_dunning(day: dt.date) -> str:
    out = io.StringIO()
    call_command("run_dunning", "--as-of", day.isoformat(), stdout=out)
    return out.getvalue()


def waiting(check: Callable[[], T], what: str) -> T:
    """The first truthy value of ``check()`` (messages are delivered after commit)."""
    found: list[T] = []
    eventually(lambda: bool(found.append(check()) or found[-1]), what=what)
    return found[-1]


def text(message: EmailMessage) -> str:
    """The plain text an email reader shows (SMTP carries lines ended by CRLF)."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def test_one_invoice_from_issue_to_disconnection_payment_and_reconnection(
    platform,
    mqtt_broker,
    headend,
    smtp_sink,
    sms_gateway,
    residential,
    task_worker,
):
    portal_user = UserFactory()
    portal_user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
    site = billed_site(email=EMAIL, preferred_channel="email", phone=PHONE, user=portal_user)
    meter = site_meter(site)
    phone = site.agency.phone.as_international
    name = site.client.display_name

    def emails() -> dict[str, str]:
        # Django folds a long encoded subject onto a line of its own; mail readers (and
        # this strip) drop the whitespace of the fold. Delivered by the worker: in the
        # order it took them, so found by subject.
        return {str(message["Subject"]).strip(): text(message) for message in smtp_sink.messages()}

    def sms() -> list[str]:
        return [message.message for message in sms_gateway.messages if message.to == PHONE]

    with fleet_for(mqtt_broker, [meter]) as fleet:
        # Day 0: the invoice is issued; its due date comes from the tariff's terms.
        billing.invoices_draft(period=OCTOBER, site_ids=[site.pk])
        invoice = billing.invoice_issue(invoice_id=Invoice.objects.get(site=site).pk, actor=None)
        due = invoice.due_date
        waiting(lambda: len(emails()) == 1 and len(sms()) == 1, "the invoice's email and SMS")
        [invoice_email] = smtp_sink.messages()
        assert invoice_email["To"] == EMAIL
        assert invoice_email["Subject"] == f"Votre facture {invoice.number} – Mwolo Energy"
        assert "Montant à payer : 24 940,00 CDF" in text(invoice_email)
        assert f"À payer avant le : {due:%d/%m/%Y}" in text(invoice_email)
        [pdf] = invoice_email.iter_attachments()
        pdf_text = PdfReader(io.BytesIO(pdf.get_content())).pages[0].extract_text()
        assert invoice.number in pdf_text
        assert "24 940,00" in pdf_text
        assert sms() == [
            f"Mwolo Energy: facture {invoice.number} de 24 940,00 CDF à payer avant le "
            f"{due:%d/%m/%Y}. Réf. de paiement: {invoice.number}"
        ]

        # Every day from the due date to three weeks after it, as beat would run it.
        cut_on = first_day_to_cut(due + dt.timedelta(days=14))
        for offset in range(22):
            run_dunning(due + dt.timedelta(days=offset))
            if due + dt.timedelta(days=offset) == cut_on:
                break
        taken = steps_taken(invoice)
        assert [action for _days, action in taken] == [
            "remind",
            "remind",
            "final_notice",
            "disconnect",
        ]
        assert [days for days, _action in taken] == [3, 7, 12, (cut_on - due).days]
        notice_on = due + dt.timedelta(days=12)

        # The meter acknowledged the cut: the relay is off, on the meter and on our side.
        episode = Disconnection.objects.get(site=site, closed_at=None)
        cut = episode.meters.get().cut_command
        eventually(lambda: command_status(cut) == "acknowledged", what="ack of the disconnect")
        assert fleet.meter(meter.serial).relay == "off"
        assert site_meter(site).relay_reported == Relay.OFF

        # The client read each step by email; the final notice and the cut also by SMS.
        waiting(lambda: len(emails()) == 4 and len(sms()) == 3, "the ladder's messages")
        ladder = emails()
        reminders = f"Rappel : facture {invoice.number} impayée"
        assert set(ladder) == {
            f"Votre facture {invoice.number} – Mwolo Energy",
            reminders,
            f"Dernier avis avant coupure – facture {invoice.number}",
            f"Fourniture suspendue – site {site.reference}",
        }
        reminder_emails = [
            text(message)
            for message in smtp_sink.messages()
            if str(message["Subject"]).strip() == reminders
        ]
        assert sorted(reminder_emails) == sorted(
            f"Bonjour {name},\n\nSauf erreur de notre part, votre facture "
            f"{invoice.number} de 24 940,00 CDF, échue le {due:%d/%m/%Y}, n'est pas encore "
            f"payée ({days} jours de retard).\n\nMerci de la régler dès que possible pour "
            "éviter une suspension de la fourniture d'électricité. Si vous avez déjà payé, ne "
            "tenez pas compte de ce message.\n\n"
            f"Numéro client : {site.client.number}\n\nL'équipe Mwolo Energy\n"
            f"{site.agency.name} · {phone}\n"
            for days in (3, 7)
        )
        final_notice_email = ladder[f"Dernier avis avant coupure – facture {invoice.number}"]
        assert (
            f"votre facture {invoice.number} de 24 940,00 CDF reste impayée" in final_notice_email
        )
        assert (
            f"Sans paiement avant le {cut_on:%d/%m/%Y}, la fourniture d'électricité de votre "
            "site sera suspendue." in final_notice_email
        )
        cut_email = ladder[f"Fourniture suspendue – site {site.reference}"]
        assert (
            f"la fourniture d'électricité de votre site {site.reference} a été suspendue. "
            "Montant dû : 24 940,00 CDF." in cut_email
        )
        assert "Le courant sera rétabli automatiquement dès réception de votre paiement." in (
            cut_email
        )
        assert sms()[1:] == [
            f"Mwolo Energy: DERNIER AVIS. Sans paiement de 24 940,00 CDF (facture "
            f"{invoice.number}) avant le {cut_on:%d/%m/%Y}, le courant sera coupé.",
            f"Mwolo Energy: le courant du site {site.reference} est coupé pour un impayé de "
            f"24 940,00 CDF. Il sera rétabli dès le paiement. Info: {phone}",
        ]
        assert notice_on < cut_on  # the notice came days before the cut, not with it

        # From the portal, the client pays the whole invoice with Airtel Money.
        intent = payments.payment_intent_create(
            client_id=site.client_id,
            provider="airtel",
            msisdn=PHONE,
            amount=OWED,
            currency="CDF",
            actor=portal_user,
            invoice_id=invoice.pk,
        )
        waiting(
            lambda: type(intent).objects.get(pk=intent.pk).status == PaymentStatus.SUCCEEDED,
            "the Airtel payment",
        )
        payment = Payment.objects.get(intent=intent)
        assert (payment.method, payment.amount) == ("airtel", OWED)
        assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
        assert client_balances(client_id=site.client_id) == {"CDF": Decimal("0.00")}

        # The site is reconnected by itself, and the meter acknowledges it.
        episode = waiting(
            lambda: Disconnection.objects.filter(pk=episode.pk, closed_at__isnull=False).first(),
            "the reconnection",
        )
        assert episode.closed_reason == Disconnection.ClosedReason.CLEARED
        restore = episode.meters.get().restore_command
        eventually(lambda: command_status(restore) == "acknowledged", what="ack of the connect")
        assert fleet.meter(meter.serial).relay == "on"
        assert site_meter(site).relay_reported == Relay.ON

        # The receipt (its PDF attached) and the reconnection reach the client.
        receipt_subject = f"Paiement enregistré – reçu {payment.receipt_number}"
        back_subject = f"Fourniture rétablie – site {site.reference}"
        waiting(lambda: {receipt_subject, back_subject} <= set(emails()), "receipt, reconnection")
        assert len(smtp_sink.messages()) == 7
        receipt_email = emails()[receipt_subject]
        assert "Montant : 24 940,00 CDF" in receipt_email
        assert f"Reçu n° : {payment.receipt_number}" in receipt_email
        assert "Moyen de paiement : Airtel Money" in receipt_email
        assert "Reste à payer : 0,00 CDF" in receipt_email
        assert emails()[back_subject] == (
            f"Bonjour {name},\n\nMerci pour votre paiement. La fourniture "
            f"d'électricité de votre site {site.reference} est rétablie.\n\n"
            "Si le courant n'est pas revenu d'ici une heure, appelez votre agence au "
            f"{phone}.\n\nNuméro client : {site.client.number}\n\n"
            f"L'équipe Mwolo Energy\n{site.agency.name} · {phone}\n"
        )
        [receipt_message] = [
            message
            for message in smtp_sink.messages()
            if str(message["Subject"]).strip() == receipt_subject
        ]
        [receipt_pdf] = receipt_message.iter_attachments()
        receipt_text = PdfReader(io.BytesIO(receipt_pdf.get_content())).pages[0].extract_text()
        assert payment.receipt_number in receipt_text
        assert invoice.number in receipt_text

        # The next days' passes have nothing left to do for this client.
        for offset in (1, 2):
            assert "0 messages queued" in run_dunning(cut_on + dt.timedelta(days=offset))
        assert Notification.objects.filter(client=site.client).count() == 10
        assert len(sms()) == 3
        assert len(steps_taken(invoice)) == 4
