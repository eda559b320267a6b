"""The mpesa adapter against the simulator's Daraja, over HTTP."""

import json
from decimal import Decimal

import pytest

from mwolo.core.testing.mqtt import free_port
from mwolo.core.testing.operators import CALLBACK_SECRETS, TEST_LATE_DELAY
from mwolo.integrations.payments import (
    CallbackRejected,
    ErrorCode,
    PaymentStatus,
    ProviderError,
    RejectReason,
)
from sandbox.operators import Outcome

from .conftest import number_for

SECRET = CALLBACK_SECRETS["mpesa"]


def _secret(callback) -> str:
    return callback.path.strip("/").split("/")[1]


def _push(mobile_money, push_request, outcome=Outcome.SUCCESS, **fields):
    provider = mobile_money.provider("mpesa")
    request = push_request(
        msisdn=number_for(outcome), callback_url=mobile_money.callback_url("mpesa"), **fields
    )
    return provider, request, provider.push(request)


def test_a_paid_push_calls_back_with_the_receipt_and_the_status_confirms_it(
    mobile_money, push_request
):
    provider, request, result = _push(mobile_money, push_request)

    assert result.status is PaymentStatus.PENDING
    assert result.provider_reference.startswith("ws_CO_")
    [callback] = mobile_money.callbacks("mpesa")
    event = provider.parse_callback(
        headers=callback.headers, body=callback.body, path_secret=_secret(callback), expected={}
    )
    seen = mobile_money.sandbox.transaction("mpesa", result.provider_reference)
    assert event.provider_reference == result.provider_reference
    assert event.status is PaymentStatus.SUCCEEDED
    assert event.transaction_id == seen["receipt"]
    assert event.amount == Decimal("5000")
    assert event.payer == request.msisdn
    status = provider.query_status(provider_reference=result.provider_reference, extra=result.extra)
    assert status.status is PaymentStatus.SUCCEEDED
    assert status.transaction_id is None  # Daraja's query carries no receipt
    ack = provider.acknowledge(event)
    assert (ack.status, json.loads(ack.body)) == (200, {"ResultCode": 0, "ResultDesc": "Accepted"})


def test_the_simulator_got_daraja_s_formats(mobile_money, push_request):
    _, request, result = _push(mobile_money, push_request, description="Facture de décembre 2026")

    seen = mobile_money.sandbox.transaction("mpesa", result.provider_reference)
    assert seen["msisdn"] == request.msisdn
    assert seen["amount"] == "5000"
    assert seen["data"]["account_reference"] == request.reference[:12]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome.SUCCESS, PaymentStatus.SUCCEEDED),
        (Outcome.FAILED, PaymentStatus.FAILED),
        (Outcome.CANCELLED, PaymentStatus.CANCELLED),
        (Outcome.INSUFFICIENT_FUNDS, PaymentStatus.INSUFFICIENT_FUNDS),
        (Outcome.WRONG_PIN, PaymentStatus.WRONG_PIN),
        (Outcome.EXPIRED, PaymentStatus.EXPIRED),
        (Outcome.LATE_CALLBACK, PaymentStatus.SUCCEEDED),
        (Outcome.DUPLICATE_CALLBACK, PaymentStatus.SUCCEEDED),
        (Outcome.NO_CALLBACK, PaymentStatus.SUCCEEDED),
    ],
)
def test_status_and_callbacks_tell_each_outcome(mobile_money, push_request, outcome, expected):
    provider, _, result = _push(mobile_money, push_request, outcome)
    done = mobile_money.sandbox.wait_until_done("mpesa", result.provider_reference)

    status = provider.query_status(provider_reference=result.provider_reference, extra=result.extra)
    assert status.status is expected
    events = [
        provider.parse_callback(headers=c.headers, body=c.body, path_secret=_secret(c), expected={})
        for c in mobile_money.receiver.under("/mpesa/")
    ]
    assert len(events) == outcome.callbacks
    assert {event.status for event in events} <= {expected}
    if outcome is Outcome.LATE_CALLBACK:
        assert done["callbacks"][0]["sent_at"] - done["answered_at"] >= TEST_LATE_DELAY


def test_the_status_is_pending_until_the_customer_answers(mobile_money, push_request):
    msisdn = number_for(Outcome.SUCCESS)
    mobile_money.sandbox.script(msisdn, Outcome.CANCELLED, hold=True)
    provider, _, result = _push(mobile_money, push_request)

    pending = provider.query_status(provider_reference=result.provider_reference, extra={})
    mobile_money.sandbox.answer("mpesa", result.provider_reference)
    mobile_money.sandbox.wait_until_done("mpesa", result.provider_reference)
    final = provider.query_status(provider_reference=result.provider_reference, extra={})

    assert (pending.status, final.status) == (PaymentStatus.PENDING, PaymentStatus.CANCELLED)


