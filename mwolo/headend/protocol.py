"""Meter protocol v1 (docs/meter-protocol.md): the platform's parsing and building of messages.

Parsing is strict and total: whatever the topic and the bytes, ``parse_message`` returns a
frozen dataclass or raises ``ProtocolError`` with a short, stable ``reason`` for counting.
Numbers are read as ``Decimal`` straight from the JSON text, so no float touches energy.
Every value that comes out is safe to store: bounded to the database's columns (14 digits,
3 decimals), times aware and in UTC, texts printable. Unknown fields are ignored, so a later
v1.x may add optional fields without breaking older platforms.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, DecimalException
from typing import Any, Literal, NoReturn, TypeAlias

KINDS_IN = ("ack", "telemetry", "status")  # meter → platform
KIND_CMD = "cmd"  # platform → meter
ACTIONS = ("connect", "disconnect", "read", "token")

SERIAL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TOKEN_RE = re.compile(r"[0-9]{1,20}")
# Control characters cannot be stored (PostgreSQL refuses NUL) and lone surrogates cannot
# be encoded: a text carrying either would make every retry of its batch fail.
UNSAFE_TEXT_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

MAX_PAYLOAD_BYTES = 1024 * 1024  # Mosquitto's max_packet_size in deploy/mosquitto.conf
MAX_BATCH = 1000
MAX_TEXT = 256  # fw, error: generous for a version or an error code, refuses abuse
MAX_TIME_TEXT = 64
KWH = Decimal("0.001")
# Registers and credit fit the database's DecimalField(max_digits=14, decimal_places=3).
MAX_ENERGY_KWH = Decimal("99999999999.999")
MAX_POWER_W = Decimal("999999999.999")
MAX_VOLTAGE_V = Decimal("999999.999")
# A clock more than a day ahead is wrong, and a reading before 2000 comes from a meter whose
# clock was never set: storing either would corrupt the meter's history.
MAX_CLOCK_AHEAD = dt.timedelta(days=1)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

# Room for 14 significant digits and more, and every abnormal condition raised, never silent.
_DECIMAL = Context(prec=40, rounding=ROUND_HALF_EVEN)

Relay: TypeAlias = Literal["on", "off"]
AckStatus: TypeAlias = Literal["ok", "error"]


class ProtocolError(Exception):
    """A message that does not follow protocol v1. ``reason`` is a short code for counting.

    Reasons: bad_topic, bad_serial, unknown_kind, empty, too_large, bad_encoding, bad_json,
    not_object, missing_field, bad_type, bad_value, bad_time, naive_time, future_time,
    batch_too_large.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reading:
    at: dt.datetime  # aware, UTC
    energy_kwh: Decimal  # cumulative register, quantized to 0.001
    relay: Relay
    power_w: Decimal | None = None
    voltage_v: Decimal | None = None
    credit_kwh: Decimal | None = None
    tamper: bool = False


@dataclass(frozen=True, slots=True)
class Telemetry:
    serial: str
    readings: tuple[Reading, ...]  # one reading or a batch: never empty


@dataclass(frozen=True, slots=True)
class Ack:
    serial: str
    command_id: uuid.UUID
    status: AckStatus
    relay: Relay
    at: dt.datetime
    error: str | None = None
    energy_kwh: Decimal | None = None
    credit_kwh: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Status:
    serial: str
    online: bool
    relay: Relay | None = None
    fw: str | None = None


Message: TypeAlias = Telemetry | Ack | Status


# --- Topics -----------------------------------------------------------------------------------


def _check_serial(serial: str) -> None:
    if not SERIAL_RE.fullmatch(serial):
        raise ProtocolError("bad_serial", f"{serial[:80]!r} is not 1-64 letters, digits, - or _")


def parse_topic(topic: str, prefix: str) -> tuple[str, str]:
    """``(serial, kind)`` of ``{prefix}/meters/{serial}/{kind}`` for an inbound kind."""
    head = f"{prefix}/meters/"
    if not topic.startswith(head):
        raise ProtocolError("bad_topic", f"{topic[:200]!r} is not under {head!r}")
    parts = topic[len(head) :].split("/")
    if len(parts) != 2:
        raise ProtocolError("bad_topic", f"{topic[:200]!r} is not {head}<serial>/<kind>")
    serial, kind = parts
    _check_serial(serial)
    if kind not in KINDS_IN:
        raise ProtocolError("unknown_kind", f"{kind[:40]!r} is not one of {', '.join(KINDS_IN)}")
    return serial, kind


def command_topic(prefix: str, serial: str) -> str:
    """The topic a meter's commands go to. Raises ValueError for an invalid serial."""
    if not SERIAL_RE.fullmatch(serial):
        raise ValueError(f"invalid meter serial {serial!r}")
    return f"{prefix}/meters/{serial}/{KIND_CMD}"


