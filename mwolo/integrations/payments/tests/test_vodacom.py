"""The vodacom adapter against the simulator's M-Pesa OpenAPI (vodacomDRC), over HTTP."""

import base64
import json
import threading
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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

SECRET = CALLBACK_SECRETS["vodacom"]


def _push(mobile_money, push_request, outcome=Outcome.SUCCESS, **fields):
    provider = mobile_money.provider("vodacom")
    request = push_request(msisdn=number_for(outcome), **fields)
    return provider, request, provider.push(request)


def _parse(provider, callback):
    return provider.parse_callback(
        headers=callback.headers, body=callback.body, path_secret=SECRET, expected={}
    )


def test_the_push_waits_for_the_pin_and_the_result_url_gets_the_same_news(
    mobile_money, push_request
):
    provider, request, result = _push(mobile_money, push_request)

    seen = mobile_money.sandbox.wait_until_done("vodacom", request.reference)
    assert result.provider_reference == request.reference
    assert (result.status, result.transaction_id) == (PaymentStatus.SUCCEEDED, seen["receipt"])
    [callback] = mobile_money.callbacks("vodacom")
    assert callback.path == f"/vodacom/{SECRET}/"
    event = _parse(provider, callback)
    assert (event.provider_reference, event.status) == (request.reference, PaymentStatus.SUCCEEDED)
    assert event.transaction_id == seen["receipt"]
    status = provider.query_status(provider_reference=request.reference, extra=result.extra)
    assert (status.status, status.transaction_id) == (PaymentStatus.SUCCEEDED, seen["receipt"])
    ack = json.loads(provider.acknowledge(event).body)
    assert ack == {
        "output_OriginalConversationID": seen["data"]["conversation_id"],
        "output_ResponseCode": "0",
        "output_ResponseDesc": "Successfully Accepted Result",
        "output_ThirdPartyConversationID": request.reference,
    }


def test_amounts_go_as_decimal_text_and_numbers_with_243(mobile_money, push_request):
    _, request, _ = _push(mobile_money, push_request, amount=Decimal("12.50"), currency="USD")

    seen = mobile_money.sandbox.transaction("vodacom", request.reference)
    assert (seen["amount"], seen["currency"], seen["msisdn"]) == ("12.50", "USD", request.msisdn)


@pytest.mark.parametrize(
    ("outcome", "at_push", "queried"),
    [
        (Outcome.SUCCESS, PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED),
        (Outcome.FAILED, PaymentStatus.FAILED, PaymentStatus.FAILED),
        (Outcome.CANCELLED, PaymentStatus.CANCELLED, PaymentStatus.CANCELLED),
        (Outcome.INSUFFICIENT_FUNDS, PaymentStatus.INSUFFICIENT_FUNDS, PaymentStatus.FAILED),
        (Outcome.WRONG_PIN, PaymentStatus.FAILED, PaymentStatus.FAILED),
        (Outcome.EXPIRED, PaymentStatus.EXPIRED, PaymentStatus.EXPIRED),
        (Outcome.LATE_CALLBACK, PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED),
        (Outcome.DUPLICATE_CALLBACK, PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED),
        (Outcome.NO_CALLBACK, PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED),
    ],
)
def test_reply_status_and_callbacks_tell_each_outcome(
    mobile_money, push_request, outcome, at_push, queried
):
    provider, request, result = _push(mobile_money, push_request, outcome)
    done = mobile_money.sandbox.wait_until_done("vodacom", request.reference)

    status = provider.query_status(provider_reference=request.reference, extra=result.extra)
    events = [_parse(provider, c) for c in mobile_money.receiver.under("/vodacom/")]
    assert (result.status, status.status) == (at_push, queried)
    assert len(events) == outcome.callbacks
    assert {event.status for event in events} <= {at_push}
    if outcome is Outcome.LATE_CALLBACK:
        assert done["callbacks"][0]["sent_at"] - done["answered_at"] >= TEST_LATE_DELAY


def test_while_the_customer_reads_the_prompt_the_status_is_pending(mobile_money, push_request):
    request = push_request()
    mobile_money.sandbox.script(request.msisdn, Outcome.SUCCESS, hold=True)
    provider = mobile_money.provider("vodacom")
    results = []
    pushing = threading.Thread(target=lambda: results.append(provider.push(request)))
    pushing.start()
    while pushing.is_alive() and not mobile_money.sandbox.transactions("vodacom"):
        pushing.join(0.02)

    pending = provider.query_status(provider_reference=request.reference, extra={})
    mobile_money.sandbox.answer("vodacom", request.reference)
    pushing.join(15)

    assert pending.status is PaymentStatus.PENDING
    assert [r.status for r in results] == [PaymentStatus.SUCCEEDED]


