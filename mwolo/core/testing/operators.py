"""The mobile-money operator simulator for tests, and a receiver for the callbacks it sends.

Loaded by the root ``conftest.py`` (``pytest_plugins``):

- ``operator_sandbox`` (session, one per xdist worker): ``python -m sandbox.operators`` on
  a free port, customers answering after ``TEST_CALLBACK_DELAY``; an ``OperatorSandbox``
  to script outcomes, list transactions and requests, release held customers, pay on
  Orange's page.
- ``callback_receiver``: an HTTP server of the test's own recording every POST (path,
  headers, raw body) and answering 200, where the payments webhook will be.
- ``platform``: the simulator reset and calling the payments webhooks on the live
  server, the adapters (``settings.MOBILE_MONEY``) calling it: payments end to end.
- ``mobile_money``: both, the simulator reset, Airtel's and Vodacom's merchant URLs set
  to the receiver, and ``settings.MOBILE_MONEY`` pointed at the simulator, so
  ``provider_for(name)`` returns adapters that talk to it.
"""

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mwolo.core.testing.mqtt import ROOT, free_port
from mwolo.integrations.payments import Provider, provider_for
from sandbox.operators import accounts

TEST_CALLBACK_DELAY = 0.05  # seconds from a push to the customer's answer
TEST_LATE_DELAY = 1.0  # how much later than the answer a late callback comes
WAIT_S = 15  # the longest any helper waits for the simulator or a callback
CALLBACK_SECRETS = {
    "mpesa": "test-mpesa-callback-secret",
    "vodacom": "test-vodacom-callback-secret",
}


def mobile_money_settings(base_url: str) -> dict[str, dict[str, Any]]:
    """``settings.MOBILE_MONEY`` for a simulator at ``base_url``, its sandbox accounts."""
    timeouts = {"connect_timeout": 5, "read_timeout": 10}
    return {
        "mpesa": {
            "base_url": base_url,
            **accounts.MPESA,
            "callback_secret": CALLBACK_SECRETS["mpesa"],
            **timeouts,
        },
        "vodacom": {
            "base_url": base_url,
            "environment": "sandbox",
            "api_key": accounts.VODACOM["api_key"],
            "public_key": accounts.vodacom_public_key(),
            "service_provider_code": accounts.VODACOM["service_provider_code"],
            "origin": "*",
            "callback_secret": CALLBACK_SECRETS["vodacom"],
            "session_lifetime": 3600,
            "push_read_timeout": 10,
            **timeouts,
        },
        "airtel": {"base_url": base_url, **accounts.AIRTEL, **timeouts},
        "orange": {
            "base_url": base_url,
            **accounts.ORANGE,
            "webpay_path": "/orange-money-webpay/cd/v1",
            **timeouts,
        },
    }


