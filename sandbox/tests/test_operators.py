"""The operator simulator over HTTP, spoken to the way each operator's documentation says.

These tests write the requests by hand (no adapter), so they pin the simulator's side of
each wire format; ``mwolo/integrations/payments/tests`` check the adapters against it.
"""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from mwolo.core.testing.mqtt import ROOT, free_port
from mwolo.core.testing.operators import (
    TEST_CALLBACK_DELAY,
    TEST_LATE_DELAY,
    CallbackReceiver,
    OperatorSandbox,
    start_operator_sandbox,
)
from sandbox.operators import (
    DEFAULT_PORT,
    MAGIC_SUFFIXES,
    Outcome,
    accounts,
    normalize_msisdn,
    outcome_for,
    vodacom_public_key,
)

PAYS = "+243812345000"


@pytest.fixture
def sandbox(operator_sandbox: OperatorSandbox, callback_receiver: CallbackReceiver):
    operator_sandbox.reset()
    operator_sandbox.configure(
        callback_delay=TEST_CALLBACK_DELAY,
        late_delay=TEST_LATE_DELAY,
        orange_expiry=600,
        airtel_hash_in="body",
        public_url="",
        airtel_callback_url=callback_receiver.url("/airtel/"),
        vodacom_callback_url=callback_receiver.url("/vodacom/"),
    )
    return operator_sandbox


def _number(outcome: Outcome) -> str:
    suffix = {o: s for s, o in MAGIC_SUFFIXES.items()}.get(outcome, "000")
    return f"+243812345{suffix}"


# --- Outcomes and control endpoints ----------------------------------------------------------


def test_the_last_three_digits_choose_the_outcome():
    assert outcome_for("+243812345991") is Outcome.FAILED
    assert outcome_for("+243812345998") is Outcome.NO_CALLBACK
    assert outcome_for("+243812345990") is Outcome.SUCCESS
    assert {normalize_msisdn(n) for n in ("+243812345678", "243812345678", "812345678")} == {
        "+243812345678"
    }
    assert normalize_msisdn("+25481234567") is None


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/_sandbox/script", {"msisdn": PAYS, "outcome": "paid"}, 400),
        ("/_sandbox/script", {"msisdn": "12", "outcome": "success"}, 400),
        ("/_sandbox/script", {"msisdn": PAYS, "outcome": "success", "times": 0}, 400),
        ("/_sandbox/script", {"msisdn": PAYS, "outcome": "success", "reply_delay": -1}, 400),
        ("/_sandbox/script", {"msisdn": PAYS, "outcome": "success", "hold": "yes"}, 400),
        ("/_sandbox/config", {"callback_delay": "soon"}, 400),
        ("/_sandbox/config", {"airtel_hash_in": "query"}, 400),
        ("/_sandbox/config", {"colour": "blue"}, 400),
        ("/_sandbox/answer", {"operator": "mpesa", "reference": "none"}, 404),
        ("/_sandbox/nothing-here", {}, 404),
    ],
)
def test_control_endpoints_refuse_what_they_cannot_do(sandbox, path, body, status):
    response = httpx.post(f"{sandbox.url}{path}", json=body)

    assert response.status_code == status
    assert "error" in response.json()


def test_scripts_are_used_in_order_then_the_number_s_own_outcome(sandbox, callback_receiver):
    sandbox.script(PAYS, "cancelled", times=2)

    for _ in range(3):
        _mpesa_push(sandbox, PAYS, callback_receiver.url("/mpesa/"))

    assert [t["outcome"] for t in sandbox.transactions("mpesa")] == [
        "cancelled",
        "cancelled",
        "success",
    ]


# --- M-Pesa Daraja ---------------------------------------------------------------------------


def _mpesa_token(sandbox, key=accounts.MPESA["consumer_key"], secret=None) -> httpx.Response:
    return httpx.get(
        f"{sandbox.url}/oauth/v1/generate",
        params={"grant_type": "client_credentials"},
        auth=(key, secret or accounts.MPESA["consumer_secret"]),
    )


def _mpesa_password(timestamp: str, passkey: str = accounts.MPESA["passkey"]) -> str:
    return base64.b64encode(f"{accounts.MPESA['shortcode']}{passkey}{timestamp}".encode()).decode()


