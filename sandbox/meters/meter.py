"""One simulated meter: register, relay, prepaid credit, commands, misbehaviour.

A ``Meter`` knows nothing of MQTT connections: it publishes through a ``MeterLink`` (the
fleet's pooled client) and asks the link to wake it up at a simulated instant. Every public
method is thread-safe: commands arrive on paho's network threads, timers on the fleet's
scheduler thread, and tests call the API from their own thread.
"""

import hashlib
import hmac
import json
import logging
import random
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

import openpaygo
from openpaygo import TokenType

from sandbox.meters.load import CURVES, Category
from sandbox.meters.protocol import (
    ACK,
    KWH,
    MAX_BATCH,
    STATUS,
    TELEMETRY,
    encode,
    iso,
    kwh,
    parse_time,
    topic,
)

logger = logging.getLogger("sandbox.meters")

DEFAULT_FACTORY_KEY = b"mwolo-sandbox-factory-key"
FIRMWARES = ("2.4.1", "2.4.1", "2.4.0", "2.3.7")
REGISTER_CAPACITY_KWH = Decimal("1000000")  # a 6+3 digit register rolls over to 0 here
FINE = Decimal("0.000001")  # internal resolution: sub-Wh steps must not be rounded away
# OpenPAYGO: "The token count of the last valid token. When a device is new, this is 1."
TOKEN_START_COUNT = 1
REMEMBERED_COMMANDS = 256  # the protocol asks for at least 64
OFFLINE_BUFFER = 10_000  # readings a meter keeps while it cannot send
OFFLINE_INBOX = 1000  # commands held for an offline meter
STANDARD_TOKEN_DIGITS = 9

# What the fleet-level switches mean for one misbehaving meter.
FLAKY_SHARE = 0.2  # share of acks and telemetry a flaky meter loses
DUPLICATE_SHARE = 0.2  # share of messages a duplicating meter sends twice
TAMPER_SHARE = 0.05  # share of readings of a tamper-prone meter flagged tamper
OUTAGE_CHANCE = 0.02  # per reading, for an outage-prone meter
OUTAGE_READINGS = (5, 60)  # an outage lasts this many intervals


def factory_secret(serial: str, factory_key: bytes = DEFAULT_FACTORY_KEY) -> str:
    """The OpenPAYGO secret (16 bytes, hex) the sandbox "factory" gave meter ``serial``.

    A vendor hands each meter's secret to the distributor; the sandbox derives it from the
    serial instead, so the platform's demo data and the tests can know it without a file.
    """
    return hmac.new(factory_key, serial.encode(), hashlib.sha256).hexdigest()[:32]


def _rng(seed: str | None) -> random.Random:
    # Simulation noise, not security: a seeded generator makes fleets reproducible.
    return random.Random(seed)  # noqa: S311


def _wh_to_kwh(wh: float) -> Decimal:
    return Decimal(wh / 1000).quantize(FINE)


@dataclass(frozen=True)
class MeterSpec:
    """What the factory made: fixed for a serial, so a restarted simulator agrees with itself."""

    serial: str
    category: Category
    rated_w: int
    fw: str
    prepaid: bool
    secret_hex: str | None
    installed_at: float  # epoch seconds
    register_at_install_kwh: Decimal

    @classmethod
    def for_serial(
        cls, serial: str, *, prepaid: bool, factory_key: bytes = DEFAULT_FACTORY_KEY
    ) -> "MeterSpec":
        rng = _rng(f"spec:{serial}")
        category = Category.COMMERCIAL if rng.random() < 0.2 else Category.RESIDENTIAL
        low, high = (2000, 12000) if category is Category.COMMERCIAL else (300, 1500)
        installed = datetime(2024, 1, 1, tzinfo=UTC).timestamp() + rng.uniform(0, 365) * 86400
        return cls(
            serial=serial,
            category=category,
            rated_w=rng.randrange(low, high, 50),
            fw=rng.choice(FIRMWARES),
            prepaid=prepaid,
            secret_hex=factory_secret(serial, factory_key) if prepaid else None,
            installed_at=installed,
            register_at_install_kwh=Decimal(rng.randrange(0, 5_000_000)) / 1000,
        )

    def register_at(self, t: float) -> Decimal:
        """The register at epoch second ``t`` had the meter drawn its curve since installation.

        A live meter whose relay was off at times reads less than this, never more: so a
        simulator restarted from this formula never shows a register going backwards.
        """
        curve = CURVES[self.category]
        wh = self.rated_w * (curve.energy_wh(t) - curve.energy_wh(self.installed_at))
        return (self.register_at_install_kwh + _wh_to_kwh(wh)) % REGISTER_CAPACITY_KWH