def subscription_topics(
    prefix: str, shared_group: str | None = None, *, statuses: bool = True
) -> list[str]:
    """The head-end's subscriptions.

    With a group, acks and telemetry are shared subscriptions (MQTT 5, Mosquitto): the
    broker hands each message to one process of the group. Statuses never are: a meter's
    last will and the status it sends on reconnecting follow each other within a round
    trip, and two processes could store them in the wrong order, leaving an online meter
    marked offline. One process takes them all, in order; the others pass ``statuses``
    False.
    """
    share = f"$share/{shared_group}/" if shared_group else ""
    topics = [f"{share}{prefix}/meters/+/{kind}" for kind in KINDS_IN if kind != "status"]
    return [*topics, f"{prefix}/meters/+/status"] if statuses else topics


def stale_subscription_topics(
    prefix: str, shared_group: str | None = None, *, statuses: bool = True
) -> list[str]:
    """The head-end's subscriptions of other settings (unshared, sharing statuses, taking
    statuses or not), which a persistent session may still hold from an earlier run."""
    groups = ["", f"$share/{shared_group}/"] if shared_group else [""]
    every = [f"{share}{prefix}/meters/+/{kind}" for share in groups for kind in KINDS_IN]
    wanted = subscription_topics(prefix, shared_group, statuses=statuses)
    return [topic for topic in every if topic not in wanted]


# --- Parsing ----------------------------------------------------------------------------------


def _fail(reason: str, detail: str) -> NoReturn:
    raise ProtocolError(reason, detail)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in an object")
    return obj


_DECODER = json.JSONDecoder(
    parse_float=Decimal,
    parse_int=Decimal,
    parse_constant=_no_constant,
    object_pairs_hook=_no_duplicates,
)


