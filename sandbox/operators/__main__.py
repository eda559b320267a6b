"""Run the operator simulator until Ctrl-C (or SIGTERM).

python -m sandbox.operators [--host 127.0.0.1] [--port 18080] [--callback-delay 2]
    [--late-delay 20] [--orange-expiry 600] [--airtel-callback-url URL]
    [--vodacom-callback-url URL] [--airtel-hash-in body|header] [--public-url URL]
"""

import argparse
import logging
import os
import signal
import threading
from types import FrameType
from urllib.parse import urlsplit

from .accounts import DEFAULT_PORT
from .server import OperatorSimulator, SimulatorConfig

logger = logging.getLogger("sandbox.operators")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 86400:
        raise argparse.ArgumentTypeError(f"seconds from 0 to 86400, not {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {text}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.operators",
        description="The four mobile-money operators on one port (docs/payments.md).",
    )
    # By default it listens where the platform looks for it (MOBILE_MONEY_SIMULATOR_URL).
    configured = urlsplit(os.environ.get("MOBILE_MONEY_SIMULATOR_URL") or "")
    parser.add_argument("--host", default=configured.hostname or "127.0.0.1")
    parser.add_argument("--port", type=_port, default=configured.port or DEFAULT_PORT)
    parser.add_argument(
        "--callback-delay", type=_seconds, default=2.0, help="seconds before the customer answers"
    )
    parser.add_argument(
        "--late-delay", type=_seconds, default=20.0, help="extra seconds of a late callback"
    )
    parser.add_argument(
        "--orange-expiry", type=_seconds, default=600.0, help="an unopened Orange payment expires"
    )
    parser.add_argument("--airtel-callback-url", default="", help="the merchant's callback URL")
    parser.add_argument("--vodacom-callback-url", default="", help="the merchant's result URL")
    parser.add_argument("--airtel-hash-in", choices=("body", "header"), default="body")
    parser.add_argument("--public-url", default="", help="base of Orange's payment_url")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = SimulatorConfig(
        callback_delay=args.callback_delay,
        late_delay=args.late_delay,
        orange_expiry=args.orange_expiry,
        airtel_callback_url=args.airtel_callback_url,
        vodacom_callback_url=args.vodacom_callback_url,
        airtel_hash_in=args.airtel_hash_in,
        public_url=args.public_url,
    )
    try:
        server = OperatorSimulator(args.host, args.port, config)
    except OSError as exc:
        parser.exit(1, f"cannot listen on {args.host}:{args.port}: {exc.strerror}\n")

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return: never from the serving thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    logger.info("mobile-money operators listening on %s", server.url)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
