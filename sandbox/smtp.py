"""A local SMTP server that keeps every email it receives, for `make run` and the tests.

    python -m sandbox.smtp [--host 127.0.0.1] [--port 11025] [--folder var/mail]

Each message is stored as it arrived, one ``.eml`` file per message (open it with any mail
client), and summed up on one line. It listens by default where the development settings
send email (``EMAIL_HOST``/``EMAIL_PORT``, 127.0.0.1:11025 when unset); the port is not
25 or 587, so it never collides with a real mail server on the same machine. No TLS, no
login, accepts every recipient: a sink, never a relay.
"""

import argparse
import itertools
import os
import signal
import socket
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller

DEFAULT_PORT = 11025


def parse(raw: bytes) -> EmailMessage:
    # policy.default parses into EmailMessage (the typed stubs only promise Message).
    return cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw))


def summary(message: EmailMessage, recipients: list[str], path: Path) -> str:
    attachments = [part.get_filename() for part in message.iter_attachments()]
    files = f" + {', '.join(str(name) for name in attachments)}" if attachments else ""
    return f"mail to {', '.join(recipients)}: {message['Subject']!s}{files} → {path}"


class MailFolder:
    """aiosmtpd handler: each message becomes ``<folder>/<arrival>.eml``, written whole
    before the server answers 250 (a reader never sees half a file)."""

    def __init__(self, folder: Path, *, quiet: bool = False) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.quiet = quiet
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        with self._lock:
            name = f"{time.time_ns()}-{next(self._sequence):06d}.eml"
        path = self.folder / name
        partial = path.with_suffix(".part")
        partial.write_bytes(raw)
        partial.rename(path)
        if not self.quiet:
            print(summary(parse(raw), list(envelope.rcpt_tos), path), flush=True)  # noqa: T201
        return "250 Message accepted for delivery"


class SmtpSink:
    """The sink on ``host:port`` in a thread of its own; ``messages()`` reads it back."""

    def __init__(
        self, *, folder: Path, host: str = "127.0.0.1", port: int = 0, quiet: bool = False
    ) -> None:
        self.folder = folder
        self.handler = MailFolder(folder, quiet=quiet)
        self.host = host
        self.port = port or _free_port(host)
        self.controller = Controller(self.handler, hostname=host, port=self.port)

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first, parsed (attachments included)."""
        return [parse(path.read_bytes()) for path in self.paths()]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    var = Path(os.environ.get("MWOLO_VAR_DIR", "var"))
    parser.add_argument("--host", default=os.environ.get("EMAIL_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMAIL_PORT", DEFAULT_PORT)))
    parser.add_argument("--folder", type=Path, default=var / "mail")
    args = parser.parse_args()
    sink = SmtpSink(folder=args.folder, host=args.host, port=args.port).start()
    print(f"SMTP sink listening on {args.host}:{args.port}, mail kept in {args.folder}", flush=True)  # noqa: T201
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    sink.stop()


if __name__ == "__main__":
    main()
