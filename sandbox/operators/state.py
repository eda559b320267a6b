"""What the simulator remembers: transactions, scripted outcomes, tokens, requests seen."""

import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .outcomes import Outcome, outcome_for

PENDING = "pending"


@dataclass(frozen=True)
class Script:
    """How the customer behind a number answers their next prompt. ``hold``: not before
    ``POST /_sandbox/answer`` says so (the status stays pending until then)."""

    outcome: Outcome
    reply_delay: float = 0.0
    hold: bool = False


@dataclass
class Transaction:
    """One push as the operator sees it. ``reference`` is the id the platform queries
    with; ``status`` is ``pending`` until the customer answers, then the outcome's result;
    ``done`` once every planned callback has been delivered (or none was planned)."""

    operator: str
    reference: str
    amount: str
    currency: str
    msisdn: str = ""
    outcome: Outcome | None = None  # Orange: unknown until the customer pays on the page
    reply_delay: float = 0.0
    hold: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    status: str = PENDING
    receipt: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    done: bool = False
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    def follow(self, script: Script) -> None:
        self.outcome, self.reply_delay, self.hold = script.outcome, script.reply_delay, script.hold

    def as_json(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "reference": self.reference,
            "amount": self.amount,
            "currency": self.currency,
            "msisdn": self.msisdn,
            "outcome": self.outcome,
            "hold": self.hold,
            "status": self.status,
            "receipt": self.receipt,
            "data": self.data,
            "created_at": self.created_at,
            "answered_at": self.answered_at,
            "done": self.done,
            "callbacks": list(self.callbacks),
        }


class Ledger:
    """Thread-safe: every request is served by a thread of its own."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._transactions: list[Transaction] = []
        # Pushes by (operator, reference): the status queries and callbacks of a bench of
        # thousands must not scan them all.
        self._by_reference: dict[tuple[str, str], Transaction] = {}
        self._scripts: dict[str, deque[Script]] = defaultdict(deque)
        self._tokens: dict[str, float] = {}
        self._requests: list[dict[str, Any]] = []
        self._in_flight = 0
        self._idle = threading.Condition(self.lock)

    def request_started(self) -> None:
        with self.lock:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self.lock:
            self._in_flight -= 1
            self._idle.notify_all()

    def add(self, transaction: Transaction) -> bool:
        """Keep it, unless the operator already has one with that reference."""
        key = (transaction.operator, transaction.reference)
        with self.lock:
            if key in self._by_reference:
                return False
            self._transactions.append(transaction)
            self._by_reference[key] = transaction
            return True

    def holds(self, transaction: Transaction) -> bool:
        """False once a reset forgot it: its callbacks still planned are not sent."""
        with self.lock:
            known = self._by_reference.get((transaction.operator, transaction.reference))
            return known is transaction

    def by_reference(self, operator: str, reference: object) -> Transaction | None:
        """The push with that reference; anything but a string (a malformed request's
        field) finds nothing."""
        if not isinstance(reference, str):
            return None
        with self.lock:
            return self._by_reference.get((operator, reference))

    def find(self, operator: str, test: Callable[[Transaction], bool]) -> Transaction | None:
        with self.lock:
            return next((t for t in self._transactions if t.operator == operator and test(t)), None)

    def transactions(self, operator: str | None = None) -> list[Transaction]:
        with self.lock:
            return [t for t in self._transactions if operator in (None, t.operator)]

    def script(self, msisdn: str, script: Script, *, times: int) -> None:
        with self.lock:
            self._scripts[msisdn].extend([script] * times)

    def next_script(self, msisdn: str) -> Script:
        """The scripted answer of this number if any is left, else its magic one."""
        with self.lock:
            queue = self._scripts.get(msisdn)
            if queue:
                return queue.popleft()
        return Script(outcome_for(msisdn))

    def issue_token(self, operator: str, lifetime: float) -> str:
        token = f"{operator}-{secrets.token_hex(16)}"
        with self.lock:
            self._tokens[token] = time.time() + lifetime
        return token

    def token_valid(self, operator: str, token: str | None) -> bool:
        with self.lock:
            expires = self._tokens.get(token or "")
        mine = bool(token and token.startswith(f"{operator}-"))
        return mine and expires is not None and expires > time.time()

    def revoke_tokens(self) -> None:
        with self.lock:
            self._tokens.clear()

    def log_request(self, operator: str, method: str, path: str, status: int) -> None:
        with self.lock:
            self._requests.append(
                {"operator": operator, "method": method, "path": path, "status": status}
            )

    def requests(self, operator: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self._requests if operator in (None, r["operator"])]

    def reset(self, *, wait: float = 15) -> None:
        """Forget everything, once the operator requests still being served and the
        callbacks being sent are done (a client that gave up on a slow reply must not leave
        its request to the next test); the later callbacks of what is forgotten are dropped
        for the same reason."""
        with self.lock:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=wait)
            self._transactions.clear()
            self._by_reference.clear()
            self._scripts.clear()
            self._requests.clear()
