"""Mobile money when things go wrong on the way: a lost reply to a push, a push sent twice,
a currency that cannot be converted, bytes a database refuses. Money a client paid is
recorded once or sent to a person, never lost; bad input never gives a 500."""

import datetime as dt
import io
import time

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client as HttpClient

from mwolo.billing.models import ExchangeRate, Invoice
from mwolo.core import clock
from mwolo.integrations.payments import PushRequest, provider_for
from mwolo.integrations.payments.base import PaymentStatus
from mwolo.payments import services
from mwolo.payments.models import Payment, PaymentIntent, PaymentReview, WebhookCall
from mwolo.payments.tests.factories import D

pytestmark = pytest.mark.django_db(transaction=True)

PAYS = "+243970000101"
WAIT_S = 20


def wait_for(intent, status):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        intent.refresh_from_db()
        if intent.status == status:
            return intent
        time.sleep(0.05)
    raise AssertionError(f"{intent.reference} still {intent.status}")


def request_for(intent):
    return PushRequest(
        reference=intent.reference,
        amount=intent.amount,
        currency=intent.currency,
        msisdn=intent.msisdn.as_e164,
        description="Facture",
        callback_url="http://127.0.0.1:9/unused/",
    )


def test_a_push_whose_reply_was_lost_is_paid_once_by_its_callback(platform, owing, settings):
    client, invoice, user = owing
    # Airtel answers after the adapter has given up waiting: the prompt went out all the same.
    patient = settings.MOBILE_MONEY
    settings.MOBILE_MONEY = {**patient, "airtel": {**patient["airtel"], "read_timeout": 0.3}}
    platform.script(PAYS, "success", reply_delay=1.0)

    intent = services.payment_intent_create(
        client_id=client.pk,
        provider="airtel",
        msisdn=PAYS,
        amount=D(24940),
        currency="CDF",
        actor=user,
        invoice_id=invoice.pk,
    )

    pushed = PaymentIntent.objects.get(pk=intent.pk)
    assert pushed.push_error
    assert pushed.provider_reference == intent.reference  # Airtel knows it by ours
    settings.MOBILE_MONEY = patient  # its later answers come in time
    platform.wait_until_done("airtel", intent.reference)
    # Its callback, matched by our reference, or else the reconciliation records it: once.
    services.payment_intents_reconcile()
    wait_for(intent, PaymentStatus.SUCCEEDED)
    assert Payment.objects.filter(intent=intent).count() == 1
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


@pytest.mark.parametrize(
    ("outcome", "settled_by"),
    [("success", "callback"), ("no_callback", "reconciliation")],
)
def test_a_vodacom_payment_whose_reply_was_lost_is_settled_by_its_callback_or_the_reconciliation(
    platform, owing, settings, outcome, settled_by
):
    """Vodacom's payment call answers only once the customer has typed the PIN: here its
    reply comes after the adapter stopped waiting, so the money is recorded by what
    follows, never by the reply."""
    client, invoice, user = owing
    patient = settings.MOBILE_MONEY
    settings.MOBILE_MONEY = {**patient, "vodacom": {**patient["vodacom"], "push_read_timeout": 0.5}}
    # The customer pays at once; the reply (and the status replies) wait 2 s.
    platform.script(PAYS, outcome, reply_delay=2.0)

    intent = services.payment_intent_create(
        client_id=client.pk,
        provider="vodacom",
        msisdn=PAYS,
        amount=D(24940),
        currency="CDF",
        actor=user,
        invoice_id=invoice.pk,
    )

    pushed = PaymentIntent.objects.get(pk=intent.pk)
    assert "no answer in time" in pushed.push_error  # the reply was lost...
    assert pushed.provider_reference == intent.reference  # ...Vodacom knows it by ours
    sent = platform.wait_until_done("vodacom", intent.reference)
    if settled_by == "reconciliation":
        assert sent["callbacks"] == []
        assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.PENDING
        assert services.payment_intents_reconcile().settled == 1
    wait_for(intent, PaymentStatus.SUCCEEDED)

    payment = Payment.objects.get(intent=intent)
    assert payment.operator_transaction_id == sent["receipt"]
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    calls = WebhookCall.objects.filter(intent=intent)
    if settled_by == "callback":
        assert [(c["status"]) for c in sent["callbacks"]] == [200]
        assert list(calls.values_list("outcome", flat=True)) == [WebhookCall.Outcome.SETTLED]
    else:
        assert not calls.exists()
    assert services.payment_intents_reconcile().settled == 0  # nothing twice


def test_a_push_sent_twice_is_asked_about_not_failed(platform, owing):
    client, invoice, _user = owing
    intent = PaymentIntent.objects.create(
        client=client,
        purpose=PaymentIntent.Purpose.INVOICE,
        invoice=invoice,
        provider="airtel",
        msisdn="+243970000998",  # pays; no callback comes
        amount=D(24940),
        currency="CDF",
        expires_at=clock.now() + services.INTENT_LIFETIME,
    )
    # A first push reached Airtel, and its task died before keeping the answer.
    provider_for("airtel").push(request_for(intent))
    platform.wait_until_done("airtel", intent.reference)

    again = services.payment_intent_push(intent_id=intent.pk)

    assert again.status == PaymentStatus.PENDING  # Airtel said "duplicate": not a failure
    assert again.provider_reference == intent.reference
    assert services.payment_intents_reconcile().settled == 1
    assert Payment.objects.filter(intent=intent).count() == 1