@dataclass
class Behaviour:
    """How a meter misbehaves; shares are probabilities per message or per reading."""

    flaky: float = 0.0
    duplicates: float = 0.0
    tamper: float = 0.0
    outages: bool = False


@dataclass(frozen=True)
class TokenResult:
    accepted: bool
    token_type: int | None = None  # openpaygo.TokenType
    value: Decimal | None = None  # kWh added (ADD_TIME) or set (SET_TIME)
    credit_kwh: Decimal | None = None
    error: str | None = None


@dataclass(frozen=True)
class _Command:
    id: str
    action: str
    expires_at: datetime | None
    token: object
    problem: str | None = None  # the command is identified but cannot be carried out


@dataclass
class _Outcome:
    status: str
    error: str | None


class MeterLink(Protocol):
    """The fleet's side of a meter: its broker connection and its alarm clock."""

    def publish(self, topic: str, payload: bytes, retain: bool) -> None: ...

    def wake_at(self, meter: "Meter", at: float) -> None: ...

    def drop(self, meter: "Meter") -> bool:
        """The meter lost its network. True: its connection is gone without a word (the
        broker publishes its last will); False: the link stays up for other meters (a data
        concentrator), and the meter's offline status goes through it."""
        ...

    def rejoin(self, meter: "Meter", *, session_lost: bool) -> bool:
        """The meter's network is back. True: the link reconnects (with a fresh session if
        ``session_lost``) and calls ``meter.announce()`` once connected; False: the link
        never went away."""
        ...


