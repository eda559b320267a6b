"""Airtel Money Open API, collections (country CD): OAuth, payments, enquiry, signed callbacks.

Callbacks go to the URL the merchant registered (``airtel_callback_url``), signed with
``hash`` = base64(HMAC-SHA256(message, callback key)): in the body, over the compact JSON
of the callback without the hash, or in a ``hash`` header over the raw body
(``airtel_hash_in``). Own copy of the shapes: see ``sandbox/operators/mpesa.py``.
"""

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import accounts
from .outcomes import Outcome
from .state import PENDING, Transaction
from .wire import Delivery, Reply, Request, RouteTable, json_reply, random_id

if TYPE_CHECKING:
    from .server import OperatorSimulator

TOKEN_LIFETIME_S = 180
SUBSCRIBER = re.compile(r"[0-9]{9}")
ENQUIRY = {
    PENDING: ("TIP", "DP00800001006", "Transaction in pending state. Please check after sometime."),
    Outcome.SUCCESS: ("TS", "DP00800001001", "Transaction is successful."),
    Outcome.FAILED: ("TF", "DP00800001010", "Transaction not permitted to Payee."),
    Outcome.CANCELLED: ("TF", "DP00800001008", "The transaction was refused."),
    Outcome.INSUFFICIENT_FUNDS: ("TF", "DP00800001007", "Not enough balance."),
    Outcome.WRONG_PIN: ("TF", "DP00800001002", "Incorrect pin has been entered."),
    Outcome.EXPIRED: ("TF", "DP00800001024", "The transaction was timed out."),
}


def _status(
    http: int, response_code: str, message: str, *, success: bool, result_code: str
) -> dict[str, Any]:
    return {
        "code": str(http),
        "message": message,
        "result_code": result_code,
        "response_code": response_code,
        "success": success,
    }


def _refused(http: int, response_code: str, message: str) -> Reply:
    status = _status(http, response_code, message, success=False, result_code="ESB000001")
    return json_reply(http, {"data": {}, "status": status})


def token(sim: "OperatorSimulator", request: Request) -> Reply:
    body = request.json()
    given = (body.get("client_id"), body.get("client_secret")) if isinstance(body, dict) else ()
    expected = (accounts.AIRTEL["client_id"], accounts.AIRTEL["client_secret"])
    if given != expected or body.get("grant_type") != "client_credentials":
        return json_reply(
            401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        )
    access_token = sim.ledger.issue_token("airtel", TOKEN_LIFETIME_S)
    return json_reply(
        200,
        {"access_token": access_token, "expires_in": str(TOKEN_LIFETIME_S), "token_type": "bearer"},
    )


def _headers_refused(sim: "OperatorSimulator", request: Request) -> Reply | None:
    if not sim.ledger.token_valid("airtel", request.bearer()):
        return json_reply(
            401, {"error": "invalid_token", "error_description": "Access token expired or invalid"}
        )
    if request.headers.get("X-Country") != "CD":
        return _refused(400, "", "Invalid X-Country")
    if request.headers.get("X-Currency") not in ("CDF", "USD"):
        return _refused(400, "", "Invalid X-Currency")
    return None


def _sign(message: bytes) -> str:
    key = accounts.AIRTEL["callback_key"].encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def _callback(sim: "OperatorSimulator", transaction: Transaction) -> Delivery | None:
    url = sim.config.airtel_callback_url
    if not url:
        return None  # the merchant registered no callback URL
    assert transaction.outcome is not None  # noqa: S101 - set at push time
    paid = transaction.outcome.result is Outcome.SUCCESS
    message = (
        f"Paid {transaction.currency} {transaction.amount} to MWOLO ENERGY, "
        f"Trans ID {transaction.receipt}."
        if paid
        else ENQUIRY[transaction.outcome.result][2]
    )
    callback = {
        "transaction": {
            "id": transaction.reference,
            "message": message,
            "status_code": "TS" if paid else "TF",
            "airtel_money_id": transaction.receipt,
        }
    }
    signed = json.dumps(callback, separators=(",", ":"), ensure_ascii=False).encode()
    if sim.config.airtel_hash_in == "header":
        return Delivery(url=url, body=signed, headers={"hash": _sign(signed)})
    return Delivery(url=url, body=json.dumps({**callback, "hash": _sign(signed)}).encode())


def _amount_refused(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return True  # a JSON number, not text
    return value <= 0 or Decimal(value) != Decimal(value).quantize(Decimal("0.01"))


def push(sim: "OperatorSimulator", request: Request) -> Reply:
    refusal = _headers_refused(sim, request)
    if refusal:
        return refusal
    body = request.json()
    subscriber = body.get("subscriber") if isinstance(body, dict) else None
    payment = body.get("transaction") if isinstance(body, dict) else None
    if not (isinstance(subscriber, dict) and isinstance(payment, dict)):
        return _refused(400, "", "subscriber and transaction are required")
    currency = request.headers.get("X-Currency")
    if {subscriber.get("currency"), payment.get("currency")} != {currency}:
        return _refused(400, "", "Currencies differ from X-Currency")
    if {subscriber.get("country"), payment.get("country")} != {"CD"}:
        return _refused(400, "", "Countries differ from X-Country")
    if not SUBSCRIBER.fullmatch(str(subscriber.get("msisdn") or "")):
        return _refused(400, "", "Invalid msisdn: the subscriber number, without 243")
    if _amount_refused(payment.get("amount")):
        return _refused(400, "DP00800001004", "Invalid Amount")
    reference = payment.get("id")
    if not (isinstance(reference, str) and reference and isinstance(body.get("reference"), str)):
        return _refused(400, "", "transaction.id and reference are required")
    msisdn = f"+243{subscriber['msisdn']}"
    script = sim.ledger.next_script(msisdn)
    transaction = Transaction(
        operator="airtel",
        reference=reference,
        amount=str(payment["amount"]),
        currency=str(currency),
        msisdn=msisdn,
    )
    transaction.follow(script)
    if not sim.ledger.add(transaction):
        return _refused(400, "DP00900001017", "Duplicate transaction id")
    now = datetime.now(UTC)
    receipt = f"MP{now:%y%m%d}.{now:%H%M}.{random_id(6)}"
    sim.schedule_answer(transaction, receipt=receipt, delivery=lambda t: _callback(sim, t))
    time.sleep(script.reply_delay)
    status = _status(200, "DP00800001006", "Success.", success=True, result_code="ESB000010")
    return json_reply(
        200, {"data": {"transaction": {"id": reference, "status": "Success."}}, "status": status}
    )


def enquiry(sim: "OperatorSimulator", request: Request, reference: str) -> Reply:
    refusal = _headers_refused(sim, request)
    if refusal:
        return refusal
    transaction = sim.ledger.by_reference("airtel", reference)
    if transaction is None:
        return _refused(404, "DP00800001025", "Transaction not found.")
    time.sleep(transaction.reply_delay)
    answered = transaction.outcome is not None and transaction.status != PENDING
    key = transaction.outcome.result if answered and transaction.outcome else PENDING
    word, code, message = ENQUIRY[key]
    status = _status(200, code, "SUCCESS", success=True, result_code="ESB000010")
    return json_reply(
        200,
        {
            "data": {
                "transaction": {
                    "airtel_money_id": transaction.receipt,
                    "id": reference,
                    "message": message,
                    "status": word,
                }
            },
            "status": status,
        },
    )


ROUTES: RouteTable = [
    ("POST", r"/auth/oauth2/token", token),
    ("POST", r"/merchant/v1/payments/", push),
    ("GET", r"/standard/v1/payments/([^/]+)", enquiry),
]
