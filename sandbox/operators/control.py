"""Endpoints for tests and developers, under ``/_sandbox/`` (documented in docs/payments.md)."""

from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .outcomes import Outcome, normalize_msisdn
from .state import Script
from .wire import Reply, Request, RouteTable, json_reply

if TYPE_CHECKING:
    from .server import OperatorSimulator

MAX_REPLY_DELAY_S = 600
MAX_TIMES = 100


def _bad(message: str) -> Reply:
    return json_reply(400, {"error": message})


def health(sim: "OperatorSimulator", request: Request) -> Reply:
    return json_reply(200, {"ok": True})


def script(sim: "OperatorSimulator", request: Request) -> Reply:
    """``{"msisdn", "outcome", "reply_delay"?, "times"?}``: the next pushes to that number."""
    body = request.json()
    if not isinstance(body, dict):
        return _bad("expected a JSON object")
    msisdn = normalize_msisdn(str(body.get("msisdn") or ""))
    if msisdn is None:
        return _bad("msisdn: expected +243 and 9 digits")
    try:
        outcome = Outcome(str(body.get("outcome")))
    except ValueError:
        return _bad(f"outcome: one of {', '.join(Outcome)}")
    delay, times, hold = body.get("reply_delay", 0), body.get("times", 1), body.get("hold", False)
    if isinstance(delay, bool) or not isinstance(delay, int | Decimal) or delay < 0:
        return _bad("reply_delay: seconds, 0 or more")
    if delay > MAX_REPLY_DELAY_S:
        return _bad(f"reply_delay: at most {MAX_REPLY_DELAY_S}")
    if isinstance(times, bool) or not isinstance(times, int) or not 0 < times <= MAX_TIMES:
        return _bad(f"times: a whole number from 1 to {MAX_TIMES}")
    if not isinstance(hold, bool):
        return _bad("hold: true or false")
    sim.ledger.script(msisdn, Script(outcome, float(delay), hold), times=times)
    return json_reply(200, {"msisdn": msisdn, "outcome": outcome, "times": times, "hold": hold})


def answer(sim: "OperatorSimulator", request: Request) -> Reply:
    """``{"operator", "reference"}``: the customer of a held push answers now."""
    body = request.json()
    if not isinstance(body, dict):
        return _bad("expected a JSON object")
    transaction = sim.ledger.by_reference(str(body.get("operator")), body.get("reference"))
    if transaction is None:
        return json_reply(404, {"error": "no such transaction"})
    if not transaction.hold or transaction.released.is_set():
        return json_reply(409, {"error": "this transaction is not held"})
    transaction.released.set()
    return json_reply(200, {"ok": True})


def _wanted(request: Request) -> str | None:
    return request.query.get("operator") or None


def transactions(sim: "OperatorSimulator", request: Request) -> Reply:
    """Every push seen, oldest first; ``?operator=`` and ``?reference=`` filter."""
    reference = request.query.get("reference")
    with sim.ledger.lock:
        found: list[dict[str, Any]] = [
            t.as_json()
            for t in sim.ledger.transactions(_wanted(request))
            if reference in (None, t.reference)
        ]
    return json_reply(200, {"transactions": found})


def requests(sim: "OperatorSimulator", request: Request) -> Reply:
    """Every operator API call seen (method, path, status); ``?operator=`` filters."""
    return json_reply(200, {"requests": sim.ledger.requests(_wanted(request))})


def config(sim: "OperatorSimulator", request: Request) -> Reply:
    """Change settings at run time (any field of SimulatorConfig); answers them all."""
    body = request.json()
    if not isinstance(body, dict):
        return _bad("expected a JSON object")
    try:
        sim.config.update(body)
    except ValueError as exc:
        return _bad(str(exc))
    return json_reply(200, asdict(sim.config))


def reset(sim: "OperatorSimulator", request: Request) -> Reply:
    """Forget transactions, scripts and requests (tokens stay valid)."""
    sim.ledger.reset()
    return json_reply(200, {"ok": True})


def revoke_tokens(sim: "OperatorSimulator", request: Request) -> Reply:
    """Every access token and session issued so far stops working, as after an expiry."""
    sim.ledger.revoke_tokens()
    return json_reply(200, {"ok": True})


ROUTES: RouteTable = [
    ("GET", r"/_sandbox/health", health),
    ("POST", r"/_sandbox/script", script),
    ("POST", r"/_sandbox/answer", answer),
    ("GET", r"/_sandbox/transactions", transactions),
    ("GET", r"/_sandbox/requests", requests),
    ("POST", r"/_sandbox/config", config),
    ("POST", r"/_sandbox/reset", reset),
    ("POST", r"/_sandbox/revoke-tokens", revoke_tokens),
]