@dataclass
class OperatorSandbox:
    host: str
    port: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = httpx.request(method, f"{self.url}{path}", timeout=WAIT_S, **kwargs)
        if response.status_code != 200:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def script(
        self,
        msisdn: str,
        outcome: str,
        *,
        reply_delay: float = 0.0,
        times: int = 1,
        hold: bool = False,
    ) -> None:
        """The next ``times`` pushes to ``msisdn`` end with ``outcome`` (sandbox.operators
        ``Outcome``); replies to them wait ``reply_delay``; ``hold``: the customer answers
        only on ``answer()``."""
        self._call(
            "POST",
            "/_sandbox/script",
            json={
                "msisdn": msisdn,
                "outcome": outcome,
                "reply_delay": reply_delay,
                "times": times,
                "hold": hold,
            },
        )

    def answer(self, operator: str, reference: str) -> None:
        """The customer of a held push answers now."""
        self._call("POST", "/_sandbox/answer", json={"operator": operator, "reference": reference})

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "/_sandbox/config", json=changes)

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def revoke_tokens(self) -> None:
        self._call("POST", "/_sandbox/revoke-tokens")

    def transactions(self, operator: str | None = None) -> list[dict[str, Any]]:
        params = {"operator": operator} if operator else {}
        return self._call("GET", "/_sandbox/transactions", params=params)["transactions"]

    def transaction(self, operator: str, reference: str) -> dict[str, Any]:
        found = self._call(
            "GET", "/_sandbox/transactions", params={"operator": operator, "reference": reference}
        )["transactions"]
        if not found:
            raise AssertionError(f"the simulator has no {operator} transaction {reference}")
        return found[0]

    def wait_until_done(self, operator: str, reference: str) -> dict[str, Any]:
        """The transaction once the customer has answered and every callback is sent."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            transaction = self.transaction(operator, reference)
            if transaction["done"]:
                return transaction
            time.sleep(0.02)
        raise AssertionError(f"{operator} {reference} not done within {WAIT_S}s: {transaction}")

    def requests(self, operator: str | None = None) -> list[dict[str, Any]]:
        params = {"operator": operator} if operator else {}
        return self._call("GET", "/_sandbox/requests", params=params)["requests"]

    def pay_orange(self, payment_url: str, msisdn: str = "", *, cancel: bool = False) -> str:
        """What the customer does on Orange's payment page; returns where it sends them."""
        response = httpx.post(
            payment_url,
            data={"msisdn": msisdn, "action": "cancel" if cancel else "pay"},
            timeout=WAIT_S,
        )
        if response.status_code != 303:
            raise AssertionError(f"the payment page answered {response.status_code}")
        return response.headers["Location"]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def start_operator_sandbox(*extra_args: str) -> OperatorSandbox:
    """``python -m sandbox.operators`` on a free port, once it answers."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "sandbox.operators",
        "--port",
        str(port),
        "--callback-delay",
        str(TEST_CALLBACK_DELAY),
        "--late-delay",
        str(TEST_LATE_DELAY),
        *extra_args,
    ]
    process = subprocess.Popen(  # noqa: S603 - our own command line
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    sandbox = OperatorSandbox(host="127.0.0.1", port=port, process=process)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{sandbox.url}/_sandbox/health", timeout=1).status_code == 200:
                return sandbox
        except httpx.TransportError:
            if process.poll() is not None:
                break
        time.sleep(0.05)
    sandbox.stop()
    raise RuntimeError(f"the operator simulator did not answer on port {port}")


@dataclass(frozen=True)
class ReceivedCallback:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class CallbackReceiver:
    """Records every POST it gets and answers 200 ``{}``."""

    def __init__(self) -> None:
        self.received: list[ReceivedCallback] = []
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._condition:
                    receiver.received.append(ReceivedCallback(self.path, headers, body))
                    receiver._condition.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll keeps close() quick: shutdown() waits for the next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def under(self, prefix: str) -> list[ReceivedCallback]:
        with self._condition:
            return [r for r in self.received if r.path.startswith(prefix)]

    def wait_for(self, prefix: str = "/", count: int = 1) -> list[ReceivedCallback]:
        """The callbacks whose path starts with ``prefix``, once there are ``count``."""
        with self._condition:
            arrived = self._condition.wait_for(
                lambda: len(self.under(prefix)) >= count, timeout=WAIT_S
            )
            if not arrived:
                raise AssertionError(f"{len(self.under(prefix))} of {count} callbacks at {prefix}")
            return self.under(prefix)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class MobileMoney:
    """The adapters of this test, the simulator behind them, the receiver of callbacks."""

    sandbox: OperatorSandbox
    receiver: CallbackReceiver
    settings: Any = field(repr=False)

    def provider(self, name: str, **overrides: Any) -> Provider:
        """``provider_for(name)``, with ``overrides`` in its settings block (timeouts,
        wrong credentials…)."""
        if overrides:
            blocks = dict(self.settings.MOBILE_MONEY)
            blocks[name] = {**blocks[name], **overrides}
            self.settings.MOBILE_MONEY = blocks
        return provider_for(name)

    def callback_url(self, name: str, reference: str = "") -> str:
        """Where the platform would have ``name``'s callbacks sent: under ``/<name>/``, the
        secret segment for mpesa and vodacom, the reference for orange."""
        tail = CALLBACK_SECRETS.get(name) or reference
        return self.receiver.url(f"/{name}/{tail}/" if tail else f"/{name}/")

    def callbacks(self, name: str, count: int = 1) -> list[ReceivedCallback]:
        return self.receiver.wait_for(f"/{name}/", count)


@pytest.fixture(scope="session")
def operator_sandbox() -> Iterator[OperatorSandbox]:
    sandbox = start_operator_sandbox()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def platform(
    operator_sandbox: OperatorSandbox, live_server: Any, settings: Any
) -> Iterator[OperatorSandbox]:
    """The simulator calling our webhooks on the live server, the adapters calling it.

    Reset again at the end, before the database is emptied: a callback still on its way
    would otherwise be stored after the flush, in the next test's database."""
    operator_sandbox.reset()
    operator_sandbox.configure(
        callback_delay=TEST_CALLBACK_DELAY,
        late_delay=TEST_LATE_DELAY,
        orange_expiry=600,
        airtel_hash_in="body",
        public_url="",
        airtel_callback_url=f"{live_server.url}/api/payments/webhooks/airtel/",
        vodacom_callback_url=(
            f"{live_server.url}/api/payments/webhooks/vodacom/{CALLBACK_SECRETS['vodacom']}/"
        ),
    )
    settings.MOBILE_MONEY = mobile_money_settings(operator_sandbox.url)
    settings.MWOLO_PUBLIC_URL = live_server.url
    yield operator_sandbox
    operator_sandbox.reset()


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def mobile_money(
    operator_sandbox: OperatorSandbox, callback_receiver: CallbackReceiver, settings: Any
) -> MobileMoney:
    operator_sandbox.reset()
    # Every setting, so nothing a previous test changed lingers.
    operator_sandbox.configure(
        callback_delay=TEST_CALLBACK_DELAY,
        late_delay=TEST_LATE_DELAY,
        orange_expiry=600,
        airtel_hash_in="body",
        public_url="",
        airtel_callback_url=callback_receiver.url("/airtel/"),
        vodacom_callback_url=callback_receiver.url(f"/vodacom/{CALLBACK_SECRETS['vodacom']}/"),
    )
    settings.MOBILE_MONEY = mobile_money_settings(operator_sandbox.url)
    return MobileMoney(operator_sandbox, callback_receiver, settings)