def test_no_answer_in_time_is_a_retryable_timeout(mobile_money, push_request):
    mobile_money.sandbox.script(number_for(Outcome.SUCCESS), Outcome.SUCCESS, reply_delay=1.0)
    provider = mobile_money.provider("mpesa", read_timeout=0.2)

    with pytest.raises(ProviderError) as push_error:
        provider.push(push_request(callback_url=mobile_money.callback_url("mpesa")))
    [seen] = mobile_money.sandbox.transactions("mpesa")
    with pytest.raises(ProviderError) as status_error:
        provider.query_status(provider_reference=seen["reference"], extra={})

    for error in (push_error.value, status_error.value):
        assert (error.code, error.retryable) == (ErrorCode.TIMEOUT, True)


def test_an_unreachable_operator_is_a_retryable_network_error(mobile_money, push_request):
    provider = mobile_money.provider("mpesa", base_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(ProviderError) as error:
        provider.push(push_request())

    assert (error.value.code, error.value.retryable) == (ErrorCode.NETWORK, True)


def test_wrong_consumer_credentials_are_terminal_and_push_nothing(mobile_money, push_request):
    provider = mobile_money.provider("mpesa", consumer_secret="not-the-secret")

    with pytest.raises(ProviderError) as error:
        provider.push(push_request())

    assert (error.value.code, error.value.retryable) == (ErrorCode.AUTH, False)
    assert error.value.operator_code == "400.008.01"
    assert mobile_money.sandbox.transactions("mpesa") == []


def test_a_wrong_passkey_is_refused_for_good(mobile_money, push_request):
    provider = mobile_money.provider("mpesa", passkey="not-the-passkey")

    with pytest.raises(ProviderError) as error:
        provider.push(push_request())

    assert (error.value.code, error.value.retryable) == (ErrorCode.REJECTED, False)
    assert mobile_money.sandbox.transactions("mpesa") == []


def test_cents_are_refused_before_anything_is_sent(mobile_money, push_request):
    provider = mobile_money.provider("mpesa")

    with pytest.raises(ProviderError) as error:
        provider.push(push_request(amount=Decimal("12.50"), currency="USD"))

    assert (error.value.code, error.value.retryable) == (ErrorCode.AMOUNT_NOT_WHOLE, False)
    assert mobile_money.sandbox.requests("mpesa") == []


def test_the_token_is_reused_and_fetched_again_once_refused(mobile_money, push_request):
    provider = mobile_money.provider("mpesa")
    provider.push(push_request())
    provider.push(push_request())
    mobile_money.sandbox.revoke_tokens()
    provider.push(push_request())

    token_requests = [r for r in mobile_money.sandbox.requests("mpesa") if "oauth" in r["path"]]
    assert len(token_requests) == 2
    assert len(mobile_money.sandbox.transactions("mpesa")) == 3


# --- Callback authentication -----------------------------------------------------------------


@pytest.fixture
def paid_callback(mobile_money, push_request):
    provider, _, _ = _push(mobile_money, push_request)
    [callback] = mobile_money.callbacks("mpesa")
    return provider, callback


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET[:-1], f"{SECRET}x", "é"])
def test_a_callback_on_a_url_without_the_secret_is_rejected(paid_callback, secret):
    provider, callback = paid_callback

    with pytest.raises(CallbackRejected) as rejected:
        provider.parse_callback(headers={}, body=callback.body, path_secret=secret, expected={})

    assert rejected.value.reason is RejectReason.BAD_PATH_SECRET
    assert rejected.value.http_status == 403


def test_without_a_configured_secret_every_callback_is_rejected(mobile_money, paid_callback):
    _, callback = paid_callback
    provider = mobile_money.provider("mpesa", callback_secret="")

    with pytest.raises(CallbackRejected) as rejected:
        provider.parse_callback(headers={}, body=callback.body, path_secret="", expected={})

    assert rejected.value.reason is RejectReason.NOT_CONFIGURED


def _reject(provider, body: bytes) -> CallbackRejected:
    with pytest.raises(CallbackRejected) as rejected:
        provider.parse_callback(headers={}, body=body, path_secret=SECRET, expected={})
    return rejected.value


def test_unreadable_or_incomplete_callbacks_are_rejected_with_the_reason(paid_callback):
    provider, callback = paid_callback
    good = json.loads(callback.body)
    stk = good["Body"]["stkCallback"]
    without_receipt = [
        i for i in stk["CallbackMetadata"]["Item"] if i["Name"] != "MpesaReceiptNumber"
    ]

    cases = {
        b"{not json": RejectReason.NOT_JSON,
        b"[1, 2]": RejectReason.NOT_JSON,
        b'{"Body": {"stkCallback": {"ResultCode": NaN}}}': RejectReason.NOT_JSON,
        b"{}": RejectReason.MISSING_FIELD,
        json.dumps(
            {"Body": {"stkCallback": {"ResultCode": 0}}}
        ).encode(): RejectReason.MISSING_FIELD,
        json.dumps(
            {"Body": {"stkCallback": {**stk, "CallbackMetadata": {"Item": without_receipt}}}}
        ).encode(): RejectReason.MISSING_FIELD,
        json.dumps({"Body": {"stkCallback": {**stk, "ResultCode": "zero"}}}).encode(): (
            RejectReason.INVALID_FIELD
        ),
        json.dumps({"Body": []}).encode(): RejectReason.INVALID_FIELD,
    }
    for body, reason in cases.items():
        rejected = _reject(provider, body)
        assert (rejected.reason, rejected.http_status) == (reason, 400), body