class Meter:
    """A meter of protocol v1. See docs/meter-protocol.md for every message it sends."""

    def __init__(
        self,
        spec: MeterSpec,
        *,
        prefix: str,
        clock: Callable[[], float],
        link: MeterLink,
        interval: float = 60.0,
        initial_credit_kwh: Decimal = Decimal(10),
        behaviour: Behaviour | None = None,
        seed: str | None = None,
    ) -> None:
        self.spec = spec
        self._prefix = prefix
        self._clock = clock
        self._link = link
        self._interval = interval
        self._behaviour = behaviour or Behaviour()
        self._rng = _rng(None if seed is None else f"{seed}:{spec.serial}")
        # Re-entrant: a relay change inside a command asks the link to reschedule us.
        self._lock = threading.RLock()

        now = clock()
        self._t = now  # the instant up to which the register has been integrated
        self._register = spec.register_at(now)
        self._credit = initial_credit_kwh.quantize(FINE) if spec.prepaid else Decimal(0)
        self._payg_disabled = False
        self._token_count = TOKEN_START_COUNT
        self._used_counts: list[int] = []
        self._platform_wants_off = False
        self._relay_on = self._relay_should_be_on()
        self._demand_w: float | None = None  # pinned demand, for tests and demos
        self._online = True
        self._rejoining = False  # back on the network, waiting for the link to connect
        self._outage_until: float | None = None
        self._outage_next: float | None = None  # an outage the timer starts once unlocked
        self._relay_stuck = False
        self._buffer: deque[dict[str, Any]] = deque(maxlen=OFFLINE_BUFFER)
        self._inbox: list[bytes] = []
        self._outcomes: OrderedDict[str, _Outcome] = OrderedDict()
        self._pending_tamper = False
        # Readings fall on whole seconds, spread over the interval so a fleet does not
        # publish in one burst.
        self._next_reading = float(int(now) + 1 + self._rng.randrange(max(1, int(interval))))

    # -- what tests and demos read -------------------------------------------------------

    @property
    def serial(self) -> str:
        return self.spec.serial

    @property
    def relay(self) -> str:
        with self._lock:
            self._advance(self._clock())
            return self._relay_text()

    @property
    def online(self) -> bool:
        return self._online

    @property
    def register_kwh(self) -> Decimal:
        """The register now, as the display shows it (3 decimals)."""
        with self._lock:
            self._advance(self._clock())
            return self._register.quantize(KWH, rounding=ROUND_DOWN)

    @property
    def credit_kwh(self) -> Decimal | None:
        if not self.spec.prepaid:
            return None
        with self._lock:
            self._advance(self._clock())
            return self._credit.quantize(KWH, rounding=ROUND_DOWN)

    @property
    def token_count(self) -> int:
        return self._token_count

    @property
    def applied_command_ids(self) -> list[str]:
        """Ids the meter has acted on (oldest first): it will only re-acknowledge these."""
        with self._lock:
            return list(self._outcomes)

    # -- what tests and demos do ---------------------------------------------------------

    def go_offline(self, until: float | None = None) -> None:
        """Lose the network until ``come_online`` (or ``until``, simulated time); metering
        goes on and readings are buffered.

        A meter on a connection of its own drops it without a DISCONNECT, so the broker
        publishes its last will (``{"online": false}``, retained) and keeps its
        persistent session. A meter behind a shared connection (a data concentrator) is
        reported offline by the concentrator, which holds its commands meanwhile.
        """
        with self._lock:
            if not self._online and not self._rejoining:
                return
            self._advance(self._clock())
            self._online = False
            self._rejoining = False
            self._outage_until = until
            logger.info("%s offline", self.serial)
        # Outside the lock: dropping a connection waits for its network thread, which may
        # be delivering a command to this meter (and waiting for the lock).
        if not self._link.drop(self):
            with self._lock:
                if not self._online:
                    self._publish(STATUS, {"online": False}, retain=True)
        if until is not None:
            self._link.wake_at(self, until)

    def come_online(self, *, session_lost: bool = False) -> None:
        """Back on the network: status, one batch of what was buffered, then the commands.

        A meter on a connection of its own reconnects with its persistent session (clean
        session off), so the broker delivers the commands it kept meanwhile; with
        ``session_lost`` the broker has forgotten it (session expired, broker restarted
        without persistence) and only the platform's re-send brings those commands.
        """
        with self._lock:
            if self._online or self._rejoining:
                return
            self._outage_until = None
            self._rejoining = True
        if not self._link.rejoin(self, session_lost=session_lost):
            with self._lock:
                self._resume()
        # else: the link calls announce() once connected, which resumes

    def _resume(self) -> None:
        if not self._rejoining:
            return
        now = self._clock()
        self._advance(now)
        self._online = True
        self._rejoining = False
        self._publish_status()
        buffered = list(self._buffer)
        self._buffer.clear()
        for start in range(0, len(buffered), MAX_BATCH):
            self._send(TELEMETRY, {"readings": buffered[start : start + MAX_BATCH]})
        inbox, self._inbox = self._inbox, []
        logger.info(
            "%s online: %d buffered readings, %d commands waiting",
            self.serial,
            len(buffered),
            len(inbox),
        )
        for payload in inbox:
            self._handle(payload)
        self._link.wake_at(self, self._next_wake(now))

    def enter_token(self, digits: str) -> TokenResult:
        """A client types a token on the keypad; an accepted token is reported at once."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            result = self._apply_token(digits, now)
            if result.accepted:
                self._send_reading(now)
            return result

    def set_flaky(self, share: float) -> None:
        self._behaviour.flaky = share

    def set_duplicates(self, share: float) -> None:
        self._behaviour.duplicates = share

    def set_tamper_share(self, share: float) -> None:
        self._behaviour.tamper = share

    def switch_by_hand(self, on: bool) -> None:
        """Someone works the relay by hand (a technician, or a client bridging a cut): it
        changes without a command, and the meter reports it (status and a reading)."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._relay_on == on:
                return
            self._relay_on = on
            logger.info("%s: relay switched %s by hand", self.serial, self._relay_text())
            self._publish_status()
            self._send_reading(now)
            self._link.wake_at(self, self._next_wake(now))

    def set_relay_stuck(self, stuck: bool) -> None:
        """A welded or jammed relay: while stuck it no longer moves, and connect and
        disconnect commands are acknowledged ``error: relay_fault``."""
        with self._lock:
            self._relay_stuck = stuck

    def tamper(self) -> None:
        """Open the cover: the meter sends a reading flagged ``tamper: true`` now."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._pending_tamper = True
            self._send_reading(now)

    def set_demand(self, watts: float | None) -> None:
        """Pin the load to a constant (tests, demos); None returns to the daily curve."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._demand_w = watts
            self._link.wake_at(self, self._next_wake(now))

    # -- what the fleet calls ------------------------------------------------------------

    def announce(self) -> None:
        """The link (re)connected: publish the retained status; a meter coming back from
        an outage also sends what it buffered and carries out what waited."""
        with self._lock:
            if self._rejoining:
                self._resume()
            elif self._online:
                self._publish_status()
            else:
                self._publish(STATUS, {"online": False}, retain=True)

    def handle_command(self, payload: bytes) -> None:
        """A message on our cmd topic. Never raises: bad input is logged and dropped."""
        with self._lock:
            if not self._online:
                # An unreachable meter gets nothing; the broker's session holds it meanwhile.
                if len(self._inbox) < OFFLINE_INBOX:
                    self._inbox.append(payload)
                return
            self._handle(payload)

    def on_timer(self) -> float:
        """The scheduler's call: read, run outages; returns the next instant to wake."""
        with self._lock:
            now = self._clock()
            back = (
                not self._online
                and not self._rejoining
                and self._outage_until is not None
                and now >= self._outage_until
            )
        if back:  # the link's work is done outside the lock (see go_offline)
            self.come_online()
        with self._lock:
            if now >= self._next_reading:
                self._advance(self._next_reading)
                self._scheduled_reading(self._next_reading)
                self._next_reading += self._interval
                if self._next_reading <= now:  # far behind (overloaded host): skip, don't flood
                    missed = int((now - self._next_reading) // self._interval) + 1
                    self._next_reading += missed * self._interval
            self._advance(now)
            outage, self._outage_next = self._outage_next, None
            wake = self._next_wake(now)
        if outage is not None:
            self.go_offline(until=outage)
            with self._lock:
                wake = self._next_wake(now)
        return wake

    def shutdown(self) -> None:
        """The simulator stops: the meter says it is offline (pooled links have no will)."""
        with self._lock:
            self._publish(STATUS, {"online": False}, retain=True)

    # -- consumption ---------------------------------------------------------------------

    def _power_share_w(self, t: float) -> float:
        if self._demand_w is not None:
            return self._demand_w
        return self.spec.rated_w * CURVES[self.spec.category].share(t)

    def _energy_wh(self, t0: float, t1: float) -> float:
        if self._demand_w is not None:
            return self._demand_w * (t1 - t0) / 3600
        curve = CURVES[self.spec.category]
        return self.spec.rated_w * (curve.energy_wh(t1) - curve.energy_wh(t0))

    def _peak_w(self) -> float:
        if self._demand_w is not None:
            return self._demand_w
        return self.spec.rated_w * max(CURVES[self.spec.category].points)

    def _credit_limited(self) -> bool:
        return self.spec.prepaid and not self._payg_disabled

    def _advance(self, to: float) -> None:
        """Integrate consumption up to ``to``; a prepaid meter cuts itself off at zero credit."""
        if to <= self._t:
            return
        if self._relay_on:
            used = _wh_to_kwh(self._energy_wh(self._t, to))
            if self._credit_limited() and used >= self._credit:
                cut = self._exhaustion(self._t, to, float(self._credit) * 1000)
                self._register = (self._register + self._credit) % REGISTER_CAPACITY_KWH
                self._credit = Decimal(0)
                self._t = cut
                self._update_relay()
                logger.info("%s out of credit: relay opened", self.serial)
                self._send_reading(cut)
            else:
                self._register = (self._register + used) % REGISTER_CAPACITY_KWH
                if self._credit_limited():
                    self._credit -= used
        self._t = to

    def _exhaustion(self, t0: float, t1: float, credit_wh: float) -> float:
        """The instant in [t0, t1] at which ``credit_wh`` has been drawn (bisection)."""
        low, high = t0, t1
        for _ in range(48):
            middle = (low + high) / 2
            if self._energy_wh(t0, middle) < credit_wh:
                low = middle
            else:
                high = middle
        return high

    def _next_wake(self, now: float) -> float:
        wake = self._next_reading
        if not self._online and self._outage_until is not None:
            wake = min(wake, self._outage_until)
        if self._relay_on and self._credit_limited() and self._peak_w() > 0:
            # Never later than the earliest instant the credit could run out.
            earliest = now + float(self._credit) * 1000 * 3600 / self._peak_w()
            wake = min(wake, max(earliest, now + 0.5))
        return wake

    # -- relay ---------------------------------------------------------------------------

    def _relay_text(self) -> str:
        return "on" if self._relay_on else "off"

    def _relay_should_be_on(self) -> bool:
        if self._platform_wants_off:
            return False
        return not self._credit_limited() or self._credit > 0

    def _update_relay(self) -> None:
        wanted = self._relay_should_be_on()
        if wanted != self._relay_on and not self._relay_stuck:
            self._relay_on = wanted
            self._publish_status()
            self._link.wake_at(self, self._next_wake(self._t))

    # -- commands ------------------------------------------------------------------------

    def _parse(self, payload: bytes) -> _Command | None:
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            logger.warning("%s: command is not JSON: %.200r", self.serial, payload)
            return None
        if not isinstance(body, dict):
            logger.warning("%s: command is not a JSON object: %.200r", self.serial, payload)
            return None
        command_id = body.get("id")
        if not isinstance(command_id, str) or not 0 < len(command_id) <= 128:
            logger.warning("%s: command without a usable id: %.200r", self.serial, payload)
            return None
        action = body.get("action")
        expires_at = parse_time(body.get("expires_at"))
        problem = None
        if action not in ("connect", "disconnect", "read", "token"):
            problem = "unsupported"
        elif expires_at is None or parse_time(body.get("issued_at")) is None:
            problem = "invalid_command"
        if problem:
            logger.warning("%s: command %s refused (%s)", self.serial, command_id, problem)
        return _Command(
            id=command_id,
            action=str(action),
            expires_at=expires_at,
            token=body.get("token"),
            problem=problem,
        )

    def _handle(self, payload: bytes) -> None:
        command = self._parse(payload)
        if command is None:
            return
        now = self._clock()
        self._advance(now)
        known = self._outcomes.get(command.id)
        if known is not None:
            # Already acted on: say so again, never act twice.
            logger.info("%s: command %s repeated, re-acknowledged", self.serial, command.id)
            self._ack(command.id, known, now)
            return
        if command.problem:
            self._ack(command.id, _Outcome("error", command.problem), now)
            return
        if command.expires_at is not None and command.expires_at.timestamp() <= now:
            logger.info("%s: command %s expired", self.serial, command.id)
            self._ack(command.id, _Outcome("error", "expired"), now)
            return
        outcome = self._execute(command, now)
        self._outcomes[command.id] = outcome
        while len(self._outcomes) > REMEMBERED_COMMANDS:
            self._outcomes.popitem(last=False)
        self._ack(command.id, outcome, now)

    def _execute(self, command: _Command, now: float) -> _Outcome:
        logger.info("%s: %s (%s)", self.serial, command.action, command.id)
        if command.action in ("connect", "disconnect"):
            if self._relay_stuck:
                return _Outcome("error", "relay_fault")
            self._platform_wants_off = command.action == "disconnect"
            self._update_relay()
            if command.action == "connect" and not self._relay_on:
                # Remembered: the relay closes by itself when credit is added.
                return _Outcome("error", "no_credit")
            return _Outcome("ok", None)
        if command.action == "read":
            self._send_reading(now)
            return _Outcome("ok", None)
        if not self.spec.prepaid:
            return _Outcome("error", "unsupported")
        digits = command.token if isinstance(command.token, str) else ""
        result = self._apply_token(digits, now)
        return _Outcome("ok", None) if result.accepted else _Outcome("error", result.error)

    def _ack(self, command_id: str, outcome: _Outcome, now: float) -> None:
        body: dict[str, Any] = {
            "id": command_id,
            "status": outcome.status,
            "relay": self._relay_text(),
            "at": iso(now),
        }
        if outcome.error:
            body["error"] = outcome.error
        body["energy_kwh"] = kwh(self._register)
        if self.spec.prepaid:
            body["credit_kwh"] = kwh(self._credit)
        self._send(ACK, body)

    # -- prepaid -------------------------------------------------------------------------

    def _apply_token(self, digits: str, now: float) -> TokenResult:
        if not self.spec.prepaid or self.spec.secret_hex is None:
            return TokenResult(accepted=False, error="unsupported")
        # Standard tokens only: the library's extended-token path fails on a bad token.
        if not digits.isascii() or not digits.isdigit() or len(digits) > STANDARD_TOKEN_DIGITS:
            return TokenResult(accepted=False, error="invalid_token")
        try:
            value, token_type, count, used_counts = openpaygo.decode_token(
                token=digits,
                secret_key=self.spec.secret_hex,
                count=self._token_count,
                used_counts=self._used_counts,
            )
        except Exception:  # a decoder failure must not take the meter down
            logger.exception("%s: token decoder failed", self.serial)
            return TokenResult(accepted=False, error="invalid_token")
        if token_type in (TokenType.INVALID, TokenType.ALREADY_USED):
            logger.info("%s: token refused (type %s)", self.serial, token_type)
            return TokenResult(accepted=False, token_type=token_type, error="invalid_token")
        # An older token accepted out of order must not move the count back (the
        # reference device firmware keeps the highest count it has seen).
        self._token_count = max(self._token_count, count)
        # The decoder returns no history while the list it got was empty: start it here.
        self._used_counts = used_counts or sorted({*self._used_counts, count})
        amount = Decimal(str(value)).quantize(KWH) if value is not None else None
        if token_type == TokenType.ADD_TIME and amount is not None:
            self._credit += amount
        elif token_type == TokenType.SET_TIME and amount is not None:
            self._credit = amount
        elif token_type == TokenType.DISABLE_PAYG:
            self._payg_disabled = True
        logger.info(
            "%s: token count %d accepted (type %s, %s kWh)", self.serial, count, token_type, amount
        )
        self._update_relay()
        return TokenResult(
            accepted=True,
            token_type=token_type,
            value=amount,
            credit_kwh=self._credit.quantize(KWH, rounding=ROUND_DOWN),
        )

    # -- outgoing ------------------------------------------------------------------------

    def _scheduled_reading(self, at: float) -> None:
        if self._behaviour.tamper and self._rng.random() < self._behaviour.tamper:
            self._pending_tamper = True
        self._send_reading(at)
        if self._behaviour.outages and self._online and self._rng.random() < OUTAGE_CHANCE:
            lasts = self._rng.randint(*OUTAGE_READINGS) * self._interval
            self._outage_next = at + lasts  # started by on_timer once the lock is released

    def _reading(self, at: float) -> dict[str, Any]:
        body: dict[str, Any] = {"at": iso(at), "energy_kwh": kwh(self._register)}
        body["relay"] = self._relay_text()
        if self._relay_on:
            body["power_w"] = round(self._power_share_w(at) * self._rng.uniform(0.95, 1.05))
            load = min(1.0, body["power_w"] / max(self.spec.rated_w, 1))
        else:
            body["power_w"] = 0
            load = 0.0
        # Weak grids sag under load.
        body["voltage_v"] = round(222 - 12 * load + self._rng.gauss(0, 1.5), 1)
        if self.spec.prepaid:
            body["credit_kwh"] = kwh(self._credit)
        if self._pending_tamper:
            body["tamper"] = True
            self._pending_tamper = False
        return body

    def _send_reading(self, at: float) -> None:
        self._send(TELEMETRY, self._reading(at))

    def _publish_status(self) -> None:
        if not self._online:
            return  # said when the meter is back
        status = {"online": True, "relay": self._relay_text(), "fw": self.spec.fw}
        self._publish(STATUS, status, retain=True)

    def _send(self, kind: str, body: dict[str, Any]) -> None:
        """Acks and telemetry, as this meter sends them: buffered, lost or doubled."""
        if not self._online:
            if kind == TELEMETRY:
                self._buffer.extend(body.get("readings", [body]))
            return
        if self._behaviour.flaky and self._rng.random() < self._behaviour.flaky:
            logger.debug("%s: %s lost (flaky)", self.serial, kind)
            return
        self._publish(kind, body)
        if self._behaviour.duplicates and self._rng.random() < self._behaviour.duplicates:
            self._publish(kind, body)

    def _publish(self, kind: str, body: dict[str, Any], retain: bool = False) -> None:
        self._link.publish(topic(self._prefix, self.serial, kind), encode(body), retain)


@dataclass
class RecordingLink:
    """A link that keeps what a meter publishes: for driving a meter without a broker."""

    messages: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    wakes: list[float] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.messages.append((topic, json.loads(payload), retain))

    def wake_at(self, meter: Meter, at: float) -> None:
        self.wakes.append(at)

    def drop(self, meter: Meter) -> bool:
        return False  # like a concentrator: the meter's own messages say it all

    def rejoin(self, meter: Meter, *, session_lost: bool) -> bool:
        return False
