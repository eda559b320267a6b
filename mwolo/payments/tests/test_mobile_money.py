"""Mobile money end to end: push to the operator simulator, its real callbacks to our
webhook on a live server, the status query, the payment, the receipt; and the attacks."""

import json
import subprocess
import threading
import time
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import UserFactory
from mwolo.billing.models import Invoice
from mwolo.billing.selectors import client_balances
from mwolo.core import clock
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.core.testing.operators import CALLBACK_SECRETS
from mwolo.integrations.payments import PushRequest, provider_for
from mwolo.integrations.payments.base import PaymentStatus, StatusResult
from mwolo.notifications.models import Notification
from mwolo.payments import services
from mwolo.payments.models import Payment, PaymentIntent, PaymentReview, WebhookCall
from mwolo.payments.tests.factories import D

pytestmark = pytest.mark.django_db(transaction=True)

PAYS = "+243970000101"  # any number the simulator does not read as a scripted outcome
EXPIRES = "+243970000995"  # the simulator's customer who never answers the prompt
WAIT_S = 20
OWED = D(24940)


def wait_for(intent, *statuses):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        intent.refresh_from_db()
        if intent.status in statuses:
            return intent
        time.sleep(0.05)
    raise AssertionError(f"{intent} is {intent.status}, not {statuses}")


def pay(client, invoice, user, provider, msisdn=PAYS, amount=OWED):
    return services.payment_intent_create(
        client_id=client.pk,
        provider=provider,
        msisdn=msisdn,
        amount=amount,
        currency="CDF",
        actor=user,
        invoice_id=invoice.pk,
    )


def receipt_text(payment, tmp_path):
    from mwolo.payments.delivery import receipt_pdf

    path = tmp_path / "receipt.pdf"
    path.write_bytes(receipt_pdf(payment_id=payment.pk).open("rb").read())
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


LABELS = {
    "mpesa": "M-Pesa",
    "vodacom": "Vodacom M-Pesa",
    "airtel": "Airtel Money",
    "orange": "Orange Money",
}


def wait_for_notice(client, event):
    """The client's notice of ``event`` once it has left the outbox."""
    deadline = time.monotonic() + WAIT_S
    while True:
        notice = Notification.objects.filter(event=event, client=client).first()
        if notice is not None and notice.status == Notification.Status.SENT:
            return notice
        assert time.monotonic() < deadline, f"no {event} notice sent"
        time.sleep(0.05)


def readable(text):
    """Text with the spaces French number formats use made plain."""
    return " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())


@pytest.mark.parametrize("provider", ["mpesa", "vodacom", "airtel", "orange"])
def test_a_client_pays_an_invoice_by_mobile_money(platform, owing, provider, tmp_path):
    client, invoice, user = owing
    if provider == "vodacom":
        # Vodacom's payment call answers when the customer has typed the PIN, the moment
        # it calls the result URL too. Its reply (and status replies) wait a second here,
        # so it is the callback that records the payment; the late reply finds it paid.
        platform.script(PAYS, "success", reply_delay=1.0)

    intent = pay(client, invoice, user, provider)
    if provider == "orange":  # the client is sent to Orange's page and pays there
        intent = wait_for_pushed(intent)
        platform.pay_orange(intent.payment_url, PAYS)
    intent = wait_for(intent, PaymentStatus.SUCCEEDED)

    # The operator's callback came once, was answered as it expects, kept as it came and
    # confirmed: it is what recorded the payment.
    sent = platform.wait_until_done(provider, intent.provider_reference)
    assert [callback.get("status") for callback in sent["callbacks"]] == [200]
    call = wait_until_confirmed({"intent": intent})
    assert (call.provider, call.outcome) == (provider, WebhookCall.Outcome.SETTLED)
    assert WebhookCall.objects.filter(intent=intent).count() == 1
    assert sent["receipt"] in call.body
    payment = Payment.objects.get(intent=intent)
    assert (payment.method, payment.amount, payment.credited) == (provider, D(24940), D(24940))
    assert payment.operator_transaction_id == sent["receipt"]
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    assert client_balances(client_id=client.pk) == {"CDF": D("0.00")}
    # The receipt says what was paid, how, for which invoice, and that nothing is left.
    text = readable(receipt_text(payment, tmp_path))
    assert payment.receipt_number in text
    assert "24 940,00 CDF" in text
    assert invoice.number in text
    assert LABELS[provider] in text
    assert payment.operator_transaction_id in text
    # The client is told once, by SMS to their own number (their channel), in French.
    notice = wait_for_notice(client, "payment_receipt")
    assert Notification.objects.filter(event="payment_receipt", client=client).count() == 1
    assert (notice.channel, notice.recipient) == ("sms", client.phone.as_e164)
    today = clock.today("Africa/Kinshasa")
    assert readable(notice.body).startswith(
        f"Mwolo Energy: paiement de 24 940,00 CDF enregistré le {today:%d/%m/%Y}"
    )
    assert f"({LABELS[provider]}), réf. {payment.receipt_number}." in notice.body
    assert "Reste à payer: 0,00 CDF" in readable(notice.body)


