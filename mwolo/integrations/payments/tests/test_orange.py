"""The orange adapter against the simulator's Orange Money WebPay, over HTTP."""

import json
from decimal import Decimal

import pytest

from mwolo.core.testing.operators import TEST_LATE_DELAY
from mwolo.integrations.payments import (
    CallbackRejected,
    ErrorCode,
    PaymentStatus,
    ProviderError,
    RejectReason,
)
from sandbox.operators import Outcome

from .conftest import number_for


def _push(mobile_money, push_request, **fields):
    provider = mobile_money.provider("orange")
    request = push_request(**fields)
    request = push_request(
        reference=request.reference,
        callback_url=mobile_money.callback_url("orange", request.reference),
        cancel_url="http://127.0.0.1:9/annule/",
        **fields,
    )
    return provider, request, provider.push(request)


def _expected(result) -> dict[str, str]:
    return {"provider_reference": result.provider_reference, **result.extra}


def _parse(provider, result, callback):
    return provider.parse_callback(
        headers=callback.headers, body=callback.body, path_secret=None, expected=_expected(result)
    )


def test_the_customer_pays_on_the_page_and_orange_notifies_then_confirms(
    mobile_money, push_request
):
    provider, request, result = _push(mobile_money, push_request)

    assert (result.provider_reference, result.status) == (request.reference, PaymentStatus.PENDING)
    assert result.extra["payment_url"].startswith(mobile_money.sandbox.url)
    went_to = mobile_money.sandbox.pay_orange(result.extra["payment_url"], request.msisdn)
    [notification] = mobile_money.callbacks("orange")
    event = _parse(provider, result, notification)
    seen = mobile_money.sandbox.transaction("orange", request.reference)
    status = provider.query_status(provider_reference=request.reference, extra=result.extra)

    assert went_to == request.return_url
    assert notification.path == f"/orange/{request.reference}/"
    assert (event.provider_reference, event.status) == (request.reference, PaymentStatus.SUCCEEDED)
    assert event.transaction_id == seen["receipt"]
    assert (status.status, status.transaction_id) == (PaymentStatus.SUCCEEDED, seen["receipt"])
    assert (seen["amount"], seen["data"]["lang"]) == ("5000", "fr")
    assert provider.acknowledge(event).status == 200


def test_the_cancel_button_sends_the_customer_back_and_fails_the_payment(
    mobile_money, push_request
):
    provider, request, result = _push(mobile_money, push_request)

    went_to = mobile_money.sandbox.pay_orange(result.extra["payment_url"], cancel=True)
    [notification] = mobile_money.callbacks("orange")

    assert went_to == request.cancel_url
    assert _parse(provider, result, notification).status is PaymentStatus.FAILED


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome.SUCCESS, PaymentStatus.SUCCEEDED),
        (Outcome.FAILED, PaymentStatus.FAILED),
        (Outcome.CANCELLED, PaymentStatus.FAILED),
        (Outcome.INSUFFICIENT_FUNDS, PaymentStatus.FAILED),
        (Outcome.WRONG_PIN, PaymentStatus.FAILED),
        (Outcome.EXPIRED, PaymentStatus.EXPIRED),
        (Outcome.LATE_CALLBACK, PaymentStatus.SUCCEEDED),
        (Outcome.DUPLICATE_CALLBACK, PaymentStatus.SUCCEEDED),
        (Outcome.NO_CALLBACK, PaymentStatus.SUCCEEDED),
    ],
)
def test_status_and_notifications_tell_each_outcome(mobile_money, push_request, outcome, expected):
    provider, request, result = _push(mobile_money, push_request)
    mobile_money.sandbox.pay_orange(result.extra["payment_url"], number_for(outcome))
    done = mobile_money.sandbox.wait_until_done("orange", request.reference)

    status = provider.query_status(provider_reference=request.reference, extra=result.extra)
    events = [_parse(provider, result, c) for c in mobile_money.receiver.under("/orange/")]
    assert status.status is expected
    # Orange notifies payments that ended; one nobody confirmed just expires.
    assert len(events) == (0 if outcome is Outcome.EXPIRED else outcome.callbacks)
    assert {event.status for event in events} <= {expected}
    if outcome is Outcome.LATE_CALLBACK:
        assert done["callbacks"][0]["sent_at"] - done["answered_at"] >= TEST_LATE_DELAY


def test_a_payment_nobody_opens_stays_initiated_then_expires(mobile_money, push_request):
    provider, request, result = _push(mobile_money, push_request)

    untouched = provider.query_status(provider_reference=request.reference, extra=result.extra)
    mobile_money.sandbox.configure(orange_expiry=0)
    abandoned = provider.query_status(provider_reference=request.reference, extra=result.extra)

    assert (untouched.status, untouched.message) == (PaymentStatus.PENDING, "INITIATED")
    assert (abandoned.status, abandoned.message) == (PaymentStatus.EXPIRED, "EXPIRED")


