"""Vodacom M-Pesa DRC's OpenAPI (market vodacomDRC): sessions, synchronous C2B, status, callbacks.

The simulator holds the market's private key (sandbox test material) and decrypts the
bearer of every call: the API key for ``getSession``, a session id it issued afterwards.
The C2B call answers only once the customer has "typed the PIN" (``callback_delay``).
Own copy of the shapes: see ``sandbox/operators/mpesa.py``.
"""

import base64
import binascii
import re
import secrets
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import padding

from . import accounts
from .outcomes import Outcome
from .state import PENDING, Transaction
from .wire import Delivery, Reply, Request, RouteTable, json_reply, random_id

if TYPE_CHECKING:
    from .server import OperatorSimulator

PREFIX = r"/(?:sandbox|openapi)/ipg/v2/vodacomDRC"
SESSION_LIFETIME_S = 3600
RESULTS = {
    Outcome.SUCCESS: (200, "INS-0", "Request processed successfully"),
    Outcome.CANCELLED: (422, "INS-5", "Transaction cancelled by customer"),
    Outcome.FAILED: (422, "INS-6", "Transaction Failed"),
    Outcome.WRONG_PIN: (422, "INS-6", "Transaction Failed"),  # Vodacom does not say why
    Outcome.INSUFFICIENT_FUNDS: (422, "INS-2006", "Insufficient balance"),
    Outcome.EXPIRED: (408, "INS-9", "Request timeout"),
}
STATUS_WORDS = {
    Outcome.SUCCESS: "Completed",
    Outcome.CANCELLED: "Cancelled",
    Outcome.EXPIRED: "Expired",
    Outcome.FAILED: "Failed",
    Outcome.WRONG_PIN: "Failed",
    Outcome.INSUFFICIENT_FUNDS: "Failed",
}
REFERENCE = re.compile(r"[A-Za-z0-9]{1,20}")
MSISDN = re.compile(r"243[0-9]{9}")


def _output(status: int, code: str, description: str, **fields: str) -> Reply:
    return json_reply(
        status, {"output_ResponseCode": code, "output_ResponseDesc": description, **fields}
    )


def _decrypted_bearer(request: Request) -> str | None:
    try:
        ciphertext = base64.b64decode(request.bearer() or "", validate=True)
        plain = accounts.vodacom_private_key().decrypt(ciphertext, padding.PKCS1v15())
        return plain.decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def session(sim: "OperatorSimulator", request: Request) -> Reply:
    if _decrypted_bearer(request) != accounts.VODACOM["api_key"]:
        return _output(401, "INS-2", "Invalid API Key")
    session_id = sim.ledger.issue_token("vodacom", SESSION_LIFETIME_S)
    return _output(200, "INS-0", "Request processed successfully", output_SessionID=session_id)


def _session_refused(sim: "OperatorSimulator", request: Request) -> Reply | None:
    if sim.ledger.token_valid("vodacom", _decrypted_bearer(request)):
        return None
    return _output(401, "INS-2", "Invalid Session ID")


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(value) if isinstance(value, str | int | Decimal) else None
    except InvalidOperation:
        return None
    if amount is None or not amount.is_finite() or amount <= 0:
        return None
    return amount if amount == amount.quantize(Decimal("0.01")) else None


def _check_c2b(body: dict[str, Any]) -> Reply | None:
    if _amount(body.get("input_Amount")) is None:
        return _output(400, "INS-15", "Invalid Amount Used")
    if not MSISDN.fullmatch(str(body.get("input_CustomerMSISDN") or "")):
        return _output(400, "INS-2051", "MSISDN invalid.")
    if body.get("input_ServiceProviderCode") != accounts.VODACOM["service_provider_code"]:
        return _output(400, "INS-13", "Invalid Shortcode Used")
    conversation = body.get("input_ThirdPartyConversationID")
    if not isinstance(conversation, str) or not 0 < len(conversation) <= 40:
        return _output(400, "INS-17", "Invalid Third Party Conversation ID Used")
    if not REFERENCE.fullmatch(str(body.get("input_TransactionReference") or "")):
        return _output(400, "INS-14", "Invalid Reference Used")
    if body.get("input_Country") != "DRC" or body.get("input_Currency") not in ("CDF", "USD"):
        return _output(400, "INS-21", "Parameter validations failed. Please try again.")
    if not isinstance(body.get("input_PurchasedItemsDesc"), str):
        return _output(400, "INS-20", "Not All Parameters Provided. Please try again.")
    return None