def wait_for_pushed(intent):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        intent.refresh_from_db()
        if intent.pushed_at:
            return intent
        time.sleep(0.05)
    raise AssertionError("never pushed")


@pytest.mark.parametrize(
    ("msisdn", "status"),
    [
        ("+243970000991", PaymentStatus.FAILED),
        ("+243970000992", PaymentStatus.CANCELLED),
        ("+243970000993", PaymentStatus.INSUFFICIENT_FUNDS),
        ("+243970000994", PaymentStatus.WRONG_PIN),
    ],
)
def test_a_refused_payment_is_told_clearly_records_nothing_and_can_be_retried(
    platform, owing, msisdn, status
):
    client, invoice, user = owing

    intent = wait_for(pay(client, invoice, user, "airtel", msisdn=msisdn), status)

    assert not Payment.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.ISSUED
    assert intent.get_status_display()  # a French label for the client
    again = services.payment_intent_retry(intent_id=intent.pk, actor=user)
    assert again.pk != intent.pk
    assert (again.amount, again.msisdn, again.invoice_id) == (
        intent.amount,
        intent.msisdn,
        invoice.pk,
    )


INTENTS = "/api/payments/intents/"


def api_as(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_a_failed_request_is_tried_again_through_the_api_and_paid(platform, owing):
    client, invoice, user = owing
    api = api_as(user)
    platform.script(PAYS, "failed")  # the first push to this number fails, the next pays

    asked = api.post(
        INTENTS,
        {
            "provider": "airtel",
            "msisdn": PAYS,
            "amount": "24940",
            "currency": "CDF",
            "invoice": invoice.pk,
        },
    )
    assert asked.status_code == 201
    failed = wait_for(PaymentIntent.objects.get(pk=asked.json()["id"]), PaymentStatus.FAILED)
    shown = api.get(f"{INTENTS}{failed.pk}/").json()
    assert (shown["status"], shown["status_label"], shown["receipt_number"]) == (
        "failed",
        "Échoué",
        None,
    )

    retried = api.post(f"{INTENTS}{failed.pk}/retry/")

    assert retried.status_code == 201
    again = retried.json()
    assert again["id"] != failed.pk
    assert again["reference"] != failed.reference
    assert (again["provider"], again["msisdn"], again["amount"], again["invoice"]) == (
        "airtel",
        "+243 970 000 101",
        "24940.00",
        invoice.pk,
    )
    paid = wait_for(PaymentIntent.objects.get(pk=again["id"]), PaymentStatus.SUCCEEDED)
    payment = Payment.objects.get()
    assert payment.intent == paid
    shown = api.get(f"{INTENTS}{paid.pk}/").json()
    assert (shown["status"], shown["status_label"], shown["receipt_number"]) == (
        "succeeded",
        "Payé",
        payment.receipt_number,
    )
    assert PaymentIntent.objects.get(pk=failed.pk).status == PaymentStatus.FAILED
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    assert client_balances(client_id=client.pk) == {"CDF": D("0.00")}
    assert [t["reference"] for t in platform.transactions("airtel")] == [
        failed.reference,
        paid.reference,
    ]


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            "pending",
            "Cette demande n’est pas encore réglée : attendez son issue avant de réessayer.",
        ),
        ("paid", "Cette demande est payée : rien à relancer."),
    ],
)
def test_a_pending_or_paid_request_is_not_tried_again(platform, owing, state, message):
    client, invoice, user = owing
    if state == "pending":  # the customer has the prompt and has not answered yet
        platform.script(PAYS, "success", hold=True)
    intent = wait_for_pushed(pay(client, invoice, user, "airtel"))
    if state == "paid":
        intent = wait_for(intent, PaymentStatus.SUCCEEDED)
    pushes = len(platform.transactions("airtel"))

    refused = api_as(user).post(f"{INTENTS}{intent.pk}/retry/")

    assert refused.status_code == 400
    assert refused.json() == {"detail": message}
    assert list(PaymentIntent.objects.values_list("pk", flat=True)) == [intent.pk]
    assert len(platform.transactions("airtel")) == pushes
    assert Payment.objects.count() == (1 if state == "paid" else 0)