def _mpesa_call(sandbox, path: str, body: dict, *, passkey=accounts.MPESA["passkey"], token=None):
    timestamp = datetime.now().strftime("%Y%m%d%H%M%S")  # noqa: DTZ005 - any 14 digits do
    token = token or _mpesa_token(sandbox).json()["access_token"]
    signed = {
        "BusinessShortCode": accounts.MPESA["shortcode"],
        "Password": _mpesa_password(timestamp, passkey),
        "Timestamp": timestamp,
        **body,
    }
    return httpx.post(
        f"{sandbox.url}{path}", json=signed, headers={"Authorization": f"Bearer {token}"}
    )


def _mpesa_push(sandbox, msisdn: str, callback_url: str, **changes) -> httpx.Response:
    phone = msisdn.removeprefix("+")
    body = {
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 5000,
        "PartyA": phone,
        "PartyB": accounts.MPESA["shortcode"],
        "PhoneNumber": phone,
        "CallBackURL": callback_url,
        "AccountReference": "PI00000001",
        "TransactionDesc": "Facture",
        **changes,
    }
    return _mpesa_call(sandbox, "/mpesa/stkpush/v1/processrequest", body)


def test_mpesa_refuses_wrong_consumer_credentials_and_unknown_tokens(sandbox, callback_receiver):
    refused = _mpesa_token(sandbox, secret="wrong")
    unknown = _mpesa_call(sandbox, "/mpesa/stkpush/v1/processrequest", {}, token="made-up")

    assert (refused.status_code, refused.json()["errorCode"]) == (400, "400.008.01")
    assert (unknown.status_code, unknown.json()["errorCode"]) == (401, "404.001.03")
    assert _mpesa_token(sandbox).json()["expires_in"] == "3599"


@pytest.mark.parametrize(
    ("changes", "passkey"),
    [
        ({}, "wrong-passkey"),
        ({"Amount": "5000.50"}, accounts.MPESA["passkey"]),
        ({"Amount": 12.5}, accounts.MPESA["passkey"]),
        ({"PhoneNumber": "254712345678"}, accounts.MPESA["passkey"]),
        ({"AccountReference": "A" * 13}, accounts.MPESA["passkey"]),
        ({"CallBackURL": "not a url"}, accounts.MPESA["passkey"]),
    ],
)
def test_mpesa_refuses_malformed_pushes(sandbox, callback_receiver, changes, passkey):
    body = {
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 5000,
        "PartyA": "243812345000",
        "PartyB": accounts.MPESA["shortcode"],
        "PhoneNumber": "243812345000",
        "CallBackURL": callback_receiver.url("/mpesa/"),
        "AccountReference": "PI1",
        "TransactionDesc": "Facture",
        **changes,
    }

    response = _mpesa_call(sandbox, "/mpesa/stkpush/v1/processrequest", body, passkey=passkey)

    assert (response.status_code, response.json()["errorCode"]) == (400, "400.002.02")
    assert sandbox.transactions("mpesa") == []


def test_mpesa_query_is_processing_until_the_customer_answers_then_calls_back(
    sandbox, callback_receiver
):
    sandbox.script(PAYS, "success", hold=True)
    accepted = _mpesa_push(sandbox, PAYS, callback_receiver.url("/mpesa/")).json()
    checkout = accepted["CheckoutRequestID"]
    query = {"CheckoutRequestID": checkout}

    processing = _mpesa_call(sandbox, "/mpesa/stkpushquery/v1/query", query)
    sandbox.answer("mpesa", checkout)
    [callback] = callback_receiver.wait_for("/mpesa/")
    answered = _mpesa_call(sandbox, "/mpesa/stkpushquery/v1/query", query)

    assert accepted["ResponseCode"] == "0"
    assert (processing.status_code, processing.json()["errorCode"]) == (500, "500.001.1001")
    assert (answered.status_code, answered.json()["ResultCode"]) == (200, "0")
    stk = json.loads(callback.body)["Body"]["stkCallback"]
    assert (stk["CheckoutRequestID"], stk["ResultCode"]) == (checkout, 0)
    items = {item["Name"]: item.get("Value") for item in stk["CallbackMetadata"]["Item"]}
    assert items["Amount"] == 5000
    assert items["PhoneNumber"] == 243812345000
    assert items["MpesaReceiptNumber"] == sandbox.transaction("mpesa", checkout)["receipt"]


