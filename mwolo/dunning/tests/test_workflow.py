"""The customer's workflow for one invoice, over the real parts: the database, the MQTT
broker with a simulated meter and the head-end, the operator simulator calling our webhook
on a live server, SMTP to a local sink and SMS to the Africa's Talking fake.

Invoice sent (day 0) → reminder D+3 → reminder D+7 → final notice → disconnection D+14,
acknowledged by the meter → the client pays with Airtel Money → receipt → reconnection,
acknowledged → invoice paid. The daily job runs as ``manage.py run_dunning --as-of``.
"""

import datetime as dt
import io
from collections.abc import Callable, Iterator
from decimal import Decimal
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
from mwolo.dunning.models import Disconnection, PublicHoliday
from mwolo.dunning.tests.factories import billed_site, site_meter, steps_taken
from mwolo.integrations.payments.base import PaymentStatus
from mwolo.metering.headend import Headend
from mwolo.metering.models import Relay
from mwolo.metering.tests.test_headend_scenarios import (
    command_status,
    eventually,
    fleet_for,
    running_headend,
)
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


def first_day_to_cut(day: dt.date) -> dt.date:
    """``day``, or the next day that is neither a weekend nor a public holiday."""
    holidays = set(PublicHoliday.objects.values_list("day", flat=True))
    while day.weekday() >= 5 or day in holidays:
        day += dt.timedelta(days=1)
    return day


def run_dunning(day: dt.date) -> str:
    out = io.StringIO()
    call_command("run_dunning", "--as-of", day.isoformat(), stdout=out)
    return out.getvalue()


def waiting(check: Callable[[], T], what: str) -> T:
    """The first truthy value of ``check()`` (messages are delivered after commit)."""
    found: list[T] = []
    eventually(lambda: bool(found.append(check()) or found[-1]), what=what)
    return found[-1]


def test_one_invoice_from_issue_to_disconnection_payment_and_reconnection(
    platform,
    mqtt_broker,
    headend,
    smtp_sink,
    sms_gateway,
    residential,
):
    portal_user = UserFactory()
    portal_user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
    site = billed_site(email=EMAIL, preferred_channel="email", phone=PHONE, user=portal_user)
    meter = site_meter(site)

    def emails() -> list[str]:
        # Django folds a long encoded subject onto a line of its own; mail readers (and
        # this strip) drop the whitespace of the fold.
        return [str(message["Subject"]).strip() for message in smtp_sink.messages()]

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

        # The meter acknowledged the cut: the relay is off, on the meter and on our side.
        episode = Disconnection.objects.get(site=site, closed_at=None)
        cut = episode.meters.get().cut_command
        eventually(lambda: command_status(cut) == "acknowledged", what="ack of the disconnect")
        assert fleet.meter(meter.serial).relay == "off"
        assert site_meter(site).relay_reported == Relay.OFF

        # The client read each step by email; the final notice and the cut also by SMS.
        waiting(lambda: len(emails()) == 5 and len(sms()) == 3, "the ladder's messages")
        assert emails()[1:] == [
            f"Rappel : facture {invoice.number} impayée",
            f"Rappel : facture {invoice.number} impayée",
            f"Dernier avis avant coupure – facture {invoice.number}",
            f"Fourniture suspendue – site {site.reference}",
        ]
        final_notice, cut_notice = sms()[1:]
        assert final_notice == (
            f"Mwolo Energy: DERNIER AVIS. Sans paiement de 24 940,00 CDF (facture "
            f"{invoice.number}) avant le {cut_on:%d/%m/%Y}, le courant sera coupé."
        )
        assert cut_notice.startswith(
            f"Mwolo Energy: le courant du site {site.reference} est coupé pour un impayé de "
            "24 940,00 CDF. Il sera rétabli dès le paiement. Info: +243"
        )

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
        waiting(lambda: len(emails()) == 7, "the receipt and the reconnection")
        assert emails()[5:] == [
            f"Paiement enregistré – reçu {payment.receipt_number}",
            f"Fourniture rétablie – site {site.reference}",
        ]
        [receipt_pdf] = smtp_sink.messages()[5].iter_attachments()
        receipt_text = PdfReader(io.BytesIO(receipt_pdf.get_content())).pages[0].extract_text()
        assert payment.receipt_number in receipt_text
        assert invoice.number in receipt_text

        # The next days' passes have nothing left to do for this client (their messages
        # would be delivered before the command returns).
        for offset in (1, 2):
            assert "0 messages queued" in run_dunning(cut_on + dt.timedelta(days=offset))
        assert len(emails()) == 7
        assert len(sms()) == 3
        assert len(steps_taken(invoice)) == 4