def test_the_status_is_pending_while_the_customer_confirms(mobile_money, push_request):
    provider, request, result = _push(mobile_money, push_request)
    mobile_money.sandbox.script(request.msisdn, Outcome.SUCCESS, hold=True)
    mobile_money.sandbox.pay_orange(result.extra["payment_url"], request.msisdn)

    confirming = provider.query_status(provider_reference=request.reference, extra=result.extra)
    mobile_money.sandbox.answer("orange", request.reference)
    mobile_money.sandbox.wait_until_done("orange", request.reference)
    paid = provider.query_status(provider_reference=request.reference, extra=result.extra)

    assert (confirming.status, confirming.message) == (PaymentStatus.PENDING, "PENDING")
    assert paid.status is PaymentStatus.SUCCEEDED


def test_a_slow_status_reply_is_a_retryable_timeout(mobile_money, push_request):
    _, request, result = _push(mobile_money, push_request)
    mobile_money.sandbox.script(request.msisdn, Outcome.SUCCESS, reply_delay=1.0)
    mobile_money.sandbox.pay_orange(result.extra["payment_url"], request.msisdn)
    provider = mobile_money.provider("orange", read_timeout=0.2)

    with pytest.raises(ProviderError) as error:
        provider.query_status(provider_reference=request.reference, extra=result.extra)

    assert (error.value.code, error.value.retryable) == (ErrorCode.TIMEOUT, True)


def test_cents_are_refused_before_anything_is_sent(mobile_money, push_request):
    with pytest.raises(ProviderError) as error:
        _push(mobile_money, push_request, amount=Decimal("12.50"), currency="USD")

    assert (error.value.code, error.value.retryable) == (ErrorCode.AMOUNT_NOT_WHOLE, False)
    assert mobile_money.sandbox.requests("orange") == []


def test_a_reused_order_id_is_refused_for_good(mobile_money, push_request):
    provider, request, _ = _push(mobile_money, push_request)

    with pytest.raises(ProviderError) as error:
        provider.push(request)

    assert (error.value.code, error.value.retryable) == (ErrorCode.REJECTED, False)


@pytest.mark.parametrize(
    "overrides",
    [{"client_secret": "not-the-secret"}, {"merchant_key": "not-the-merchant"}],
    ids=["wrong client secret", "wrong merchant key"],
)
def test_wrong_credentials_are_terminal_and_create_nothing(mobile_money, push_request, overrides):
    provider = mobile_money.provider("orange", **overrides)

    with pytest.raises(ProviderError) as error:
        provider.push(push_request())

    assert (error.value.code, error.value.retryable) == (ErrorCode.AUTH, False)
    assert mobile_money.sandbox.transactions("orange") == []


def test_a_push_without_a_return_url_is_a_caller_error(mobile_money, push_request):
    with pytest.raises(ValueError, match="return_url"):
        mobile_money.provider("orange").push(push_request(return_url=""))


# --- Callback authentication -----------------------------------------------------------------


@pytest.fixture
def notification(mobile_money, push_request):
    provider, request, result = _push(mobile_money, push_request)
    mobile_money.sandbox.pay_orange(result.extra["payment_url"], request.msisdn)
    [callback] = mobile_money.callbacks("orange")
    return provider, result, json.loads(callback.body)


def _rejection(provider, body: bytes, expected: dict) -> CallbackRejected:
    with pytest.raises(CallbackRejected) as rejected:
        provider.parse_callback(headers={}, body=body, path_secret=None, expected=expected)
    return rejected.value


def test_a_notification_with_another_notif_token_is_rejected(notification):
    provider, result, body = notification
    forged = {**body, "notif_token": "0" * len(body["notif_token"])}

    rejected = _rejection(provider, json.dumps(forged).encode(), _expected(result))

    assert (rejected.reason, rejected.http_status) == (RejectReason.BAD_NOTIF_TOKEN, 403)


def test_without_a_stored_notif_token_every_notification_is_rejected(notification):
    provider, result, body = notification
    expected = {**_expected(result), "notif_token": ""}

    rejected = _rejection(provider, json.dumps(body).encode(), expected)

    assert rejected.reason is RejectReason.NOT_CONFIGURED


def test_unreadable_or_incomplete_notifications_are_rejected(notification):
    provider, result, body = notification
    cases = {
        b"": RejectReason.NOT_JSON,
        b"null": RejectReason.NOT_JSON,
        json.dumps({"status": "SUCCESS", "txnid": "MP1"}).encode(): RejectReason.MISSING_FIELD,
        json.dumps({**body, "txnid": ""}).encode(): RejectReason.MISSING_FIELD,
        json.dumps({**body, "status": "PAID"}).encode(): RejectReason.INVALID_FIELD,
        json.dumps({**body, "notif_token": ["a"]}).encode(): RejectReason.INVALID_FIELD,
    }
    for raw, reason in cases.items():
        assert _rejection(provider, raw, _expected(result)).reason is reason, raw
