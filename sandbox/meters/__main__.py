"""Run a fleet of simulated meters until Ctrl-C.

    python -m sandbox.meters --count 1000 --broker mqtt://127.0.0.1:11883 --prefix mwolo \\
        --interval 60 --speed 60 --prepaid-fraction 0.3 --manifest var/meters.json
"""

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from sandbox.meters.fleet import DEFAULT_PORT, Fleet
from sandbox.meters.meter import DEFAULT_FACTORY_KEY

logger = logging.getLogger("sandbox.meters")

STATS_EVERY_S = 60


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a fraction is between 0 and 1, not {text}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {text}")
    return value


def _broker(text: str) -> tuple[str, int]:
    parts = urlsplit(text)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected mqtt://host[:port], not {text!r}")
    try:
        return parts.hostname, parts.port or 1883
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None


def _kwh(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"kWh of credit is 0 or more, not {text}")
    return value


def _moment(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset (e.g. Z): {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandbox.meters",
        description="Simulated electricity meters speaking Mwolo meter protocol v1 over MQTT.",
    )
    p.add_argument("--count", type=_count, required=True, help="number of meters")
    p.add_argument(
        "--broker",
        type=_broker,
        default=("127.0.0.1", DEFAULT_PORT),
        metavar="URL",
        help=f"mqtt://host:port (default mqtt://127.0.0.1:{DEFAULT_PORT})",
    )
    p.add_argument("--prefix", default="mwolo", help="topic prefix (default mwolo)")
    p.add_argument("--serial-prefix", default="SIM", help="serials are PREFIX-000001…")
    p.add_argument(
        "--interval",
        type=_positive,
        default=60.0,
        help="simulated seconds between readings (default 60)",
    )
    p.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="simulated seconds per wall second (default 1; 60 = a minute a second)",
    )
    p.add_argument(
        "--start",
        type=_moment,
        default=None,
        help="simulated time at start, ISO 8601 with offset (default now)",
    )
    p.add_argument("--prepaid-fraction", type=_fraction, default=0.3)
    p.add_argument(
        "--offline-fraction",
        type=_fraction,
        default=0.0,
        help="share of meters that drop off the network now and then",
    )
    p.add_argument(
        "--flaky",
        type=_fraction,
        default=0.0,
        help="share of meters that lose some acks and readings",
    )
    p.add_argument(
        "--duplicates",
        type=_fraction,
        default=0.0,
        help="share of meters that send some messages twice",
    )
    p.add_argument(
        "--tamper",
        type=_fraction,
        default=0.0,
        help="share of meters that sometimes report tampering",
    )
    p.add_argument(
        "--initial-credit",
        type=_kwh,
        default=Decimal(10),
        help="kWh of credit a prepaid meter starts with (default 10)",
    )
    p.add_argument(
        "--factory-key",
        default=DEFAULT_FACTORY_KEY.decode(),
        help="key the prepaid secrets are derived from",
    )
    p.add_argument("--meters-per-connection", type=_count, default=500)
    p.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="write the fleet (serials, categories, prepaid secrets) to this JSON file",
    )
    p.add_argument("--seed", default=None, help="make the meters' noise reproducible")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    host, port = args.broker
    fleet = Fleet(
        host,
        port,
        args.prefix,
        count=args.count,
        serial_prefix=args.serial_prefix,
        prepaid=args.prepaid_fraction,
        offline=args.offline_fraction,
        flaky=args.flaky,
        duplicates=args.duplicates,
        tamper=args.tamper,
        factory_key=args.factory_key.encode(),
        interval=args.interval,
        speed=args.speed,
        initial_credit_kwh=args.initial_credit,
        meters_per_client=args.meters_per_connection,
        start_time=args.start,
        seed=args.seed,
    )
    if args.manifest:
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(json.dumps(fleet.manifest(), indent=1))
        logger.info("manifest of %d meters written to %s", args.count, args.manifest)

    run_until_signalled(fleet)
    return 0


def run_until_signalled(fleet: Fleet) -> None:
    """Start the fleet, log its traffic now and then, stop it on SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Do not wait for the broker: paho keeps retrying, and says when it gets through.
    fleet.start(wait=None)
    try:
        while not stop.wait(STATS_EVERY_S):
            logger.info(
                "%d messages published; %d of %d connections up",
                fleet.published(),
                sum(c.ready.is_set() for c in fleet.connections),
                len(fleet.connections),
            )
    finally:
        fleet.stop()


if __name__ == "__main__":
    sys.exit(main())
