"""The airtel adapter against the simulator's Airtel Money Open API, over HTTP."""

import base64
import hashlib
import hmac
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
from sandbox.operators import Outcome, accounts

from .conftest import number_for

KEY = accounts.AIRTEL["callback_key"]


def _push(mobile_money, push_request, outcome=Outcome.SUCCESS, **fields):
    provider = mobile_money.provider("airtel")
    request = push_request(msisdn=number_for(outcome), **fields)
    return provider, request, provider.push(request)


def _parse(provider, headers, body):
    return provider.parse_callback(headers=headers, body=body, path_secret=None, expected={})


def _sign(message: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def _signed_body(callback: dict) -> bytes:
    """A callback signed the way Airtel puts the hash in the body."""
    message = json.dumps(callback, separators=(",", ":"), ensure_ascii=False).encode()
    return json.dumps({**callback, "hash": _sign(message)}).encode()


def test_a_paid_push_calls_back_signed_and_the_enquiry_confirms_it(mobile_money, push_request):
    provider, request, result = _push(mobile_money, push_request)

    assert (result.provider_reference, result.status) == (request.reference, PaymentStatus.PENDING)
    [callback] = mobile_money.callbacks("airtel")
    event = _parse(provider, callback.headers, callback.body)
    seen = mobile_money.sandbox.transaction("airtel", request.reference)
    assert (event.provider_reference, event.status) == (request.reference, PaymentStatus.SUCCEEDED)
    assert event.transaction_id == seen["receipt"]
    status = provider.query_status(provider_reference=request.reference, extra=result.extra)
    assert (status.status, status.transaction_id) == (PaymentStatus.SUCCEEDED, seen["receipt"])
    assert provider.acknowledge(event).status == 200


@pytest.mark.parametrize(
    ("amount", "currency", "sent"),
    [(Decimal("5000"), "CDF", "5000"), (Decimal("12.50"), "USD", "12.50")],
)
def test_amounts_are_exact_numbers_and_numbers_go_without_243(
    mobile_money, push_request, amount, currency, sent
):
    _, request, _ = _push(mobile_money, push_request, amount=amount, currency=currency)

    seen = mobile_money.sandbox.transaction("airtel", request.reference)
    assert (seen["amount"], seen["currency"], seen["msisdn"]) == (sent, currency, request.msisdn)


@pytest.mark.parametrize(
    ("outcome", "queried", "called_back"),
    [
        (Outcome.SUCCESS, PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED),
        (Outcome.FAILED, PaymentStatus.FAILED, PaymentStatus.FAILED),
        (Outcome.CANCELLED, PaymentStatus.CANCELLED, PaymentStatus.FAILED),
        (Outcome.INSUFFICIENT_FUNDS, PaymentStatus.INSUFFICIENT_FUNDS, PaymentStatus.FAILED),
        (Outcome.WRONG_PIN, PaymentStatus.WRONG_PIN, PaymentStatus.FAILED),
        (Outcome.EXPIRED, PaymentStatus.EXPIRED, PaymentStatus.FAILED),
        (Outcome.LATE_CALLBACK, PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED),
        (Outcome.DUPLICATE_CALLBACK, PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED),
        (Outcome.NO_CALLBACK, PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED),
    ],
)
def test_enquiry_and_callbacks_tell_each_outcome(
    mobile_money, push_request, outcome, queried, called_back
):
    provider, request, result = _push(mobile_money, push_request, outcome)
    done = mobile_money.sandbox.wait_until_done("airtel", request.reference)

    status = provider.query_status(provider_reference=request.reference, extra=result.extra)
    events = [_parse(provider, c.headers, c.body) for c in mobile_money.receiver.under("/airtel/")]
    assert status.status is queried
    assert len(events) == outcome.callbacks
    assert {event.status for event in events} <= {called_back}
    if outcome is Outcome.LATE_CALLBACK:
        assert done["callbacks"][0]["sent_at"] - done["answered_at"] >= TEST_LATE_DELAY


def test_the_enquiry_says_in_progress_until_the_customer_answers(mobile_money, push_request):
    request = push_request()
    mobile_money.sandbox.script(request.msisdn, Outcome.WRONG_PIN, hold=True)
    provider = mobile_money.provider("airtel")
    result = provider.push(request)

    pending = provider.query_status(provider_reference=request.reference, extra=result.extra)
    mobile_money.sandbox.answer("airtel", request.reference)
    mobile_money.sandbox.wait_until_done("airtel", request.reference)
    final = provider.query_status(provider_reference=request.reference, extra=result.extra)

    assert (pending.status, final.status) == (PaymentStatus.PENDING, PaymentStatus.WRONG_PIN)


def test_slow_replies_are_retryable_timeouts(mobile_money, push_request):
    request = push_request()
    mobile_money.sandbox.script(request.msisdn, Outcome.SUCCESS, reply_delay=1.0)
    provider = mobile_money.provider("airtel", read_timeout=0.2)

    errors = []
    for call in (
        lambda: provider.push(request),
        lambda: provider.query_status(
            provider_reference=request.reference, extra={"currency": "CDF"}
        ),
    ):
        with pytest.raises(ProviderError) as error:
            call()
        errors.append((error.value.code, error.value.retryable))

    assert errors == [(ErrorCode.TIMEOUT, True)] * 2


def test_a_reused_transaction_id_is_a_terminal_duplicate(mobile_money, push_request):
    provider, request, _ = _push(mobile_money, push_request)

    with pytest.raises(ProviderError) as error:
        provider.push(request)

    assert (error.value.code, error.value.retryable) == (ErrorCode.DUPLICATE, False)
    assert error.value.operator_code == "DP00900001017"


def test_wrong_client_credentials_are_terminal_and_push_nothing(mobile_money, push_request):
    provider = mobile_money.provider("airtel", client_secret="not-the-secret")

    with pytest.raises(ProviderError) as error:
        provider.push(push_request())

    assert (error.value.code, error.value.retryable) == (ErrorCode.AUTH, False)
    assert mobile_money.sandbox.transactions("airtel") == []


def test_the_token_is_reused_and_fetched_again_once_refused(mobile_money, push_request):
    provider = mobile_money.provider("airtel")
    provider.push(push_request())
    provider.push(push_request())
    mobile_money.sandbox.revoke_tokens()
    provider.push(push_request())

    token_requests = [r for r in mobile_money.sandbox.requests("airtel") if "oauth2" in r["path"]]
    assert len(token_requests) == 2


# --- Callback authentication -----------------------------------------------------------------


@pytest.fixture
def failed_callback(mobile_money, push_request):
    provider, _, _ = _push(mobile_money, push_request, Outcome.FAILED)
    [callback] = mobile_money.callbacks("airtel")
    return provider, json.loads(callback.body)


def _rejection(provider, body: bytes, headers: dict | None = None) -> CallbackRejected:
    with pytest.raises(CallbackRejected) as rejected:
        _parse(provider, headers or {}, body)
    return rejected.value


def test_a_callback_without_a_hash_is_rejected_as_unsigned(failed_callback):
    provider, body = failed_callback
    unsigned = {key: value for key, value in body.items() if key != "hash"}

    rejected = _rejection(provider, json.dumps(unsigned).encode())

    assert (rejected.reason, rejected.http_status) == (RejectReason.UNSIGNED, 403)


def test_a_forged_or_altered_callback_is_rejected(failed_callback):
    provider, body = failed_callback
    paid = {"transaction": {**body["transaction"], "status_code": "TS"}}
    message = json.dumps(paid, separators=(",", ":")).encode()
    forgeries = [
        {**paid, "hash": body["hash"]},  # the genuine hash of the failure, on a success
        {**paid, "hash": _sign(message, "a-guessed-key")},
        {**paid, "hash": 12345},
    ]

    for forgery in forgeries:
        rejected = _rejection(provider, json.dumps(forgery).encode())
        assert rejected.reason is RejectReason.BAD_SIGNATURE, forgery


def test_the_hash_may_come_in_a_header_over_the_raw_body(mobile_money, push_request):
    mobile_money.sandbox.configure(airtel_hash_in="header")
    provider, request, _ = _push(mobile_money, push_request)
    [callback] = mobile_money.callbacks("airtel")

    event = _parse(provider, callback.headers, callback.body)
    tampered = callback.body.replace(request.reference.encode(), b"PI99999999")
    rejected = _rejection(provider, tampered, {"Hash": callback.headers["hash"]})

    assert "hash" not in json.loads(callback.body)
    assert event.status is PaymentStatus.SUCCEEDED
    assert rejected.reason is RejectReason.BAD_SIGNATURE


def test_without_a_configured_key_every_callback_is_rejected(mobile_money, failed_callback):
    _, body = failed_callback
    provider = mobile_money.provider("airtel", callback_key="")

    rejected = _rejection(provider, json.dumps(body).encode())

    assert rejected.reason is RejectReason.NOT_CONFIGURED


def test_signed_but_unreadable_or_incomplete_callbacks_are_rejected(mobile_money):
    provider = mobile_money.provider("airtel")
    transaction = {"id": "PI1", "message": "Paid", "status_code": "TS", "airtel_money_id": "MP1"}
    garbage = b"{not json"
    cases = [
        (garbage, {"hash": _sign(garbage)}, RejectReason.NOT_JSON),
        (_signed_body({"transaction": "PI1"}), {}, RejectReason.INVALID_FIELD),
        (_signed_body({"other": {}}), {}, RejectReason.MISSING_FIELD),
        (_signed_body({"transaction": {**transaction, "id": ""}}), {}, RejectReason.MISSING_FIELD),
        (
            _signed_body({"transaction": {**transaction, "airtel_money_id": ""}}),
            {},
            RejectReason.MISSING_FIELD,
        ),
        (
            _signed_body({"transaction": {**transaction, "status_code": "TA"}}),
            {},
            RejectReason.INVALID_FIELD,
        ),
    ]
    for body, headers, reason in cases:
        assert _rejection(provider, body, headers).reason is reason, body
    assert _parse(provider, {}, _signed_body({"transaction": transaction})).transaction_id == "MP1"
