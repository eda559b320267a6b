"""A prepaid token reaches its client by SMS, in their language, once."""

import logging
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing.tests.factories import tariff
from mwolo.core.permissions import Role
from mwolo.crm.models import Channel
from mwolo.crm.tests.factories import ClientFactory, SiteFactory
from mwolo.metering import services
from mwolo.metering.models import PrepaidToken
from mwolo.metering.tests.factories import MeterFactory, installed_meter
from mwolo.notifications.models import MessageTemplate, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


@pytest.fixture
def site(gombe):
    client = ClientFactory(agency=gombe, phone="+243812345678")
    return SiteFactory(agency=gombe, client=client)


@pytest.fixture
def prepaid(site):
    tariff()  # residential, CDF: 50 kWh a month at 100, then 200; VAT 16%
    return installed_meter(site, prepaid=True, serial="SIM-000123")


def grouped(token):
    return f"{token.token[:3]} {token.token[3:6]} {token.token[6:]}"


def test_a_sale_sends_the_client_their_token_by_sms(
    prepaid, sms_gateway, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sale = services.prepaid_token_for_amount(
            meter_id=prepaid.pk, amount=Decimal(11600), currency="CDF", actor=None
        )

    (sms,) = sms_gateway.messages
    assert sms.to == "+243812345678"
    assert sms.message == (
        f"Mwolo Energy: code {grouped(sale.token)} pour le compteur SIM-000123: 75 kWh "
        "(11 600,00 CDF). Tapez ce code sur le compteur."
    )
    notice = Notification.objects.get()
    assert (notice.event, notice.related, notice.status) == (
        "prepaid_token",
        sale.token,
        Notification.Status.SENT,
    )
    assert notice.idempotency_key == f"prepaid_token:{sale.token.pk}"


def test_the_message_tells_what_the_token_cost_not_what_was_handed_over(
    prepaid, sms_gateway, django_capture_on_commit_callbacks
):
    # 12 000 CDF buy 76 kWh for 11 832: the 168 left over are the client's change.
    with django_capture_on_commit_callbacks(execute=True):
        sale = services.prepaid_token_for_amount(
            meter_id=prepaid.pk, amount=Decimal(12000), currency="CDF", actor=None
        )

    assert sale.change == Decimal(168)
    assert "76 kWh (11 832,00 CDF)" in sms_gateway.messages[0].message


def test_a_credit_given_by_staff_is_told_as_free(
    prepaid, site, sms_gateway, django_capture_on_commit_callbacks
):
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=site.agency)

    with django_capture_on_commit_callbacks(execute=True):
        token = services.prepaid_token_issue(
            meter_id=prepaid.pk, energy_kwh=20, actor=manager, reason="Geste commercial"
        )

    (sms,) = sms_gateway.messages
    assert sms.message == (
        f"Mwolo Energy: code {grouped(token)} pour le compteur SIM-000123: 20 kWh "
        "(0,00 CDF). Tapez ce code sur le compteur."
    )


def test_a_free_credit_where_no_tariff_applies_is_told_in_francs(
    site, sms_gateway, django_capture_on_commit_callbacks
):
    meter = installed_meter(site, prepaid=True, serial="SIM-000124")

    with django_capture_on_commit_callbacks(execute=True):
        services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=5, actor=None)

    assert "5 kWh (0,00 CDF)" in sms_gateway.messages[0].message


def test_a_client_who_reads_email_gets_it_by_email_too(
    prepaid, site, sms_gateway, smtp_sink, django_capture_on_commit_callbacks
):
    client = site.client
    client.email, client.preferred_channel = "marie.kabila@example.cd", Channel.EMAIL
    client.save()

    with django_capture_on_commit_callbacks(execute=True):
        sale = services.prepaid_token_for_amount(
            meter_id=prepaid.pk, amount=Decimal(11600), currency="CDF", actor=None
        )

    (mail,) = smtp_sink.messages()
    assert mail["To"] == "marie.kabila@example.cd"
    assert "SIM-000123" in mail["Subject"]
    assert grouped(sale.token) in mail.get_content()
    assert len(sms_gateway.messages) == 1  # tokens always go by SMS as well


def test_an_english_client_reads_it_in_english(
    prepaid, site, sms_gateway, django_capture_on_commit_callbacks
):
    client = site.client
    client.preferred_language = "en"
    client.save()

    with django_capture_on_commit_callbacks(execute=True):
        sale = services.prepaid_token_for_amount(
            meter_id=prepaid.pk, amount=Decimal(11600), currency="CDF", actor=None
        )

    assert sms_gateway.messages[0].message == (
        f"Mwolo Energy: code {grouped(sale.token)} for meter SIM-000123: 75 kWh "
        "(11,600.00 CDF). Type this code on your meter."
    )


def test_a_token_for_a_meter_in_stock_tells_nobody(gombe):
    meter = MeterFactory(agency=gombe, payment_mode="prepaid")
    services.meter_register(meter=meter, actor=None, token_secret="0123456789abcdef" * 2)

    services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=5, actor=None, send=False)

    assert PrepaidToken.objects.count() == 1
    assert not Notification.objects.exists()


def test_a_refused_sale_sends_nothing(prepaid, sms_gateway, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        services.prepaid_token_for_amount(
            meter_id=prepaid.pk, amount=Decimal(100), currency="CDF", actor=None
        )

    assert not Notification.objects.exists()
    assert sms_gateway.messages == []


def test_a_sale_rolled_back_by_its_caller_sends_nothing(
    prepaid, sms_gateway, django_capture_on_commit_callbacks
):
    def payment_that_fails():
        with transaction.atomic():
            services.prepaid_token_for_amount(
                meter_id=prepaid.pk, amount=Decimal(11600), currency="CDF", actor=None
            )
            raise RuntimeError("the payment was refused")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        payment_that_fails()

    assert not PrepaidToken.objects.exists()
    assert not Notification.objects.exists()
    assert sms_gateway.messages == []


def test_a_broken_template_does_not_undo_the_sale(prepaid, caplog):
    MessageTemplate.objects.filter(event="prepaid_token", channel="sms", language="fr").delete()

    with caplog.at_level(logging.ERROR, logger="mwolo.metering.services"):
        sale = services.prepaid_token_for_amount(
            meter_id=prepaid.pk, amount=Decimal(11600), currency="CDF", actor=None
        )

    # The meter gets its credit over MQTT, and the counter reads the token out.
    assert PrepaidToken.objects.get() == sale.token
    assert sale.token.command is not None
    assert not Notification.objects.exists()
    assert "the client's message could not be made" in caplog.text