@pytest.mark.parametrize("provider", ["mpesa", "vodacom", "airtel"])
def test_a_request_the_operator_reports_expired_is_shown_expired_and_may_be_tried_again(
    platform, live_server, owing, provider
):
    client, invoice, user = owing
    # The customer never answered the prompt: the operator says it timed out.
    intent = wait_for(pay(client, invoice, user, provider, msisdn=EXPIRES), PaymentStatus.EXPIRED)
    platform.wait_until_done(provider, intent.provider_reference)

    shown = api_as(user).get(f"{INTENTS}{intent.pk}/").json()
    page = httpx.get(f"{live_server.url}/paiement/{intent.reference}/", timeout=10)

    assert (shown["status"], shown["status_label"]) == ("expired", "Expiré sans réponse")
    assert page.status_code == 200
    assert (
        "Expiré sans réponse. Rien n’a été prélevé sur votre compte : vous pouvez réessayer."
        in page.text
    )
    assert 'http-equiv="refresh"' not in page.text  # final: the page stops polling
    assert not Payment.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.ISSUED
    assert api_as(user).post(f"{INTENTS}{intent.pk}/retry/").status_code == 201


def test_a_missing_callback_is_settled_by_the_reconciliation(platform, owing):
    client, invoice, user = owing
    intent = pay(client, invoice, user, "mpesa", msisdn="+243970000998")  # no callback
    platform.wait_until_done("mpesa", wait_for_pushed(intent).provider_reference)
    assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.PENDING

    report = services.payment_intents_reconcile()

    assert report.settled == 1
    assert Payment.objects.get(intent=intent).operator_transaction_id
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    assert services.payment_intents_reconcile().settled == 0


def test_duplicate_and_late_callbacks_record_one_payment(platform, owing):
    client, invoice, user = owing
    duplicated = wait_for(
        pay(client, invoice, user, "airtel", msisdn="+243970000997"), PaymentStatus.SUCCEEDED
    )
    platform.wait_until_done("airtel", duplicated.reference)
    time.sleep(0.3)

    assert Payment.objects.filter(intent=duplicated).count() == 1
    outcomes = sorted(
        WebhookCall.objects.filter(intent=duplicated).values_list("outcome", flat=True)
    )
    assert outcomes.count("settled") == 1
    assert len(outcomes) == 3


def test_an_expired_push_is_expired_by_the_reconciliation(platform, owing):
    client, invoice, user = owing
    intent = pay(client, invoice, user, "orange")
    intent = wait_for_pushed(intent)  # nobody opens Orange's page

    report = services.payment_intents_reconcile(as_of=clock.now() + services.INTENT_LIFETIME)

    assert report.expired == 1
    assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.EXPIRED
    assert not Payment.objects.exists()


# --- Attacks ------------------------------------------------------------------------------


def post(live_server, path, body, headers=None):
    return httpx.post(
        f"{live_server.url}{path}",
        content=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=10,
    )