@pytest.mark.parametrize("checkout", ["ws_CO_NOSUCHREQUEST", ["ws_CO_1"], {"id": 1}, None])
def test_mpesa_query_of_an_unknown_or_malformed_request_is_a_bad_request(sandbox, checkout):
    response = _mpesa_call(sandbox, "/mpesa/stkpushquery/v1/query", {"CheckoutRequestID": checkout})

    assert response.status_code == 400
    assert "CheckoutRequestID" in response.json()["errorMessage"]


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.CANCELLED, 1032),
        (Outcome.EXPIRED, 1019),
        (Outcome.INSUFFICIENT_FUNDS, 1),
        (Outcome.WRONG_PIN, 2001),
    ],
)
def test_mpesa_failures_call_back_without_metadata(sandbox, callback_receiver, outcome, code):
    _mpesa_push(sandbox, _number(outcome), callback_receiver.url("/mpesa/"))

    [callback] = callback_receiver.wait_for("/mpesa/")

    stk = json.loads(callback.body)["Body"]["stkCallback"]
    assert stk["ResultCode"] == code
    assert "CallbackMetadata" not in stk


def test_duplicate_late_and_missing_callbacks(sandbox, callback_receiver):
    url = callback_receiver.url("/mpesa/")
    references = {
        outcome: _mpesa_push(sandbox, _number(outcome), url).json()["CheckoutRequestID"]
        for outcome in (Outcome.DUPLICATE_CALLBACK, Outcome.LATE_CALLBACK, Outcome.NO_CALLBACK)
    }
    done = {o: sandbox.wait_until_done("mpesa", r) for o, r in references.items()}

    bodies = [json.loads(c.body)["Body"]["stkCallback"] for c in callback_receiver.received]
    by_reference = {
        r: [b for b in bodies if b["CheckoutRequestID"] == r] for r in references.values()
    }
    duplicated = by_reference[references[Outcome.DUPLICATE_CALLBACK]]
    assert len(duplicated) == 3
    assert all(body == duplicated[0] for body in duplicated)
    assert len(by_reference[references[Outcome.LATE_CALLBACK]]) == 1
    late = done[Outcome.LATE_CALLBACK]
    assert late["callbacks"][0]["sent_at"] - late["answered_at"] >= TEST_LATE_DELAY
    assert by_reference[references[Outcome.NO_CALLBACK]] == []
    assert done[Outcome.NO_CALLBACK]["status"] == "success"


# --- Vodacom M-Pesa OpenAPI ------------------------------------------------------------------

VODACOM = "/sandbox/ipg/v2/vodacomDRC"


def _encrypted(secret: str) -> str:
    key = serialization.load_der_public_key(base64.b64decode(vodacom_public_key()))
    return base64.b64encode(key.encrypt(secret.encode(), padding.PKCS1v15())).decode()


def _vodacom_headers(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_encrypted(secret)}", "Origin": "*"}


def _vodacom_session(sandbox) -> str:
    response = httpx.get(
        f"{sandbox.url}{VODACOM}/getSession/", headers=_vodacom_headers(accounts.VODACOM["api_key"])
    )
    return response.json()["output_SessionID"]


def _vodacom_c2b(sandbox, msisdn: str, reference: str, **changes) -> httpx.Response:
    body = {
        "input_Amount": "5000",
        "input_Country": "DRC",
        "input_Currency": "CDF",
        "input_CustomerMSISDN": msisdn.removeprefix("+"),
        "input_ServiceProviderCode": accounts.VODACOM["service_provider_code"],
        "input_ThirdPartyConversationID": reference,
        "input_TransactionReference": reference,
        "input_PurchasedItemsDesc": "Facture",
        **changes,
    }
    return httpx.post(
        f"{sandbox.url}{VODACOM}/c2bPayment/singleStage/",
        json=body,
        headers=_vodacom_headers(_vodacom_session(sandbox)),
    )


def test_vodacom_gives_sessions_only_for_the_encrypted_api_key(sandbox):
    plain = httpx.get(
        f"{sandbox.url}{VODACOM}/getSession/",
        headers={"Authorization": f"Bearer {accounts.VODACOM['api_key']}"},
    )
    wrong = httpx.get(
        f"{sandbox.url}{VODACOM}/getSession/", headers=_vodacom_headers("another-api-key")
    )
    not_a_session = httpx.post(
        f"{sandbox.url}{VODACOM}/c2bPayment/singleStage/",
        json={},
        headers=_vodacom_headers(accounts.VODACOM["api_key"]),
    )

    for response in (plain, wrong, not_a_session):
        assert (response.status_code, response.json()["output_ResponseCode"]) == (401, "INS-2")
    assert _vodacom_session(sandbox).startswith("vodacom-")