def _load(payload: bytes) -> dict[str, Any]:
    if not payload:
        # An empty message clears a retained status: routine when a meter is retired.
        _fail("empty", "empty payload")
    if len(payload) > MAX_PAYLOAD_BYTES:
        _fail("too_large", f"{len(payload)} bytes, at most {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            "bad_encoding", f"not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise ProtocolError("bad_json", "nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError included
        raise ProtocolError("bad_json", str(exc)[:200]) from None
    if not isinstance(value, dict):
        _fail("not_object", f"the payload is a JSON {type(value).__name__}, not an object")
    return value


def _required(obj: dict[str, Any], name: str, where: str) -> Any:
    value = obj.get(name)
    if value is None:
        _fail("missing_field", f"{where}{name} is required")
    return value


def _decimal(
    value: Any, name: str, *, low: Decimal, high: Decimal, quantum: Decimal = KWH
) -> Decimal:
    # bool is an int in Python, but json gives Decimal for every number: only Decimal passes.
    if not isinstance(value, Decimal):
        _fail("bad_type", f"{name} must be a number")
    if not low <= value <= high:
        _fail("bad_value", f"{name} must be between {low} and {high}")
    try:
        # Vendors' float formatting (15234.125000000002) is rounded to the protocol's 0.001.
        result = value.quantize(quantum, context=_DECIMAL)
    except DecimalException:  # pragma: no cover - bounded above, kept for totality
        _fail("bad_value", f"{name} cannot be rounded to {quantum}")
    return result.copy_abs() if result.is_zero() else result  # no "-0.000"


def _optional_decimal(
    obj: dict[str, Any], name: str, where: str, *, low: Decimal, high: Decimal
) -> Decimal | None:
    value = obj.get(name)
    return None if value is None else _decimal(value, where + name, low=low, high=high)


def _time(value: Any, name: str, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        _fail("bad_type", f"{name} must be an ISO 8601 string")
    if len(value) > MAX_TIME_TEXT:
        _fail("bad_time", f"{name} is too long for a time")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        _fail("bad_time", f"{name} {value!r} is not an ISO 8601 time")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        _fail("naive_time", f"{name} {value!r} has no UTC offset")
    try:
        at = parsed.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        _fail("bad_time", f"{name} {value!r} is out of range")
    if at < EARLIEST:
        _fail("bad_time", f"{name} {value!r} is before {EARLIEST:%Y}: the meter's clock is not set")
    if at > now + MAX_CLOCK_AHEAD:
        _fail("future_time", f"{name} {value!r} is more than {MAX_CLOCK_AHEAD} ahead")
    return at


def _relay(value: Any, name: str) -> Relay:
    if not isinstance(value, str):
        _fail("bad_type", f"{name} must be a string")
    if value == "on":
        return "on"
    if value == "off":
        return "off"
    _fail("bad_value", f"{name} must be 'on' or 'off'")


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        _fail("bad_type", f"{name} must be true or false")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        _fail("bad_type", f"{name} must be a string")
    if len(value) > MAX_TEXT:
        _fail("bad_value", f"{name} is longer than {MAX_TEXT} characters")
    if UNSAFE_TEXT_RE.search(value):
        _fail("bad_value", f"{name} contains control characters or invalid code points")
    return value


def _reading(obj: Any, where: str, now: dt.datetime) -> Reading:
    if not isinstance(obj, dict):
        _fail("bad_type", f"{where.rstrip('.') or 'a reading'} must be an object")
    tamper = obj.get("tamper")
    return Reading(
        at=_time(_required(obj, "at", where), where + "at", now),
        energy_kwh=_decimal(
            _required(obj, "energy_kwh", where),
            where + "energy_kwh",
            low=Decimal(0),
            high=MAX_ENERGY_KWH,
        ),
        relay=_relay(_required(obj, "relay", where), where + "relay"),
        power_w=_optional_decimal(obj, "power_w", where, low=-MAX_POWER_W, high=MAX_POWER_W),
        voltage_v=_optional_decimal(obj, "voltage_v", where, low=Decimal(0), high=MAX_VOLTAGE_V),
        # Prepaid meters with emergency credit report a negative balance.
        credit_kwh=_optional_decimal(
            obj, "credit_kwh", where, low=-MAX_ENERGY_KWH, high=MAX_ENERGY_KWH
        ),
        tamper=False if tamper is None else _bool(tamper, where + "tamper"),
    )


def _telemetry(serial: str, obj: dict[str, Any], now: dt.datetime) -> Telemetry:
    if "readings" not in obj:
        return Telemetry(serial=serial, readings=(_reading(obj, "", now),))
    batch = obj["readings"]
    if not isinstance(batch, list):
        _fail("bad_type", "readings must be a list")
    if not batch:
        _fail("bad_value", "readings is empty")
    if len(batch) > MAX_BATCH:
        _fail("batch_too_large", f"{len(batch)} readings, at most {MAX_BATCH}")
    readings = tuple(_reading(item, f"readings[{i}].", now) for i, item in enumerate(batch))
    return Telemetry(serial=serial, readings=readings)


def _ack(serial: str, obj: dict[str, Any], now: dt.datetime) -> Ack:
    raw_id = _required(obj, "id", "")
    if not isinstance(raw_id, str):
        _fail("bad_type", "id must be a string")
    if not UUID_RE.fullmatch(raw_id):
        _fail("bad_value", f"id {raw_id[:80]!r} is not a UUID")
    status = _required(obj, "status", "")
    if status not in ("ok", "error"):
        _fail("bad_type" if not isinstance(status, str) else "bad_value", "status: ok or error")
    error = obj.get("error")
    return Ack(
        serial=serial,
        command_id=uuid.UUID(raw_id),
        status="ok" if status == "ok" else "error",
        relay=_relay(_required(obj, "relay", ""), "relay"),
        at=_time(_required(obj, "at", ""), "at", now),
        error=None if error is None else _text(error, "error"),
        energy_kwh=_optional_decimal(obj, "energy_kwh", "", low=Decimal(0), high=MAX_ENERGY_KWH),
        credit_kwh=_optional_decimal(
            obj, "credit_kwh", "", low=-MAX_ENERGY_KWH, high=MAX_ENERGY_KWH
        ),
    )


def _status(serial: str, obj: dict[str, Any]) -> Status:
    relay = obj.get("relay")
    fw = obj.get("fw")
    return Status(
        serial=serial,
        online=_bool(_required(obj, "online", ""), "online"),
        relay=None if relay is None else _relay(relay, "relay"),
        fw=None if fw is None else _text(fw, "fw"),
    )


def parse_message(
    topic: str, payload: bytes, prefix: str, *, now: dt.datetime | None = None
) -> Message:
    """Parse one inbound message. Raises ProtocolError, and nothing else, if it is invalid.

    ``now`` (aware) is the reference for refusing times from the future; default: the clock.
    A JSON null is taken as an absent optional field.
    """
    serial, kind = parse_topic(topic, prefix)
    obj = _load(bytes(payload))
    now = now or dt.datetime.now(dt.UTC)
    if kind == "telemetry":
        return _telemetry(serial, obj, now)
    if kind == "ack":
        return _ack(serial, obj, now)
    return _status(serial, obj)


# --- Building (platform → meter) ----------------------------------------------------------------


def format_time(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: what the simplest meter parser reads."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a naive time cannot be sent to a meter")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def command_payload(
    command_id: uuid.UUID,
    action: str,
    issued_at: dt.datetime,
    expires_at: dt.datetime,
    token: str | None = None,
) -> bytes:
    """The JSON of a ``cmd`` message. Raises ValueError on arguments the protocol cannot carry."""
    if action not in ACTIONS:
        raise ValueError(f"unknown command action {action!r}")
    if (action == "token") != (token is not None):
        raise ValueError("a token goes with action 'token', and only with it")
    body: dict[str, str] = {
        "id": str(uuid.UUID(str(command_id))),
        "action": action,
        "issued_at": format_time(issued_at),
        "expires_at": format_time(expires_at),
    }
    if expires_at <= issued_at:
        raise ValueError("a command must expire after it is issued")
    if token is not None:
        if not TOKEN_RE.fullmatch(token):
            raise ValueError("a token is digits only")
        body["token"] = token
    return json.dumps(body, separators=(",", ":")).encode()