def test_the_reconciliation_does_not_push_again_while_a_push_may_be_waiting(platform, owing):
    client, invoice, _user = owing
    intent = PaymentIntent.objects.create(
        client=client,
        purpose=PaymentIntent.Purpose.INVOICE,
        invoice=invoice,
        provider="airtel",
        msisdn=PAYS,
        amount=D(24940),
        currency="CDF",
        expires_at=clock.now() + services.INTENT_LIFETIME,
    )

    soon = services.payment_intents_reconcile()
    later = services.payment_intents_reconcile(
        as_of=clock.now() + services.PUSH_GRACE + dt.timedelta(seconds=1)
    )

    assert soon.pushed == 0
    assert later.pushed == 1
    assert PaymentIntent.objects.get(pk=intent.pk).provider_reference == intent.reference


def test_paying_in_a_currency_without_a_rate_is_refused_before_the_push(platform, owing):
    client, invoice, user = owing

    with pytest.raises(ValidationError) as refused:
        services.payment_intent_create(
            client_id=client.pk,
            provider="airtel",
            msisdn=PAYS,
            amount=D(9),
            currency="USD",
            actor=user,
            invoice_id=invoice.pk,
        )

    assert "taux" in refused.value.message_dict["currency"][0]
    assert not PaymentIntent.objects.exists()
    assert not platform.requests("airtel")


def test_paid_money_that_cannot_be_converted_goes_to_review_and_the_reconciliation_goes_on(
    platform, owing
):
    client, invoice, user = owing
    rate = ExchangeRate.objects.create(day=clock.today(), cdf_per_usd=D(2800))
    platform.script(PAYS, "no_callback")
    intent = services.payment_intent_create(
        client_id=client.pk,
        provider="airtel",
        msisdn=PAYS,
        amount=D(9),
        currency="USD",
        actor=user,
        invoice_id=invoice.pk,
    )
    platform.wait_until_done("airtel", intent.reference)
    rate.delete()  # the rate was withdrawn (a typing error) while the client paid
    later = services.payment_intent_create(
        client_id=client.pk,
        provider="airtel",
        msisdn="+243970000998",  # pays; its callback never comes
        amount=D(100),
        currency="CDF",
        actor=user,
        invoice_id=invoice.pk,
    )
    platform.wait_until_done("airtel", later.reference)

    report = services.payment_intents_reconcile()

    review = PaymentReview.objects.get(intent=intent)
    assert "taux" in review.reason
    assert (review.amount, review.currency) == (D(9), "USD")
    assert not Payment.objects.filter(intent=intent).exists()
    assert report.checked == 2
    assert Payment.objects.filter(intent=later).count() == 1
    # A person decides that one now: the operator is not asked about it again.
    assert services.payment_intents_reconcile().checked == 0
    assert PaymentReview.objects.filter(intent=intent).count() == 1


def test_a_callback_with_a_nul_byte_is_stored_and_refused(platform, live_server, owing):
    response = httpx.post(
        f"{live_server.url}/api/payments/webhooks/airtel/",
        content=b'{"transaction": {"id": "PI\x00X"}}',
        headers={"Content-Type": "application/json", "X-Note": "a"},
        timeout=10,
    )

    assert response.status_code in (400, 403)
    call = WebhookCall.objects.get()
    assert call.outcome == WebhookCall.Outcome.REJECTED
    assert "\x00" not in call.body
    assert not Payment.objects.exists()


def test_a_callback_with_a_length_that_is_not_a_number_is_refused(db):
    response = HttpClient().post(
        "/api/payments/webhooks/airtel/",
        data=b"{}",
        content_type="application/json",
        CONTENT_LENGTH="abc",
    )

    assert response.status_code == 400
    assert not WebhookCall.objects.exists()


def test_an_operator_without_a_contract_is_neither_offered_nor_listened_to(
    platform, live_server, owing, settings
):
    client, invoice, user = owing
    settings.MOBILE_MONEY_OPERATORS = ["airtel", "orange"]

    with pytest.raises(ValidationError) as refused:
        services.payment_intent_create(
            client_id=client.pk,
            provider="mpesa",
            msisdn=PAYS,
            amount=D(24940),
            currency="CDF",
            actor=user,
            invoice_id=invoice.pk,
        )
    answer = httpx.post(
        f"{live_server.url}/api/payments/webhooks/mpesa/anything/",
        content=b"{}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert "n’est pas proposé" in refused.value.message_dict["provider"][0]
    assert not PaymentIntent.objects.exists()
    assert answer.status_code == 404
    assert WebhookCall.objects.get().outcome == WebhookCall.Outcome.REJECTED


def test_the_reconciliation_command_settles_a_payment_whose_callback_never_came(platform, owing):
    client, invoice, user = owing
    intent = services.payment_intent_create(
        client_id=client.pk,
        provider="airtel",
        msisdn="+243970000998",  # pays; no callback comes
        amount=D(24940),
        currency="CDF",
        actor=user,
        invoice_id=invoice.pk,
    )
    platform.wait_until_done("airtel", intent.reference)
    out = io.StringIO()

    call_command("reconcile_payments", stdout=out)
    call_command("reconcile_payments", stdout=out)

    assert Payment.objects.filter(intent=intent).count() == 1
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    first, second = out.getvalue().splitlines()
    assert first.startswith("1 requests checked: 1 paid")
    assert second.startswith("0 requests checked")
