"""A fake of Africa's Talking's SMS API, for `make run` and the tests.

    python -m sandbox.sms [--host 127.0.0.1] [--port 11026] [--folder var/sms]
                          [--username U] [--api-key K]

It answers ``POST /version1/messaging`` as Africa's Talking does: form fields ``username``,
``to`` (comma-separated numbers in international format), ``message`` and optionally
``from``; the key in the ``apiKey`` header; HTTP 201 with
``{"SMSMessageData": {"Message": …, "Recipients": [{"statusCode", "number", "status",
"cost", "messageId"}]}}``, status code 101 for a message sent and 403 InvalidPhoneNumber
for a number it cannot read. HTTP 401 for a wrong key or username, 400 for a request
missing a field. Every message sent is appended to ``<folder>/messages.jsonl`` and summed
up on one line.

Tests drive it in process (``FakeAfricasTalking``): ``reject(number, code)`` makes it
refuse a number with one of Africa's Talking's status codes, ``fail_next(status, times)``
makes the next requests fail with an HTTP error, ``messages`` lists what was sent.

By default it listens where the development settings point (``AFRICASTALKING_API_URL``,
http://127.0.0.1:11026 when unset).
"""

import argparse
import json
import os
import re
import signal
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DEFAULT_PORT = 11026
PATH = "/version1/messaging"
STATUS_NAMES = {
    100: "Processed",
    101: "Success",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
COST = "USD 0.0200"
_NUMBER = re.compile(r"^\+\d{9,15}$")


@dataclass
class SentSms:
    to: str
    message: str
    sender: str
    message_id: str


@dataclass
class _State:
    username: str
    api_key: str
    folder: Path | None
    quiet: bool
    messages: list[SentSms] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)
    failures: deque[int] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: "FakeAfricasTalking"

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per SMS is printed instead

    def _reply(self, status: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8")).items()}
        if urlsplit(self.path).path != PATH:
            self._reply(HTTPStatus.NOT_FOUND, "Not Found")
            return
        with state.lock:
            failure = state.failures.popleft() if state.failures else None
        if failure is not None:
            self._reply(failure, HTTPStatus(failure).phrase)
            return
        if not self.headers.get("apiKey") or (
            state.api_key and self.headers.get("apiKey") != state.api_key
        ):
            self._reply(HTTPStatus.UNAUTHORIZED, "The supplied authentication is invalid")
            return
        if not form.get("username") or (state.username and form["username"] != state.username):
            self._reply(HTTPStatus.UNAUTHORIZED, "The supplied authentication is invalid")
            return
        for name in ("to", "message"):
            if not form.get(name, "").strip():
                self._reply(
                    HTTPStatus.BAD_REQUEST, f"Request is missing required form field '{name}'"
                )
                return
        recipients = [self._send(number.strip(), form) for number in form["to"].split(",")]
        sent = sum(1 for r in recipients if r["statusCode"] in (100, 101, 102))
        total = f"USD {0.02 * sent:.4f}"
        body = {
            "SMSMessageData": {
                "Message": f"Sent to {sent}/{len(recipients)} Total Cost: {total}",
                "Recipients": recipients,
            }
        }
        self._reply(HTTPStatus.CREATED, json.dumps(body), "application/json; charset=utf-8")

    def _send(self, number: str, form: dict[str, str]) -> dict[str, object]:
        state = self.server.state
        with state.lock:
            code = state.rejections.get(number, 101 if _NUMBER.match(number) else 403)
        if code not in (100, 101, 102):
            return {
                "statusCode": code,
                "number": number,
                "status": STATUS_NAMES.get(code, "Failed"),
                "cost": "0",
                "messageId": "None",
            }
        sms = SentSms(
            to=number,
            message=form["message"],
            sender=form.get("from", ""),
            message_id=f"ATXid_{uuid.uuid4().hex}",
        )
        with state.lock:
            state.messages.append(sms)
            if state.folder is not None:
                with (state.folder / "messages.jsonl").open("a", encoding="utf-8") as log:
                    log.write(json.dumps(sms.__dict__, ensure_ascii=False) + "\n")
        if not state.quiet:
            print(f"sms to {number} ({sms.message_id}): {sms.message}", flush=True)  # noqa: T201
        return {
            "statusCode": code,
            "number": number,
            "status": STATUS_NAMES[code],
            "cost": COST,
            "messageId": sms.message_id,
        }


class FakeAfricasTalking(ThreadingHTTPServer):
    """The fake on ``host:port``; ``start()`` serves it from a thread of its own."""

    daemon_threads = True

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "",
        api_key: str = "",
        folder: Path | None = None,
        quiet: bool = False,
    ) -> None:
        super().__init__((host, port), _Handler)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self.state = _State(username=username, api_key=api_key, folder=folder, quiet=quiet)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def messages(self) -> list[SentSms]:
        with self.state.lock:
            return list(self.state.messages)

    def reject(self, number: str, status_code: int = 403) -> None:
        """Refuse ``number`` from now on with an Africa's Talking status code."""
        with self.state.lock:
            self.state.rejections[number] = status_code

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """The next ``times`` requests get HTTP ``status`` and send nothing."""
        with self.state.lock:
            self.state.failures.extend([status] * times)

    def start(self) -> "FakeAfricasTalking":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    configured = urlsplit(
        os.environ.get("AFRICASTALKING_API_URL", f"http://127.0.0.1:{DEFAULT_PORT}")
    )
    var = Path(os.environ.get("MWOLO_VAR_DIR", "var"))
    parser.add_argument("--host", default=configured.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=configured.port or DEFAULT_PORT)
    parser.add_argument("--folder", type=Path, default=var / "sms")
    parser.add_argument("--username", default="", help="accept only this username (default any)")
    parser.add_argument("--api-key", default="", help="accept only this key (default any)")
    args = parser.parse_args()
    server = FakeAfricasTalking(
        host=args.host,
        port=args.port,
        username=args.username,
        api_key=args.api_key,
        folder=args.folder,
    )
    # serve_forever in a thread: shutdown() from a signal handler in the same thread hangs.
    server.start()
    print(f"Africa's Talking fake listening on {server.url}, SMS kept in {args.folder}", flush=True)  # noqa: T201
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