def airtel_callback(reference, status="TS", money_id="MP261201.1200.A00001"):
    return {
        "transaction": {
            "id": reference,
            "message": "Paid",
            "status_code": status,
            "airtel_money_id": money_id,
        }
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/api/payments/webhooks/airtel/", b"{not json", 400, "not_json"),
        ("/api/payments/webhooks/airtel/", airtel_callback("PIXXXX"), 403, "unsigned"),
        ("/api/payments/webhooks/mpesa/wrong-secret/", {"Body": {}}, 403, "bad_path_secret"),
        ("/api/payments/webhooks/mpesa/", {"Body": {}}, 403, "bad_path_secret"),
        ("/api/payments/webhooks/orange/PINOSUCHREF/", {"status": "SUCCESS"}, 404, "no such"),
        ("/api/payments/webhooks/paypal/", {}, 404, "unknown operator"),
    ],
)
def test_forged_and_malformed_callbacks_are_refused_stored_and_record_nothing(
    platform, live_server, owing, path, body, status, detail
):
    response = post(live_server, path, body)

    assert response.status_code == status
    call = WebhookCall.objects.get()
    assert call.outcome in ("rejected", "unknown")
    assert detail in call.detail
    assert not Payment.objects.exists()


def test_a_signed_callback_with_a_wrong_signature_is_refused(platform, live_server, owing):
    client, invoice, user = owing
    intent = wait_for_pushed(pay(client, invoice, user, "airtel", msisdn="+243970000998"))
    body = airtel_callback(intent.reference)
    body["hash"] = "AAAA" + "=" * 40

    response = post(live_server, "/api/payments/webhooks/airtel/", body)

    assert response.status_code == 403
    assert WebhookCall.objects.filter(outcome="rejected", detail__contains="bad_signature").exists()
    assert not Payment.objects.exists()


def vodacom_callback_caught(platform, owing, settings, callback_receiver):
    """A paid Vodacom push whose result went to the test's receiver instead of the
    webhook, and whose synchronous reply the adapter stopped waiting for: the request is
    pending until a callback is confirmed. (intent, the callback as Vodacom sent it)."""
    client, invoice, user = owing
    platform.configure(vodacom_callback_url=callback_receiver.url("/vodacom/"))
    patient = settings.MOBILE_MONEY
    settings.MOBILE_MONEY = {**patient, "vodacom": {**patient["vodacom"], "push_read_timeout": 0.3}}
    platform.script(PAYS, "success", reply_delay=1.0)
    intent = pay(client, invoice, user, "vodacom")
    settings.MOBILE_MONEY = patient
    (caught,) = callback_receiver.wait_for("/vodacom/", 1)
    return PaymentIntent.objects.get(pk=intent.pk), caught.body


def orange_notification_caught(platform, owing, settings, callback_receiver):
    """A payment made on Orange's page whose notification went to the test's receiver
    (its notif_url is built from the public address): (intent, the notification as
    Orange sent it, the webhook path it was sent to)."""
    client, invoice, user = owing
    settings.MWOLO_PUBLIC_URL = callback_receiver.url("").rstrip("/")
    intent = wait_for_pushed(pay(client, invoice, user, "orange"))
    platform.pay_orange(intent.payment_url, PAYS)
    (caught,) = callback_receiver.wait_for("/api/payments/webhooks/orange/", 1)
    assert caught.path == f"/api/payments/webhooks/orange/{intent.reference}/"
    return intent, caught.body, caught.path


def status_queries(platform, provider):
    """The status queries the operator has seen (Orange's and Vodacom's paths)."""
    return [
        seen
        for seen in platform.requests(provider)
        if seen["path"].endswith(("/transactionstatus", "/queryTransactionStatus/"))
    ]