def test_vodacom_answers_once_the_customer_has_paid_and_calls_the_result_url(
    sandbox, callback_receiver
):
    reply = _vodacom_c2b(sandbox, PAYS, "PI00000001")
    [callback] = callback_receiver.wait_for("/vodacom/")
    query = httpx.get(
        f"{sandbox.url}{VODACOM}/queryTransactionStatus/",
        params={
            "input_QueryReference": "PI00000001",
            "input_ServiceProviderCode": accounts.VODACOM["service_provider_code"],
            "input_ThirdPartyConversationID": "Q1",
            "input_Country": "DRC",
        },
        headers=_vodacom_headers(_vodacom_session(sandbox)),
    ).json()

    body = reply.json()
    assert (reply.status_code, body["output_ResponseCode"]) == (200, "INS-0")
    assert body["output_ThirdPartyConversationID"] == "PI00000001"
    result = json.loads(callback.body)
    assert result["input_ResultCode"] == "INS-0"
    assert result["input_TransactionID"] == body["output_TransactionID"]
    assert result["input_OriginalConversationID"] == body["output_ConversationID"]
    assert query["output_ResponseTransactionStatus"] == "Completed"
    assert query["output_OriginalTransactionID"] == body["output_TransactionID"]


@pytest.mark.parametrize(
    ("msisdn", "reference", "status", "code"),
    [
        (_number(Outcome.CANCELLED), "PI1", 422, "INS-5"),
        (_number(Outcome.INSUFFICIENT_FUNDS), "PI1", 422, "INS-2006"),
        (_number(Outcome.EXPIRED), "PI1", 408, "INS-9"),
        ("+24381234500", "PI1", 400, "INS-2051"),
        (PAYS, "PI-1", 400, "INS-14"),
    ],
)
def test_vodacom_reply_codes(sandbox, msisdn, reference, status, code):
    response = _vodacom_c2b(sandbox, msisdn, reference)

    assert (response.status_code, response.json()["output_ResponseCode"]) == (status, code)


def test_vodacom_refuses_a_conversation_id_twice(sandbox):
    first = _vodacom_c2b(sandbox, PAYS, "PI00000002")
    again = _vodacom_c2b(sandbox, PAYS, "PI00000002")

    assert first.status_code == 200
    assert (again.status_code, again.json()["output_ResponseCode"]) == (409, "INS-10")
    assert len(sandbox.transactions("vodacom")) == 1


def test_without_a_registered_result_url_vodacom_calls_nobody(sandbox, callback_receiver):
    sandbox.configure(vodacom_callback_url="")

    _vodacom_c2b(sandbox, PAYS, "PI00000003")

    done = sandbox.wait_until_done("vodacom", "PI00000003")
    assert (done["status"], done["callbacks"]) == ("success", [])
    assert callback_receiver.received == []


# --- Airtel Money ----------------------------------------------------------------------------


def _airtel_token(sandbox, secret=accounts.AIRTEL["client_secret"]) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/auth/oauth2/token",
        json={
            "client_id": accounts.AIRTEL["client_id"],
            "client_secret": secret,
            "grant_type": "client_credentials",
        },
    )


def _airtel_headers(sandbox, **changes) -> dict[str, str]:
    token = _airtel_token(sandbox).json()["access_token"]
    return {"Authorization": f"Bearer {token}", "X-Country": "CD", "X-Currency": "CDF", **changes}


def _airtel_push(sandbox, msisdn: str, reference: str, amount=5000, **headers) -> httpx.Response:
    body = {
        "reference": "Facture",
        "subscriber": {"country": "CD", "currency": "CDF", "msisdn": msisdn.removeprefix("+243")},
        "transaction": {"amount": amount, "country": "CD", "currency": "CDF", "id": reference},
    }
    return httpx.post(
        f"{sandbox.url}/merchant/v1/payments/",
        json=body,
        headers=_airtel_headers(sandbox, **headers),
    )