def test_a_push_that_times_out_is_retryable_and_its_status_can_be_asked(mobile_money, push_request):
    request = push_request()
    mobile_money.sandbox.script(request.msisdn, Outcome.SUCCESS, reply_delay=1.0)
    provider = mobile_money.provider("vodacom", push_read_timeout=0.2)

    with pytest.raises(ProviderError) as error:
        provider.push(request)
    mobile_money.sandbox.wait_until_done("vodacom", request.reference)
    status = mobile_money.provider("vodacom").query_status(
        provider_reference=request.reference, extra={}
    )

    assert (error.value.code, error.value.retryable) == (ErrorCode.TIMEOUT, True)
    assert status.status is PaymentStatus.SUCCEEDED  # the reference is ours: no reply needed


def test_pushing_a_reference_twice_is_a_terminal_duplicate(mobile_money, push_request):
    provider, request, _ = _push(mobile_money, push_request)

    with pytest.raises(ProviderError) as error:
        provider.push(request)

    assert (error.value.code, error.value.retryable) == (ErrorCode.DUPLICATE, False)
    assert error.value.operator_code == "INS-10"


def _other_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.mark.parametrize(
    "overrides",
    [{"api_key": "not-the-api-key"}, {"public_key": _other_public_key()}],
    ids=["wrong api key", "another market's key"],
)
def test_a_session_refused_is_terminal_and_pushes_nothing(mobile_money, push_request, overrides):
    provider = mobile_money.provider("vodacom", **overrides)

    with pytest.raises(ProviderError) as error:
        provider.push(push_request())

    assert (error.value.code, error.value.retryable) == (ErrorCode.AUTH, False)
    assert mobile_money.sandbox.transactions("vodacom") == []


def test_a_public_key_that_is_no_key_is_a_configuration_error(mobile_money, push_request):
    provider = mobile_money.provider("vodacom", public_key="change-me-vodacom-public-key")

    with pytest.raises(ProviderError) as error:
        provider.push(push_request())

    assert (error.value.code, error.value.retryable) == (ErrorCode.CONFIGURATION, False)
    assert mobile_money.sandbox.requests("vodacom") == []


def test_a_pem_public_key_works_too(mobile_money, push_request):
    der = base64.b64decode(mobile_money.settings.MOBILE_MONEY["vodacom"]["public_key"])
    pem = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    provider = mobile_money.provider("vodacom", public_key=pem.decode())

    assert provider.push(push_request()).status is PaymentStatus.SUCCEEDED


def test_the_session_is_reused_and_opened_again_once_refused(mobile_money, push_request):
    provider = mobile_money.provider("vodacom")
    provider.push(push_request())
    provider.push(push_request())
    mobile_money.sandbox.revoke_tokens()
    provider.push(push_request())

    sessions = [r for r in mobile_money.sandbox.requests("vodacom") if "getSession" in r["path"]]
    assert len(sessions) == 2
    assert len(mobile_money.sandbox.transactions("vodacom")) == 3


# --- Callback authentication -----------------------------------------------------------------


@pytest.fixture
def result_callback(mobile_money, push_request):
    provider, _, _ = _push(mobile_money, push_request)
    [callback] = mobile_money.callbacks("vodacom")
    return provider, callback


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET.upper()])
def test_a_callback_without_the_url_secret_is_rejected(result_callback, secret):
    provider, callback = result_callback

    with pytest.raises(CallbackRejected) as rejected:
        provider.parse_callback(headers={}, body=callback.body, path_secret=secret, expected={})

    assert (rejected.value.reason, rejected.value.http_status) == (
        RejectReason.BAD_PATH_SECRET,
        403,
    )


def test_unreadable_or_incomplete_callbacks_are_rejected_with_the_reason(result_callback):
    provider, callback = result_callback
    good = json.loads(callback.body)
    cases = {
        b"\xff\xfe garbage": RejectReason.NOT_JSON,
        b'"a string"': RejectReason.NOT_JSON,
        json.dumps({**good, "input_ThirdPartyConversationID": ""}).encode(): (
            RejectReason.MISSING_FIELD
        ),
        json.dumps({k: v for k, v in good.items() if k != "input_ResultCode"}).encode(): (
            RejectReason.MISSING_FIELD
        ),
        json.dumps({**good, "input_TransactionID": None}).encode(): RejectReason.MISSING_FIELD,
        json.dumps({**good, "input_ResultCode": 0}).encode(): RejectReason.INVALID_FIELD,
    }
    for body, reason in cases.items():
        with pytest.raises(CallbackRejected) as rejected:
            provider.parse_callback(headers={}, body=body, path_secret=SECRET, expected={})
        assert rejected.value.reason is reason, body
