"""Orange Money WebPay RDC: OAuth, web payments, the payment page, status, notifications.

Orange is told no phone number: the customer types it on the payment page
(``GET /orange-money-webpay/pay/<pay_token>``), which decides the outcome like every other
number (magic suffixes, scripts) or the "Annuler" button. A payment nobody opens stays
INITIATED, and EXPIRED after ``orange_expiry``. Own copy of the shapes: see
``sandbox/operators/mpesa.py``.
"""

import html
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import accounts
from .outcomes import Outcome, normalize_msisdn
from .state import PENDING, Script, Transaction
from .wire import Delivery, Reply, Request, RouteTable, is_http_url, json_reply, random_id

if TYPE_CHECKING:
    from .server import OperatorSimulator

TOKEN_LIFETIME_S = 7_776_000  # Orange's tokens last 90 days
WEBPAY = "/orange-money-webpay/cd/v1"
PAGE = "/orange-money-webpay/pay"
STATUS_WORDS = {
    Outcome.SUCCESS: "SUCCESS",
    Outcome.EXPIRED: "EXPIRED",
    Outcome.FAILED: "FAILED",
    Outcome.CANCELLED: "FAILED",
    Outcome.WRONG_PIN: "FAILED",
    Outcome.INSUFFICIENT_FUNDS: "FAILED",
}


def _refused(status: int, message: str, description: str) -> Reply:
    return json_reply(status, {"status": status, "message": message, "description": description})


def token(sim: "OperatorSimulator", request: Request) -> Reply:
    expected = (accounts.ORANGE["client_id"], accounts.ORANGE["client_secret"])
    if request.basic() != expected or request.form().get("grant_type") != "client_credentials":
        return json_reply(
            401,
            {
                "error": "invalid_client",
                "error_description": "The requested service needs credentials, but the ones "
                "provided were invalid.",
            },
        )
    access_token = sim.ledger.issue_token("orange", TOKEN_LIFETIME_S)
    return json_reply(
        200, {"token_type": "Bearer", "access_token": access_token, "expires_in": TOKEN_LIFETIME_S}
    )


def _token_refused(sim: "OperatorSimulator", request: Request) -> Reply | None:
    if sim.ledger.token_valid("orange", request.bearer()):
        return None
    return json_reply(
        401,
        {
            "code": 42,
            "message": "Expired credentials",
            "description": "The requested service needs credentials, and the ones provided "
            "were out-of-date.",
        },
    )


def _check_payment(body: dict[str, Any]) -> Reply | None:
    if body.get("merchant_key") != accounts.ORANGE["merchant_key"]:
        return _refused(403, "Forbidden", "Unknown merchant_key")
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return _refused(400, "Bad request", "amount must be a positive integer")
    if body.get("currency") not in ("CDF", "USD"):
        return _refused(400, "Bad request", "Unknown currency")
    order_id = body.get("order_id")
    if not isinstance(order_id, str) or not 0 < len(order_id) <= 30:
        return _refused(400, "Bad request", "order_id must be 1 to 30 characters")
    for key in ("return_url", "cancel_url", "notif_url"):
        if not is_http_url(body.get(key)):
            return _refused(400, "Bad request", f"{key} must be a URL")
    if body.get("lang") not in ("fr", "en"):
        return _refused(400, "Bad request", "lang must be fr or en")
    reference = body.get("reference")
    if not isinstance(reference, str) or len(reference) > 30:
        return _refused(400, "Bad request", "reference must be at most 30 characters")
    return None


def webpayment(sim: "OperatorSimulator", request: Request) -> Reply:
    refusal = _token_refused(sim, request)
    if refusal:
        return refusal
    body = request.json()
    if not isinstance(body, dict):
        return _refused(400, "Bad request", "The body must be a JSON object")
    refusal = _check_payment(body)
    if refusal:
        return refusal
    order_id = body["order_id"]
    pay_token, notif_token = secrets.token_hex(32), secrets.token_hex(16)
    transaction = Transaction(
        operator="orange",
        reference=order_id,
        amount=str(body["amount"]),
        currency=body["currency"],
        data={
            "pay_token": pay_token,
            "notif_token": notif_token,
            "notif_url": body["notif_url"],
            "return_url": body["return_url"],
            "cancel_url": body["cancel_url"],
            "lang": body["lang"],
            "merchant_reference": body["reference"],
        },
    )
    if not sim.ledger.add(transaction):
        return _refused(400, "Bad request", "Duplicate order_id")
    return json_reply(
        201,
        {
            "status": 201,
            "message": "OK",
            "pay_token": pay_token,
            "payment_url": f"{sim.public_url(request)}{PAGE}/{pay_token}",
            "notif_token": notif_token,
        },
    )