def _hmac(message: bytes) -> str:
    key = accounts.AIRTEL["callback_key"].encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def test_airtel_refuses_wrong_credentials_and_incomplete_requests(sandbox):
    refused = _airtel_token(sandbox, secret="wrong")
    no_country = _airtel_push(sandbox, PAYS, "PI1", **{"X-Country": "KE"})
    text_amount = _airtel_push(sandbox, PAYS, "PI2", amount="5000")
    with_243 = _airtel_push(sandbox, "+243243812345000", "PI3")

    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    for response in (no_country, text_amount, with_243):
        assert response.status_code == 400
        assert response.json()["status"]["success"] is False
    assert text_amount.json()["status"]["response_code"] == "DP00800001004"
    assert sandbox.transactions("airtel") == []


def test_airtel_accepts_then_calls_back_signed_and_the_enquiry_agrees(sandbox, callback_receiver):
    accepted = _airtel_push(sandbox, PAYS, "PI00000001")
    [callback] = callback_receiver.wait_for("/airtel/")
    enquiry = httpx.get(
        f"{sandbox.url}/standard/v1/payments/PI00000001", headers=_airtel_headers(sandbox)
    ).json()

    assert accepted.json()["status"]["response_code"] == "DP00800001006"
    body = json.loads(callback.body)
    signed = json.dumps(
        {"transaction": body["transaction"]}, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert body["hash"] == _hmac(signed)
    assert body["transaction"]["status_code"] == "TS"
    assert enquiry["data"]["transaction"]["status"] == "TS"
    assert (
        enquiry["data"]["transaction"]["airtel_money_id"] == body["transaction"]["airtel_money_id"]
    )


def test_airtel_can_sign_in_a_header_over_the_raw_body(sandbox, callback_receiver):
    sandbox.configure(airtel_hash_in="header")

    _airtel_push(sandbox, _number(Outcome.INSUFFICIENT_FUNDS), "PI00000002")
    [callback] = callback_receiver.wait_for("/airtel/")
    enquiry = httpx.get(
        f"{sandbox.url}/standard/v1/payments/PI00000002", headers=_airtel_headers(sandbox)
    ).json()

    assert callback.headers["hash"] == _hmac(callback.body)
    assert json.loads(callback.body)["transaction"]["status_code"] == "TF"
    assert (enquiry["data"]["transaction"]["status"], enquiry["status"]["response_code"]) == (
        "TF",
        "DP00800001007",
    )


def test_airtel_refuses_an_id_twice_and_knows_no_other(sandbox):
    _airtel_push(sandbox, PAYS, "PI00000003")

    again = _airtel_push(sandbox, PAYS, "PI00000003")
    unknown = httpx.get(f"{sandbox.url}/standard/v1/payments/PI9", headers=_airtel_headers(sandbox))

    assert again.json()["status"]["response_code"] == "DP00900001017"
    assert (unknown.status_code, unknown.json()["status"]["response_code"]) == (
        404,
        "DP00800001025",
    )


# --- Orange Money WebPay ---------------------------------------------------------------------

WEBPAY = "/orange-money-webpay/cd/v1"


def _orange_token(sandbox, secret=accounts.ORANGE["client_secret"]) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/oauth/v3/token",
        data={"grant_type": "client_credentials"},
        auth=(accounts.ORANGE["client_id"], secret),
    )


