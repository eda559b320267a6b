"""One threaded HTTP server for the four operators and the control endpoints of tests.

Each request gets a thread (the synchronous Vodacom push holds its own until the customer
"answers"). Customers answer ``callback_delay`` seconds after a push; callbacks are then
POSTed for real, from timer threads, to the URL of the push or of the merchant.
"""

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from . import airtel, control, mpesa, orange, vodacom
from .outcomes import Outcome
from .state import Ledger, Transaction
from .wire import Delivery, Reply, Request, json_reply

logger = logging.getLogger("sandbox.operators")

CALLBACK_TIMEOUT_S = 10
MAX_HOLD_S = 3600  # a held customer gives up (answers) after an hour


@dataclass
class SimulatorConfig:
    """Everything a test may change at run time (``POST /_sandbox/config``)."""

    callback_delay: float = 2.0  # seconds from a push to the customer's answer
    late_delay: float = 20.0  # how much later a late callback comes
    orange_expiry: float = 600.0  # an Orange payment nobody opened expires after this
    airtel_callback_url: str = ""  # what the merchant registered on the Airtel portal
    vodacom_callback_url: str = ""  # the same, Vodacom
    airtel_hash_in: str = "body"  # where Airtel's callback hash travels: body or header
    public_url: str = ""  # base of Orange's payment_url; by default the Host asked for

    def update(self, changes: dict[str, Any]) -> None:
        """Apply changes, checked; raises ValueError naming the bad key."""
        kinds = {f.name: f.type for f in fields(self)}
        for key, value in changes.items():
            if key not in kinds:
                raise ValueError(f"unknown setting {key!r}")
            if kinds[key] is float:
                if isinstance(value, bool) or not isinstance(value, int | Decimal) or value < 0:
                    raise ValueError(f"{key} must be a number of seconds")
                value = float(value)
            elif not isinstance(value, str):
                raise ValueError(f"{key} must be a string")
            if key == "airtel_hash_in" and value not in ("body", "header"):
                raise ValueError("airtel_hash_in is 'body' or 'header'")
            setattr(self, key, value)


@dataclass(frozen=True)
class Route:
    operator: str
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Reply]


def _routes() -> list[Route]:
    routes = []
    for operator, table in (
        ("mpesa", mpesa.ROUTES),
        ("vodacom", vodacom.ROUTES),
        ("airtel", airtel.ROUTES),
        ("orange", orange.ROUTES),
        ("sandbox", control.ROUTES),
    ):
        for method, pattern, handler in table:
            routes.append(Route(operator, method, re.compile(pattern), handler))
    return routes


class OperatorSimulator(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, config: SimulatorConfig | None = None) -> None:
        super().__init__((host, port), _RequestHandler)
        self.config = config or SimulatorConfig()
        self.ledger = Ledger()
        self.routes = _routes()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def public_url(self, request: Request) -> str:
        host = request.headers.get("Host")
        return self.config.public_url.rstrip("/") or (f"http://{host}" if host else self.url)

    # --- The customer's answer and the callbacks -----------------------------------------

    def answer(self, transaction: Transaction, *, receipt: str) -> None:
        """The customer has answered: the books now hold the outcome's result."""
        assert transaction.outcome is not None  # noqa: S101 - set when the push came
        with self.ledger.lock:
            transaction.status = transaction.outcome.result
            if transaction.outcome.result is Outcome.SUCCESS:
                transaction.receipt = receipt
            transaction.answered_at = time.time()

    def send_callbacks(self, transaction: Transaction, delivery: Delivery | None) -> None:
        """As many copies as the outcome says, after late_delay for a late one."""
        assert transaction.outcome is not None  # noqa: S101 - set when the push came
        copies = transaction.outcome.callbacks if delivery else 0
        if not delivery or copies == 0:
            with self.ledger.lock:
                transaction.done = True
            return
        late = transaction.outcome is Outcome.LATE_CALLBACK
        self._later(
            self.config.late_delay if late else 0, self._deliver_all, transaction, delivery, copies
        )

    def schedule_answer(
        self,
        transaction: Transaction,
        *,
        receipt: str,
        delivery: Callable[[Transaction], Delivery | None],
    ) -> None:
        """The customer answers callback_delay from now; the callbacks follow."""

        def answer_then_call_back() -> None:
            self.wait_for_customer(transaction)
            self.answer(transaction, receipt=receipt)
            self.send_callbacks(transaction, delivery(transaction))

        self._later(0, answer_then_call_back)

    def wait_for_customer(self, transaction: Transaction) -> None:
        """callback_delay, or until a test releases a held transaction."""
        if transaction.hold:
            transaction.released.wait(MAX_HOLD_S)
        else:
            time.sleep(self.config.callback_delay)

    def _later(self, delay: float, function: Callable[..., None], *args: Any) -> None:
        timer = threading.Timer(delay, function, args)
        timer.daemon = True
        timer.start()

    def _deliver_all(self, transaction: Transaction, delivery: Delivery, copies: int) -> None:
        # Duplicates: two at the same moment (concurrent deliveries), then the rest.
        first = [threading.Thread(target=self._deliver, args=(transaction, delivery))]
        if copies > 1:
            first.append(threading.Thread(target=self._deliver, args=(transaction, delivery)))
        for thread in first:
            thread.start()
        for thread in first:
            thread.join()
        for _ in range(copies - len(first)):
            self._deliver(transaction, delivery)
        with self.ledger.lock:
            transaction.done = True

    def _deliver(self, transaction: Transaction, delivery: Delivery) -> None:
        # Counted before the check: a reset either forgets the transaction first or waits
        # for this callback to land, never lets it reach the next test's server.
        self.ledger.request_started()
        try:
            if not self.ledger.holds(transaction):
                return
            record: dict[str, Any] = {"url": delivery.url, "sent_at": time.time()}
            try:
                response = httpx.post(
                    delivery.url,
                    content=delivery.body,
                    headers={"Content-Type": "application/json", **delivery.headers},
                    timeout=CALLBACK_TIMEOUT_S,
                )
                record["status"] = response.status_code
            except httpx.HTTPError as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
                logger.warning("callback to %s failed: %s", delivery.url, record["error"])
            with self.ledger.lock:
                transaction.callbacks.append(record)
        finally:
            self.ledger.request_finished()


class _RequestHandler(BaseHTTPRequestHandler):
    server: OperatorSimulator
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY a kept-alive client waits
    # for the delayed ACK (40 ms) before the body, on every reply.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        if self.path.startswith("/_sandbox/"):
            self._serve()
            return
        self.server.ledger.request_started()
        try:
            self._serve()
        finally:
            self.server.ledger.request_finished()

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers=self.headers,
            body=body,
        )
        operator, reply = "unknown", json_reply(404, {"error": f"no endpoint {parts.path}"})
        for route in self.server.routes:
            match = route.pattern.fullmatch(parts.path)
            if match and route.method == self.command:
                operator = route.operator
                try:
                    reply = route.handler(self.server, request, *match.groups())
                except Exception:
                    logger.exception("%s %s failed", self.command, parts.path)
                    reply = json_reply(500, {"error": "simulator error"})
                break
        if operator != "sandbox":
            self.server.ledger.log_request(operator, self.command, parts.path, reply.status)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            logger.info("%s %s: the client left before the reply", self.command, parts.path)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)