def _callback(sim: "OperatorSimulator", transaction: Transaction) -> Delivery | None:
    url = sim.config.vodacom_callback_url
    if not url:
        return None  # the merchant registered no result URL
    assert transaction.outcome is not None  # noqa: S101 - set at push time
    _, code, description = RESULTS[transaction.outcome.result]
    body = {
        "input_OriginalConversationID": transaction.data["conversation_id"],
        "input_TransactionID": transaction.receipt,
        "input_ResultCode": code,
        "input_ResultDesc": description,
        "input_ThirdPartyConversationID": transaction.reference,
    }
    return Delivery(url=url, body=json_reply(200, body).body)


def c2b(sim: "OperatorSimulator", request: Request) -> Reply:
    refusal = _session_refused(sim, request)
    if refusal:
        return refusal
    body = request.json()
    if not isinstance(body, dict):
        return _output(400, "INS-20", "Not All Parameters Provided. Please try again.")
    refusal = _check_c2b(body)
    if refusal:
        return refusal
    reference = body["input_ThirdPartyConversationID"]
    msisdn = f"+{body['input_CustomerMSISDN']}"
    script = sim.ledger.next_script(msisdn)
    transaction = Transaction(
        operator="vodacom",
        reference=reference,
        amount=str(_amount(body["input_Amount"])),
        currency=body["input_Currency"],
        msisdn=msisdn,
        data={
            "conversation_id": secrets.token_hex(16),
            "transaction_reference": body["input_TransactionReference"],
        },
    )
    transaction.follow(script)
    if not sim.ledger.add(transaction):
        return _output(409, "INS-10", "Duplicate Transaction")
    sim.wait_for_customer(transaction)  # the customer reads the prompt, types the PIN
    sim.answer(transaction, receipt=random_id(10))
    sim.send_callbacks(transaction, _callback(sim, transaction))
    time.sleep(script.reply_delay)
    status, code, description = RESULTS[script.outcome.result]
    return _output(
        status,
        code,
        description,
        output_TransactionID=transaction.receipt,
        output_ConversationID=transaction.data["conversation_id"],
        output_ThirdPartyConversationID=reference,
    )


def query(sim: "OperatorSimulator", request: Request) -> Reply:
    refusal = _session_refused(sim, request)
    if refusal:
        return refusal
    params = request.query
    if params.get("input_ServiceProviderCode") != accounts.VODACOM["service_provider_code"]:
        return _output(400, "INS-13", "Invalid Shortcode Used")
    if params.get("input_Country") != "DRC" or not params.get("input_ThirdPartyConversationID"):
        return _output(400, "INS-20", "Not All Parameters Provided. Please try again.")
    wanted = params.get("input_QueryReference")
    transaction = sim.ledger.find("vodacom", lambda t: wanted in (t.reference, t.receipt or None))
    if transaction is None:
        # The simulator's choice: the public material names no code for an unknown id.
        return _output(400, "INS-997", "Linking Transaction Not Found")
    time.sleep(transaction.reply_delay)
    if transaction.status == PENDING or transaction.outcome is None:
        word = "Pending"
    else:
        word = STATUS_WORDS[transaction.outcome.result]
    return _output(
        200,
        "INS-0",
        "Request processed successfully",
        output_ResponseTransactionStatus=word,
        output_OriginalTransactionID=transaction.receipt,
        output_ConversationID=secrets.token_hex(16),
        output_ThirdPartyConversationID=params["input_ThirdPartyConversationID"],
    )


ROUTES: RouteTable = [
    ("GET", rf"{PREFIX}/getSession/", session),
    ("POST", rf"{PREFIX}/c2bPayment/singleStage/", c2b),
    ("GET", rf"{PREFIX}/queryTransactionStatus/", query),
]
