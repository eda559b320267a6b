"""Safaricom Daraja, as a merchant sees it: OAuth, STK push, STK push query, callbacks.

The simulator keeps its own copy of every path, field and code rather than importing the
adapter's: it is an independent model of the operator, so a wrong mapping in the adapter
shows up as a failing test instead of being agreed on by both sides.
"""

import base64
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from . import accounts
from .outcomes import Outcome
from .state import PENDING, Transaction
from .wire import Delivery, Reply, Request, RouteTable, is_http_url, json_reply, random_id

if TYPE_CHECKING:
    from .server import OperatorSimulator

TOKEN_LIFETIME_S = 3599
NAIROBI = ZoneInfo("Africa/Nairobi")
RESULTS = {
    Outcome.SUCCESS: (0, "The service request is processed successfully."),
    Outcome.FAILED: (1025, "An error occurred while sending a push request."),
    Outcome.CANCELLED: (1032, "Request cancelled by user."),
    Outcome.INSUFFICIENT_FUNDS: (1, "The balance is insufficient for the transaction."),
    Outcome.WRONG_PIN: (2001, "The initiator information is invalid."),
    Outcome.EXPIRED: (1019, "Transaction has expired."),
}


def _error(status: int, code: str, message: str) -> Reply:
    return json_reply(
        status, {"requestId": uuid.uuid4().hex, "errorCode": code, "errorMessage": message}
    )


def _bad_request(what: str) -> Reply:
    return _error(400, "400.002.02", f"Bad Request - Invalid {what}")


def token(sim: "OperatorSimulator", request: Request) -> Reply:
    if request.query.get("grant_type") != "client_credentials":
        return _error(400, "400.008.02", "Invalid grant type passed")
    if request.basic() != (accounts.MPESA["consumer_key"], accounts.MPESA["consumer_secret"]):
        return _error(400, "400.008.01", "Invalid Authentication passed")
    access_token = sim.ledger.issue_token("mpesa", TOKEN_LIFETIME_S)
    return json_reply(200, {"access_token": access_token, "expires_in": str(TOKEN_LIFETIME_S)})


def _signed_body(sim: "OperatorSimulator", request: Request) -> tuple[dict[str, Any], Reply | None]:
    """The JSON body of a call after the token and the password check out."""
    if not sim.ledger.token_valid("mpesa", request.bearer()):
        return {}, _error(401, "404.001.03", "Invalid Access Token")
    body = request.json()
    if not isinstance(body, dict):
        return {}, _bad_request("JSON")
    shortcode, timestamp = body.get("BusinessShortCode"), body.get("Timestamp")
    if shortcode != accounts.MPESA["shortcode"]:
        return {}, _bad_request("BusinessShortCode")
    if not (isinstance(timestamp, str) and len(timestamp) == 14 and timestamp.isdigit()):
        return {}, _bad_request("Timestamp")
    password = f"{shortcode}{accounts.MPESA['passkey']}{timestamp}".encode()
    if body.get("Password") != base64.b64encode(password).decode():
        return {}, _bad_request("Password")
    return body, None


def _phone(value: Any) -> str | None:
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return text if len(text) == 12 and text.startswith("243") and text.isdigit() else None


def _callback(transaction: Transaction) -> Delivery:
    assert transaction.outcome is not None  # noqa: S101 - set at push time
    code, description = RESULTS[transaction.outcome.result]
    callback: dict[str, Any] = {
        "MerchantRequestID": transaction.data["merchant_request_id"],
        "CheckoutRequestID": transaction.reference,
        "ResultCode": code,
        "ResultDesc": description,
    }
    if code == 0:
        paid_at = datetime.fromtimestamp(transaction.answered_at or time.time(), UTC)
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": int(transaction.amount)},
                {"Name": "MpesaReceiptNumber", "Value": transaction.receipt},
                {"Name": "Balance"},
                {
                    "Name": "TransactionDate",
                    "Value": int(paid_at.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")),
                },
                {"Name": "PhoneNumber", "Value": int(transaction.msisdn.removeprefix("+"))},
            ]
        }
    body = json_reply(200, {"Body": {"stkCallback": callback}}).body
    return Delivery(url=transaction.data["callback_url"], body=body)


def push(sim: "OperatorSimulator", request: Request) -> Reply:
    body, refusal = _signed_body(sim, request)
    if refusal:
        return refusal
    amount = body.get("Amount")
    phone = _phone(body.get("PhoneNumber"))
    if body.get("TransactionType") != "CustomerPayBillOnline":
        return _bad_request("TransactionType")
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or amount < 1:
        return _bad_request("Amount")
    if amount != int(amount):
        return _bad_request("Amount")
    if phone is None or _phone(body.get("PartyA")) != phone:
        return _bad_request("PhoneNumber")
    if body.get("PartyB") != accounts.MPESA["shortcode"]:
        return _bad_request("PartyB")
    if not is_http_url(body.get("CallBackURL")):
        return _bad_request("CallBackURL")
    for key, limit in (("AccountReference", 12), ("TransactionDesc", 13)):
        value = body.get(key)
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            return _bad_request(key)
    msisdn = f"+{phone}"
    script = sim.ledger.next_script(msisdn)
    merchant_request_id = f"{random_id(5, '0123456789')}-{random_id(8, '0123456789')}-1"
    now = datetime.now(NAIROBI)
    checkout = f"ws_CO_{now:%d%m%Y%H%M%S}{random_id(10, '0123456789')}"
    transaction = Transaction(
        operator="mpesa",
        reference=checkout,
        amount=str(int(amount)),
        currency="",
        msisdn=msisdn,
        data={
            "merchant_request_id": merchant_request_id,
            "callback_url": body["CallBackURL"],
            "account_reference": body["AccountReference"],
        },
    )
    transaction.follow(script)
    sim.ledger.add(transaction)
    sim.schedule_answer(transaction, receipt=random_id(10), delivery=_callback)
    time.sleep(script.reply_delay)
    accepted = "Success. Request accepted for processing"
    return json_reply(
        200,
        {
            "MerchantRequestID": merchant_request_id,
            "CheckoutRequestID": checkout,
            "ResponseCode": "0",
            "ResponseDescription": accepted,
            "CustomerMessage": accepted,
        },
    )


def query(sim: "OperatorSimulator", request: Request) -> Reply:
    body, refusal = _signed_body(sim, request)
    if refusal:
        return refusal
    checkout = body.get("CheckoutRequestID")
    transaction = sim.ledger.by_reference("mpesa", checkout)
    if transaction is None:
        return _bad_request("CheckoutRequestID")
    time.sleep(transaction.reply_delay)
    if transaction.status == PENDING or transaction.outcome is None:
        return _error(500, "500.001.1001", "The transaction is being processed")
    code, description = RESULTS[transaction.outcome.result]
    return json_reply(
        200,
        {
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successsfully",
            "MerchantRequestID": transaction.data["merchant_request_id"],
            "CheckoutRequestID": transaction.reference,
            "ResultCode": str(code),
            "ResultDesc": description,
        },
    )


ROUTES: RouteTable = [
    ("GET", r"/oauth/v1/generate", token),
    ("POST", r"/mpesa/stkpush/v1/processrequest", push),
    ("POST", r"/mpesa/stkpushquery/v1/query", query),
]