def _expire_if_abandoned(sim: "OperatorSimulator", transaction: Transaction) -> None:
    with sim.ledger.lock:
        abandoned = time.time() - transaction.created_at > sim.config.orange_expiry
        if transaction.outcome is None and abandoned:
            transaction.outcome = Outcome.EXPIRED
            transaction.status = Outcome.EXPIRED
            transaction.answered_at = time.time()
            transaction.done = True


def _page(status: int, title: str, content: str) -> Reply:
    document = (
        "<!doctype html><html lang=fr><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><h1>Orange Money (simulateur)</h1>{content}</html>"
    )
    return Reply(status, document.encode(), content_type="text/html; charset=utf-8")


def page(sim: "OperatorSimulator", request: Request, pay_token: str) -> Reply:
    transaction = sim.ledger.find("orange", lambda t: t.data["pay_token"] == pay_token)
    if transaction is None:
        return _page(404, "Paiement inconnu", "<p>Ce paiement n'existe pas.</p>")
    _expire_if_abandoned(sim, transaction)
    if transaction.outcome is not None:
        return _page(409, "Paiement terminé", "<p>Ce paiement est déjà terminé.</p>")
    merchant = html.escape(transaction.data["merchant_reference"])
    amount = html.escape(f"{transaction.amount} {transaction.currency}")
    return _page(
        200,
        "Payer",
        f"<p>{merchant} : {amount}</p><form method=post>"
        "<label>Numéro Orange Money <input name=msisdn required></label>"
        "<button name=action value=pay>Payer</button>"
        "<button name=action value=cancel formnovalidate>Annuler</button></form>",
    )


def _notification(sim: "OperatorSimulator", transaction: Transaction) -> Delivery | None:
    assert transaction.outcome is not None  # noqa: S101 - set by the page
    word = STATUS_WORDS[transaction.outcome.result]
    if word == "EXPIRED":
        return None  # Orange notifies payments that ended, not those nobody finished
    body = {
        "status": word,
        "notif_token": transaction.data["notif_token"],
        "txnid": transaction.receipt,
    }
    return Delivery(url=transaction.data["notif_url"], body=json_reply(200, body).body)


def pay(sim: "OperatorSimulator", request: Request, pay_token: str) -> Reply:
    """The customer submits the payment page: a number and Payer, or Annuler."""
    transaction = sim.ledger.find("orange", lambda t: t.data["pay_token"] == pay_token)
    if transaction is None:
        return _page(404, "Paiement inconnu", "<p>Ce paiement n'existe pas.</p>")
    _expire_if_abandoned(sim, transaction)
    form = request.form()
    cancel = form.get("action") == "cancel"
    msisdn = normalize_msisdn(form.get("msisdn", ""))
    if msisdn is None and not cancel:
        return _page(400, "Numéro invalide", "<p>Numéro Orange Money invalide.</p>")
    with sim.ledger.lock:
        if transaction.outcome is not None:
            return _page(409, "Paiement terminé", "<p>Ce paiement est déjà terminé.</p>")
        transaction.follow(
            Script(Outcome.CANCELLED) if cancel else sim.ledger.next_script(str(msisdn))
        )
        transaction.msisdn = msisdn or ""
    now = datetime.now(UTC)
    receipt = f"MP{now:%y%m%d}.{now:%H%M}.{random_id(6)}"
    sim.schedule_answer(transaction, receipt=receipt, delivery=lambda t: _notification(sim, t))
    back = transaction.data["cancel_url" if cancel else "return_url"]
    return Reply(303, b"", content_type="text/plain", headers={"Location": back})


def status(sim: "OperatorSimulator", request: Request) -> Reply:
    refusal = _token_refused(sim, request)
    if refusal:
        return refusal
    body = request.json()
    if not isinstance(body, dict):
        return _refused(400, "Bad request", "The body must be a JSON object")
    transaction = sim.ledger.find(
        "orange",
        lambda t: (
            t.reference == body.get("order_id")
            and t.data["pay_token"] == body.get("pay_token")
            and str(body.get("amount")) == t.amount
        ),
    )
    if transaction is None:
        return _refused(400, "Bad request", "Unknown order_id, pay_token or amount")
    _expire_if_abandoned(sim, transaction)
    time.sleep(transaction.reply_delay)
    if transaction.outcome is None:
        word = "INITIATED"
    elif transaction.status == PENDING:
        word = "PENDING"  # the customer is confirming on the page
    else:
        word = STATUS_WORDS[transaction.outcome.result]
    return json_reply(
        201, {"status": word, "order_id": transaction.reference, "txnid": transaction.receipt}
    )


ROUTES: RouteTable = [
    ("POST", r"/oauth/v3/token", token),
    ("POST", rf"{WEBPAY}/webpayment", webpayment),
    ("POST", rf"{WEBPAY}/transactionstatus", status),
    ("GET", rf"{PAGE}/([0-9a-f]+)", page),
    ("POST", rf"{PAGE}/([0-9a-f]+)", pay),
]