@pytest.mark.parametrize("provider", ["vodacom", "orange"])
def test_a_callback_with_a_wrong_secret_or_token_is_refused_through_the_live_webhook(
    platform, live_server, owing, settings, callback_receiver, provider
):
    """The operator's own callback, caught on its way, sent to the live webhook with its
    only proof changed: Vodacom's secret in the URL, Orange's notif_token."""
    client, invoice, _user = owing
    if provider == "vodacom":
        intent, body = vodacom_callback_caught(platform, owing, settings, callback_receiver)
        path = f"/api/payments/webhooks/vodacom/{CALLBACK_SECRETS['vodacom']}/"
        forged_path, forged = "/api/payments/webhooks/vodacom/not-the-secret/", body
        reason = "bad_path_secret"
    else:
        intent, body, path = orange_notification_caught(
            platform, owing, settings, callback_receiver
        )
        notification = json.loads(body)
        assert notification["notif_token"] == intent.provider_extra["notif_token"]
        forged_path = path
        forged = json.dumps({**notification, "notif_token": "0" * 32}).encode()
        reason = "bad_notif_token"
    assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.PENDING
    asked = len(status_queries(platform, provider))

    refused = post(live_server, forged_path, forged)

    assert refused.status_code == 403
    assert refused.json() == {"detail": reason}
    call = WebhookCall.objects.get()
    assert (call.provider, call.outcome) == (provider, WebhookCall.Outcome.REJECTED)
    assert call.detail.startswith(reason)
    assert call.body == forged.decode()  # kept as it came
    assert len(status_queries(platform, provider)) == asked  # the operator was not asked
    assert not Payment.objects.exists()
    assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.PENDING
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.ISSUED
    assert client_balances(client_id=client.pk) == {"CDF": OWED}
    # The same callback with its proof as the operator sent it records the payment.
    accepted = post(live_server, path, body)
    assert accepted.status_code == 200
    assert wait_until_confirmed({"intent": intent}).outcome == WebhookCall.Outcome.SETTLED
    assert len(status_queries(platform, provider)) == asked + 1
    assert Payment.objects.get().intent == intent


def test_a_callback_claiming_success_is_believed_only_if_the_operator_confirms(
    platform, live_server, owing
):
    client, invoice, user = owing
    # The customer has not answered yet: the operator's status says pending.
    platform.script("+243970000555", "success", hold=True)
    intent = wait_for_pushed(pay(client, invoice, user, "mpesa", msisdn="+243970000555"))
    forged = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "x",
                "CheckoutRequestID": intent.provider_reference,
                "ResultCode": 0,
                "ResultDesc": "ok",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 24940},
                        {"Name": "MpesaReceiptNumber", "Value": "FORGED1"},
                        {"Name": "PhoneNumber", "Value": 243970000555},
                    ]
                },
            }
        }
    }

    response = post(
        live_server, f"/api/payments/webhooks/mpesa/{CALLBACK_SECRETS['mpesa']}/", forged
    )

    assert response.status_code == 200  # Daraja is told "received"; nothing is recorded
    assert WebhookCall.objects.get().outcome == "pending"
    assert not Payment.objects.exists()
    assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.PENDING


# --- What the operator reports must be what was asked ----------------------------------------
#
# Of the four operators' formats, only Daraja's callback says what was paid: ``Amount`` and
# ``PhoneNumber`` in its ``CallbackMetadata``. Vodacom's and Airtel's callbacks and every
# status query name neither, Orange's payer types any number on its page (not checked),
# and no operator states a currency (Daraja none at all). So an amount or a payer that
# differs reaches the platform end to end only in an authenticated Daraja callback, which
# is what is sent here: the operator's own callback, caught on its way, one field changed
# (what a leaked callback secret or an error at the operator would produce). The currency
# check guards against an adapter that one day reports one; only the service test after
# these reaches it.


def daraja_callback_caught(platform, owing, settings, callback_receiver):
    """A paid M-Pesa push whose callback went to the test's receiver instead of the
    webhook: (intent, the callback as Daraja sent it, the webhook path it was sent to)."""
    client, invoice, user = owing
    # Daraja calls back the CallBackURL of each push, built from the public address.
    settings.MWOLO_PUBLIC_URL = callback_receiver.url("").rstrip("/")
    intent = wait_for_pushed(pay(client, invoice, user, "mpesa"))
    (caught,) = callback_receiver.wait_for("/api/payments/webhooks/mpesa/", 1)
    assert caught.path == f"/api/payments/webhooks/mpesa/{CALLBACK_SECRETS['mpesa']}/"
    return intent, json.loads(caught.body), caught.path


