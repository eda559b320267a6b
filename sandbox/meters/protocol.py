"""Wire details of meter protocol v1 (docs/meter-protocol.md) shared by the simulator parts."""

import json
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

KWH = Decimal("0.001")  # the protocol's resolution: at most 3 decimals
MAX_BATCH = 1000  # readings per {"readings": [...]} message

CMD, ACK, TELEMETRY, STATUS = "cmd", "ack", "telemetry", "status"


def topic(prefix: str, serial: str, kind: str) -> str:
    return f"{prefix}/meters/{serial}/{kind}"


def iso(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC, to the millisecond only when the instant needs it."""
    moment = datetime.fromtimestamp(t, UTC)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time with a UTC offset, or None (the protocol refuses a naive time)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def kwh(value: Decimal) -> float:
    """A register or credit as a JSON number with 3 decimals.

    Truncated, as a register display is. The float exists only to reach json.dumps: a
    decimal of at most 15 significant digits survives the round trip through a double, and
    repr() prints its shortest form, so the digits on the wire are exactly the Decimal's.
    """
    return float(value.quantize(KWH, rounding=ROUND_DOWN))


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