def _orange(sandbox, operation: str, body: dict) -> httpx.Response:
    token = _orange_token(sandbox).json()["access_token"]
    return httpx.post(
        f"{sandbox.url}{WEBPAY}/{operation}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def _orange_payment(sandbox, notif_url: str, order_id: str = "PI00000001") -> dict:
    return _orange(
        sandbox,
        "webpayment",
        {
            "merchant_key": accounts.ORANGE["merchant_key"],
            "currency": "CDF",
            "order_id": order_id,
            "amount": 5000,
            "return_url": "http://127.0.0.1:9/retour/",
            "cancel_url": "http://127.0.0.1:9/annule/",
            "notif_url": notif_url,
            "lang": "fr",
            "reference": "Mwolo Energy",
        },
    ).json()


def _orange_status(sandbox, payment: dict, order_id="PI00000001", amount=5000) -> dict:
    body = {"order_id": order_id, "amount": amount, "pay_token": payment["pay_token"]}
    return _orange(sandbox, "transactionstatus", body).json()


def test_orange_refuses_wrong_credentials_and_merchant_keys(sandbox, callback_receiver):
    refused = _orange_token(sandbox, secret="wrong")
    no_token = httpx.post(f"{sandbox.url}{WEBPAY}/webpayment", json={})
    wrong_merchant = _orange(sandbox, "webpayment", {"merchant_key": "another"})

    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert no_token.status_code == 401
    assert wrong_merchant.status_code == 403


def test_orange_page_takes_the_number_and_notification_follows(sandbox, callback_receiver):
    payment = _orange_payment(sandbox, callback_receiver.url("/orange/PI00000001/"))
    page = httpx.get(payment["payment_url"])
    initiated = _orange_status(sandbox, payment)
    bad_number = httpx.post(payment["payment_url"], data={"msisdn": "12", "action": "pay"})

    went_to = sandbox.pay_orange(payment["payment_url"], PAYS)
    [notification] = callback_receiver.wait_for("/orange/")
    twice = httpx.post(payment["payment_url"], data={"msisdn": PAYS, "action": "pay"})

    assert payment["status"] == 201
    assert (page.status_code, "Payer" in page.text) == (200, True)
    assert initiated["status"] == "INITIATED"
    assert bad_number.status_code == 400
    assert went_to == "http://127.0.0.1:9/retour/"
    body = json.loads(notification.body)
    assert body == {
        "status": "SUCCESS",
        "notif_token": payment["notif_token"],
        "txnid": sandbox.transaction("orange", "PI00000001")["receipt"],
    }
    assert _orange_status(sandbox, payment)["status"] == "SUCCESS"
    assert twice.status_code == 409


def test_orange_status_needs_the_right_amount_and_expires_abandoned_payments(
    sandbox, callback_receiver
):
    payment = _orange_payment(sandbox, callback_receiver.url("/orange/PI00000001/"))

    wrong_amount = _orange(
        sandbox,
        "transactionstatus",
        {"order_id": "PI00000001", "amount": 4999, "pay_token": payment["pay_token"]},
    )
    sandbox.configure(orange_expiry=0)

    assert wrong_amount.status_code == 400
    assert _orange_status(sandbox, payment)["status"] == "EXPIRED"
    assert httpx.get(payment["payment_url"]).status_code == 409
    assert callback_receiver.received == []


def test_orange_refuses_an_order_id_twice(sandbox, callback_receiver):
    url = callback_receiver.url("/orange/PI00000001/")
    _orange_payment(sandbox, url)

    again = _orange_payment(sandbox, url)

    assert again["status"] == 400
    assert len(sandbox.transactions("orange")) == 1


# --- The process -----------------------------------------------------------------------------


def test_requests_are_logged_per_operator_and_reset_forgets_them(sandbox):
    _orange_token(sandbox)
    _airtel_token(sandbox, secret="wrong")

    assert [(r["operator"], r["status"]) for r in sandbox.requests()] == [
        ("orange", 200),
        ("airtel", 401),
    ]
    sandbox.reset()
    assert sandbox.requests() == []


def test_sigterm_stops_the_simulator():
    sandbox = start_operator_sandbox()
    assert sandbox.process is not None
    sandbox.process.send_signal(signal.SIGTERM)

    assert sandbox.process.wait(timeout=10) == 0


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox.operators", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_bad_port_or_a_taken_one_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = _run("--port", str(taken.getsockname()[1]))
    bad = _run("--port", "70000")
    negative_delay = _run("--port", str(free_port()), "--callback-delay", "-1")

    assert (busy.returncode, "cannot listen on 127.0.0.1" in busy.stderr) == (1, True)
    for result in (bad, negative_delay):
        assert result.returncode == 2
        assert "seconds" in result.stderr or "port" in result.stderr


def test_the_platform_s_defaults_are_this_simulator_and_its_accounts():
    """`make run` needs no variable: the settings default to the simulator's accounts."""
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.MOBILE_MONEY))"
    )
    variables = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MPESA_", "VODACOM_", "AIRTEL_", "ORANGE_", "MOBILE_MONEY_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**variables, "DJANGO_SETTINGS_MODULE": "config.settings.local"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    configured = json.loads(result.stdout)

    assert {block["base_url"] for block in configured.values()} == {
        f"http://127.0.0.1:{DEFAULT_PORT}"
    }
    for name, account in (
        ("mpesa", accounts.MPESA),
        ("airtel", accounts.AIRTEL),
        ("orange", accounts.ORANGE),
    ):
        assert {key: configured[name][key] for key in account} == account, name
    assert configured["vodacom"]["api_key"] == accounts.VODACOM["api_key"]
    assert configured["vodacom"]["public_key"] == vodacom_public_key()
    assert (
        configured["vodacom"]["service_provider_code"]
        == (accounts.VODACOM["service_provider_code"])
    )