def metadata(callback):
    return {
        item["Name"]: item.get("Value")
        for item in callback["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    }


def with_metadata(callback, name, value):
    changed = json.loads(json.dumps(callback))
    for item in changed["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] == name:
            item["Value"] = value
    return changed


def wait_until_confirmed(call_filter):
    deadline = time.monotonic() + WAIT_S
    while True:
        call = WebhookCall.objects.filter(**call_filter).first()
        if call is not None and call.outcome != WebhookCall.Outcome.QUEUED:
            return call
        assert time.monotonic() < deadline, "the callback was never confirmed"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("Amount", 2494, "montant 2494 au lieu de 24940"),
        ("PhoneNumber", 243970000777, "payé depuis +243970000777"),
    ],
)
def test_a_daraja_callback_reporting_another_amount_or_payer_goes_to_review(
    platform, live_server, owing, settings, callback_receiver, field, value, reason
):
    client, invoice, _user = owing
    intent, callback, path = daraja_callback_caught(platform, owing, settings, callback_receiver)
    assert metadata(callback)["Amount"] == 24940  # as Daraja sent it
    assert metadata(callback)["PhoneNumber"] == 243970000101

    response = post(live_server, path, with_metadata(callback, field, value))

    assert response.status_code == 200  # Daraja is told "received"
    call = wait_until_confirmed({"intent": intent})
    assert call.outcome == WebhookCall.Outcome.REVIEW
    assert reason in call.detail
    review = PaymentReview.objects.get()
    assert review.intent == intent
    assert reason in review.reason
    assert review.operator_transaction_id == metadata(callback)["MpesaReceiptNumber"]
    reported = with_metadata(callback, field, value)
    assert review.amount == D(metadata(reported)["Amount"])
    assert review.payer == f"+{metadata(reported)['PhoneNumber']}"
    assert review.resolved_at is None
    # Nothing recorded: no payment, the invoice and the balance as they were; and the
    # reconciliation, even past the request's lifetime, leaves the decision to a person.
    report = services.payment_intents_reconcile(as_of=clock.now() + services.INTENT_LIFETIME)
    assert (report.checked, report.expired) == (0, 0)
    assert not Payment.objects.exists()
    assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.PENDING
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.ISSUED
    assert client_balances(client_id=client.pk) == {"CDF": OWED}


def test_a_daraja_callback_as_sent_is_settled(
    platform, live_server, owing, settings, callback_receiver
):
    """The same path with nothing changed records the payment: the review above is the
    changed field's doing."""
    _client, invoice, _user = owing
    intent, callback, path = daraja_callback_caught(platform, owing, settings, callback_receiver)

    response = post(live_server, path, callback)

    assert response.status_code == 200
    assert wait_until_confirmed({"intent": intent}).outcome == WebhookCall.Outcome.SETTLED
    payment = Payment.objects.get(intent=intent)
    assert payment.operator_transaction_id == metadata(callback)["MpesaReceiptNumber"]
    assert not PaymentReview.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


@pytest.mark.parametrize("provider", ["mpesa", "vodacom", "airtel"])
def test_an_authenticated_callback_for_a_request_we_never_made_is_kept_and_refused(
    platform, live_server, owing, provider
):
    """The operator itself calls back about a payment the platform never asked for
    (another application on the merchant's account, a request deleted): Airtel's callback
    properly signed, Daraja's and Vodacom's at the URL with the secret."""
    client, invoice, _user = owing
    # Pushed straight through the adapter: the operator has it, the platform does not.
    result = provider_for(provider).push(
        PushRequest(
            reference="PINOTOURS01",
            amount=D(5000),
            currency="CDF",
            msisdn=PAYS,
            description="Autre",
            callback_url=f"{live_server.url}/api/payments/webhooks/mpesa/{CALLBACK_SECRETS['mpesa']}/",
        )
    )

    sent = platform.wait_until_done(provider, result.provider_reference)

    assert [callback.get("status") for callback in sent["callbacks"]] == [404]
    call = WebhookCall.objects.get()
    assert (call.provider, call.outcome, call.intent) == (provider, "unknown", None)
    assert call.detail == result.provider_reference
    assert result.provider_reference in call.body  # kept as it came
    if provider == "airtel":
        assert "hash" in json.loads(call.body)  # signed, and the signature held
    assert not Payment.objects.exists()
    assert not PaymentReview.objects.exists()
    assert not PaymentIntent.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.ISSUED
    assert client_balances(client_id=client.pk) == {"CDF": OWED}


def test_an_amount_the_operator_did_not_agree_to_goes_to_review(owing):
    # No operator's format states a currency (see above): the check is reached only here.
    client, invoice, _user = owing
    intent = PaymentIntent.objects.create(
        client=client,
        purpose=PaymentIntent.Purpose.INVOICE,
        invoice=invoice,
        provider="airtel",
        msisdn=PAYS,
        amount=D(24940),
        currency="CDF",
        provider_reference="PIREVIEW01",
        expires_at=invoice.created_at,
    )
    answer = StatusResult(
        status=PaymentStatus.SUCCEEDED,
        transaction_id="MP1",
        amount=Decimal(100),
        currency="USD",
        payer="243970000101",
        message="",
        raw={},
    )

    settled = services._settle(intent.pk, answer, None)

    assert settled.outcome == "review"
    review = PaymentReview.objects.get()
    assert "100" in review.reason
    assert "USD" in review.reason
    assert not Payment.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.ISSUED


def test_fifty_copies_of_one_callback_at_once_record_one_payment(
    platform, live_server, owing, callback_receiver
):
    client, invoice, user = owing
    # Airtel's callbacks go to a receiver of the test's first, to be replayed.
    platform.configure(airtel_callback_url=callback_receiver.url("/airtel/"))
    intent = pay(client, invoice, user, "airtel")
    (original,) = callback_receiver.wait_for("/airtel/", 1)
    assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.PENDING
    start = threading.Barrier(50)
    answers = []

    def replay():
        start.wait()
        answers.append(
            httpx.post(
                f"{live_server.url}/api/payments/webhooks/airtel/",
                content=original.body,
                headers={"Content-Type": "application/json"},
                timeout=60,
            ).status_code
        )

    threads = [threading.Thread(target=replay) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [200] * 50
    assert Payment.objects.count() == 1
    assert WebhookCall.objects.filter(outcome="settled").count() == 1
    assert WebhookCall.objects.count() == 50
    assert client_balances(client_id=client.pk) == {"CDF": D("0.00")}


def test_a_callback_confirmed_twice_records_one_payment(
    platform, live_server, owing, callback_receiver
):
    client, invoice, user = owing
    platform.configure(airtel_callback_url=callback_receiver.url("/airtel/"))
    intent = pay(client, invoice, user, "airtel")
    (original,) = callback_receiver.wait_for("/airtel/", 1)

    answer = httpx.post(
        f"{live_server.url}/api/payments/webhooks/airtel/",
        content=original.body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    # A worker stopped before it acknowledged the confirmation runs it again.
    again = services.webhook_confirm(
        call_id=WebhookCall.objects.get().pk,
        intent_id=intent.pk,
        claim={"transaction_id": None, "amount": None, "currency": None, "payer": None},
    )

    assert answer.status_code == 200
    assert again == WebhookCall.Outcome.DUPLICATE
    assert Payment.objects.count() == 1
    assert client_balances(client_id=client.pk) == {"CDF": D("0.00")}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": D(0)}, "amount"),
        ({"amount": D("100.50"), "provider": "mpesa"}, "amount"),
        ({"msisdn": "+33612345678"}, "msisdn"),
        ({"msisdn": "0812"}, "msisdn"),
        ({"provider": "paypal"}, "provider"),
        ({"currency": "EUR"}, "currency"),
    ],
)
def test_a_bad_request_is_refused_and_nothing_is_pushed(platform, owing, changes, field):
    from django.core.exceptions import ValidationError

    client, _invoice, user = owing
    request = {
        "client_id": client.pk,
        "provider": "airtel",
        "msisdn": PAYS,
        "amount": D(5000),
        "currency": "CDF",
        "actor": user,
        **changes,
    }

    with pytest.raises(ValidationError) as refused:
        services.payment_intent_create(**request)

    assert field in refused.value.message_dict
    assert not PaymentIntent.objects.exists()
    assert platform.requests() == []


def test_prepaid_credit_bought_by_mobile_money_gives_a_token_on_the_receipt(platform, tmp_path):
    from mwolo.billing.models import ExchangeRate
    from mwolo.billing.tests.factories import metered_site, tariff
    from mwolo.core import clock
    from mwolo.metering.models import PrepaidToken

    tariff()
    ExchangeRate.objects.create(day=clock.today(), cdf_per_usd=Decimal(2800))
    site = metered_site(prepaid=True)
    user = UserFactory()
    user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
    client = site.client
    client.user = user
    client.save()

    intent = services.payment_intent_create(
        client_id=client.pk,
        provider="airtel",
        msisdn=PAYS,
        amount=D(11600),  # 50 kWh at 100 CDF and 25 at 200, + 16 % VAT
        currency="CDF",
        actor=user,
        meter_id=site.meters.get().pk,
    )
    intent = wait_for(intent, PaymentStatus.SUCCEEDED)

    payment = Payment.objects.get(intent=intent)
    token = PrepaidToken.objects.get()
    assert payment.token == token
    assert token.energy_kwh == 75
    assert client_balances(client_id=client.pk) == {}
    text = receipt_text(payment, tmp_path)
    assert "75" in text
    assert token.token[:3] in text.replace(" ", "")


@pytest.mark.browser
def test_the_status_page_tells_the_client_where_their_payment_stands(page, owing, screenshots):
    client, invoice, _user = owing
    intent = PaymentIntent.objects.create(
        client=client,
        purpose=PaymentIntent.Purpose.INVOICE,
        invoice=invoice,
        provider="orange",
        msisdn=PAYS,
        amount=OWED,
        currency="CDF",
        expires_at=invoice.created_at,
    )
    url = f"/paiement/{intent.reference}/"

    page.goto(url)
    assert "En attente de la réponse de l’opérateur" in page.inner_text("main")
    assert client.display_name not in page.content()
    page.screenshot(path=screenshots / "payment-pending.png", full_page=True)
    PaymentIntent.objects.filter(pk=intent.pk).update(status=PaymentStatus.CANCELLED)
    page.goto(url)
    assert "Annulé par le client" in page.inner_text("main")
    page.screenshot(path=screenshots / "payment-cancelled.png", full_page=True)
    # The operator reported another amount: a person checks, then records nothing.
    PaymentIntent.objects.filter(pk=intent.pk).update(status=PaymentStatus.PENDING)
    review = PaymentReview.objects.create(intent=intent, reason="montant 100 au lieu de 24940")
    page.goto(url)
    assert "notre personnel la vérifie" in page.inner_text("main")
    assert "En attente de la réponse" not in page.inner_text("main")
    page.screenshot(path=screenshots / "payment-in-review.png", full_page=True)
    review.resolved_at = clock.now()
    review.save()
    PaymentIntent.objects.filter(pk=intent.pk).update(status=PaymentStatus.FAILED)
    page.goto(url)
    assert "l’opérateur rend l’argent" in page.inner_text("main")
    assert "Rien n’a été prélevé" not in page.inner_text("main")
    PaymentIntent.objects.filter(pk=intent.pk).update(status=PaymentStatus.SUCCEEDED)
    page.goto(url)
    assert "Payé" in page.inner_text("main")
    page.screenshot(path=screenshots / "payment-paid.png", full_page=True)
    assert page.goto("/paiement/PINOSUCH0000/").status == 404
