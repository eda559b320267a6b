"""A fleet of simulated meters on a small pool of MQTT connections.

Meters share paho clients (``meters_per_client``, 500 by default), as behind a data
concentrator: each client keeps a persistent session (clean session off, a client id that
depends only on the prefix and its meters' serials) and subscribes with QoS 1 to the cmd
topics of its meters, one wildcard for a pool (amqtt matches every publish against every
filter, so a short filter list keeps the embedded broker fast) or the exact topics for a
client of a few meters. paho reconnects by itself with backoff; every (re)connection
subscribes again and republishes each meter's retained status.

A meter alone on its client (a fleet of one, or an outage-prone meter: it has a modem of
its own) logs in with its serial as username, as the protocol asks, and sets its last
will; an outage drops its connection without a DISCONNECT, so the broker publishes the
will, and the meter reconnects when the outage ends (its session kept, unless the broker
is told to forget it). Behind a shared client, an outage is the concentrator's report.

One scheduler thread wakes each meter at its next reading (or at the earliest instant its
prepaid credit could run out); simulated time runs ``speed`` times faster than wall time.
"""

import contextlib
import hashlib
import heapq
import itertools
import logging
import re
import socket
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt

from sandbox.meters.history import HistoryResult, publish_history
from sandbox.meters.meter import (
    DEFAULT_FACTORY_KEY,
    DUPLICATE_SHARE,
    FLAKY_SHARE,
    TAMPER_SHARE,
    Behaviour,
    Meter,
    MeterSpec,
)
from sandbox.meters.protocol import CMD, STATUS, encode, topic

logger = logging.getLogger("sandbox.meters")

DEFAULT_PORT = 11883  # sandbox.broker's port, never a real broker's 1883
MAX_INFLIGHT = 1000  # paho's default of 20 caps QoS 1 throughput far below the broker's
EXACT_SUBSCRIPTIONS_UP_TO = 16  # meters per client; beyond, one wildcard
SERIAL = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the protocol's serial numbers


@dataclass
class SimClock:
    """Simulated epoch seconds: ``start`` at creation, then ``speed`` times wall time."""

    speed: float = 1.0
    start: float = field(default_factory=time.time)
    _origin: float = field(default_factory=time.monotonic, repr=False)

    def now(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.speed

    def wall_delay(self, at: float) -> float:
        return (at - self.now()) / self.speed


def select_share(serials: Sequence[str], share: float | Collection[str], salt: str) -> set[str]:
    """The serials a behaviour applies to: exactly round(share × n), stable for a serial.

    A collection of serials is taken as is. The salt keeps behaviours independent (the
    prepaid meters are not also the flaky ones).
    """
    if not isinstance(share, int | float):
        return set(share) & set(serials)
    if not 0 <= share <= 1:
        raise ValueError(f"a share of the fleet is between 0 and 1, not {share}")
    wanted = round(share * len(serials))
    ranked = sorted(serials, key=lambda s: hashlib.sha256(f"{salt}:{s}".encode()).digest())
    return set(ranked[:wanted])


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n


class _Scheduler(threading.Thread):
    """Wakes meters at simulated instants; a newer wake-up replaces an older one."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(name="meters-scheduler", daemon=True)
        self._clock = clock
        self._heap: list[tuple[float, int, int, Meter]] = []
        self._generation: dict[str, int] = {}
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False

    def wake_at(self, meter: Meter, at: float) -> None:
        with self._condition:
            generation = self._generation.get(meter.serial, 0) + 1
            self._generation[meter.serial] = generation
            sequence = next(self._sequence)
            heapq.heappush(self._heap, (at, sequence, generation, meter))
            if self._heap[0][1] == sequence:  # a new earliest wake-up: shorten the wait
                self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()

    def run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped:
                    if self._heap:
                        delay = self._clock.wall_delay(self._heap[0][0])
                        if delay <= 0:
                            break
                        self._condition.wait(min(delay, 1.0))
                    else:
                        self._condition.wait(1.0)
                if self._stopped:
                    return
                _, _, generation, meter = heapq.heappop(self._heap)
                if generation != self._generation.get(meter.serial):
                    continue  # superseded by a later wake_at
            try:
                at = meter.on_timer()
            except Exception:  # one meter's bug must not stop the fleet
                logger.exception("%s: timer failed", meter.serial)
                at = self._clock.now() + 60
            self.wake_at(meter, at)


class _Connection:
    """One paho client carrying the traffic of some meters."""

    def __init__(self, fleet: "Fleet", client_id: str, serials: Sequence[str]) -> None:
        self.fleet = fleet
        self.client_id = client_id
        self.serials = list(serials)
        self.meters: dict[str, Meter] = {}
        self.ready = threading.Event()
        self.published = _Counter()
        self._last_info: mqtt.MQTTMessageInfo | None = None
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(0)  # keep everything while the broker is away
        client.reconnect_delay_set(min_delay=1, max_delay=fleet.reconnect_max_delay)
        if self.alone:
            # A meter on its own connection: its serial as username, the protocol's will.
            client.username_pw_set(self.serials[0])
            will = topic(fleet.prefix, self.serials[0], STATUS)
            client.will_set(will, encode({"online": False}), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client

    @property
    def alone(self) -> bool:
        return len(self.serials) == 1

    @property
    def filters(self) -> list[str]:
        if len(self.serials) <= EXACT_SUBSCRIPTIONS_UP_TO:
            return [topic(self.fleet.prefix, serial, CMD) for serial in self.serials]
        return [topic(self.fleet.prefix, "+", CMD)]

    def start(self) -> None:
        self.client.connect_async(self.fleet.host, self.fleet.port, keepalive=30)
        self.client.loop_start()

    def stop(self, timeout: float) -> None:
        for meter in self.meters.values():
            meter.shutdown()
        info = self._last_info
        if info is not None and self.client.is_connected():
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                logger.warning("%s: last statuses not confirmed before stopping", self.client_id)
        self.client.disconnect()
        self.client.loop_stop()

    # -- MeterLink -----------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self._last_info = self.client.publish(topic, payload, qos=1, retain=retain)
        self.published.add()

    def wake_at(self, meter: Meter, at: float) -> None:
        self.fleet.scheduler.wake_at(meter, at)

    def drop(self, meter: Meter) -> bool:
        """A lone meter's connection ends without a DISCONNECT: the broker sees the socket
        close and publishes the last will. Messages already handed to paho go out first."""
        if not self.alone:
            return False
        self.ready.clear()
        self.client.loop_stop()  # no automatic reconnection until rejoin()
        sock = self.client.socket()
        if isinstance(sock, socket.socket):  # plain TCP, as the simulator connects
            with contextlib.suppress(OSError):  # already gone (the broker was down)
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        return True

    def rejoin(self, meter: Meter, *, session_lost: bool) -> bool:
        if not self.alone:
            return False
        if session_lost:
            self._forget_session()
        self.client.connect_async(self.fleet.host, self.fleet.port, keepalive=30)
        self.client.loop_start()  # on_connect subscribes, then meter.announce() resumes it
        return True

    def _forget_session(self) -> None:
        """What a broker that lost the session does: a clean-session login with our client
        id discards the subscriptions and the messages queued for us."""
        eraser = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        eraser.username_pw_set(self.serials[0])
        try:
            eraser.connect(self.fleet.host, self.fleet.port)
            eraser.loop_start()
            eraser.disconnect()
            eraser.loop_stop()
        except OSError:
            logger.warning("%s: broker unreachable, its session not forgotten", self.client_id)

    # -- paho callbacks: paho's thread dies on an exception, so none may escape ----------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            if reason.is_failure:
                logger.warning("%s: broker refused the connection: %s", self.client_id, reason)
                return
            logger.info("%s connected (session present: %s)", self.client_id, flags.session_present)
            client.subscribe([(f, 1) for f in self.filters])
            for meter in self.meters.values():
                meter.announce()
        except Exception:
            logger.exception("%s: on_connect failed", self.client_id)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            logger.error("%s: subscription refused: %s", self.client_id, reasons)
            return
        self.ready.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.ready.clear()
        if reason.is_failure:
            logger.warning("%s lost the broker (%s); reconnecting", self.client_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            parts = message.topic.split("/")
            is_command = len(parts) >= 3 and parts[-1] == CMD
            meter = self.meters.get(parts[-2]) if is_command else None
            if meter is None:
                # Another pool's meter (wildcard), or a meter no longer in this fleet.
                logger.debug("%s: not ours: %s", self.client_id, message.topic)
                return
            meter.handle_command(bytes(message.payload))
        except Exception:
            logger.exception("%s: command on %s failed", self.client_id, message.topic)


class Fleet:
    """Simulated meters speaking protocol v1 to a real broker, started once.

    ``prepaid``, ``offline`` (outage-prone), ``flaky``, ``duplicates`` and ``tamper`` take
    a share of the fleet (0..1) or the serials themselves. ``interval`` is in simulated
    seconds; the meters' clocks (readings, acks, command expiry) are simulated time, which
    starts at ``start_time`` (default now) and runs ``speed`` times faster than wall time.

        with Fleet("127.0.0.1", 11883, "mwolo", count=100, prepaid=0.3) as fleet:
            fleet.meter("SIM-000001").relay
    """

    def __init__(
        self,
        broker_host: str = "127.0.0.1",
        broker_port: int = DEFAULT_PORT,
        prefix: str = "mwolo",
        *,
        serials: Iterable[str] | None = None,
        count: int | None = None,
        serial_prefix: str = "SIM",
        prepaid: float | Collection[str] = 0.0,
        offline: float | Collection[str] = 0.0,
        flaky: float | Collection[str] = 0.0,
        duplicates: float | Collection[str] = 0.0,
        tamper: float | Collection[str] = 0.0,
        factory_key: bytes = DEFAULT_FACTORY_KEY,
        interval: float = 60.0,
        speed: float = 1.0,
        initial_credit_kwh: Decimal = Decimal(10),
        meters_per_client: int = 500,
        start_time: datetime | None = None,
        seed: str | None = None,
        reconnect_max_delay: int = 30,
    ) -> None:
        if serials is None:
            if count is None or count < 1:
                raise ValueError("a fleet needs serials or a count of at least 1")
            serials = [f"{serial_prefix}-{i:06d}" for i in range(1, count + 1)]
        self.serials = list(dict.fromkeys(serials))
        if not self.serials:
            raise ValueError("a fleet needs at least one meter")
        bad = [s for s in self.serials if not SERIAL.fullmatch(s)]
        if bad:
            raise ValueError(f"serials are 1-64 letters, digits, - or _: {bad[:5]}")
        if not prefix or any(c in prefix for c in "+#\0"):
            raise ValueError(f"not a usable topic prefix: {prefix!r}")
        if interval <= 0 or speed <= 0 or meters_per_client < 1:
            raise ValueError("interval, speed and meters_per_client must be positive")
        self.host, self.port, self.prefix = broker_host, broker_port, prefix
        self.reconnect_max_delay = reconnect_max_delay
        self.interval = interval
        self.factory_key = factory_key
        self.clock = SimClock(
            speed=speed, start=start_time.timestamp() if start_time else time.time()
        )
        self.scheduler = _Scheduler(self.clock)

        prepaid_set = select_share(self.serials, prepaid, "prepaid")
        offline_set = select_share(self.serials, offline, "offline")
        flaky_set = select_share(self.serials, flaky, "flaky")
        duplicate_set = select_share(self.serials, duplicates, "duplicates")
        tamper_set = select_share(self.serials, tamper, "tamper")

        self.connections: list[_Connection] = []
        self._meters: dict[str, Meter] = {}
        # An outage-prone meter has a modem of its own: its outages drop its connection.
        pooled = [serial for serial in self.serials if serial not in offline_set]
        groups = [
            pooled[i : i + meters_per_client] for i in range(0, len(pooled), meters_per_client)
        ]
        groups += [[serial] for serial in self.serials if serial in offline_set]
        for group in groups:
            connection = _Connection(self, self._client_id(group), group)
            self.connections.append(connection)
            for serial in group:
                behaviour = Behaviour(
                    flaky=FLAKY_SHARE if serial in flaky_set else 0.0,
                    duplicates=DUPLICATE_SHARE if serial in duplicate_set else 0.0,
                    tamper=TAMPER_SHARE if serial in tamper_set else 0.0,
                    outages=serial in offline_set,
                )
                spec = MeterSpec.for_serial(
                    serial, prepaid=serial in prepaid_set, factory_key=factory_key
                )
                meter = Meter(
                    spec,
                    prefix=prefix,
                    clock=self.clock.now,
                    link=connection,
                    interval=interval,
                    initial_credit_kwh=initial_credit_kwh,
                    behaviour=behaviour,
                    seed=seed,
                )
                connection.meters[serial] = meter
                self._meters[serial] = meter
        self._meters = {serial: self._meters[serial] for serial in self.serials}  # fleet order
        self._state = "new"

    def _client_id(self, group: Sequence[str]) -> str:
        if len(group) == 1:
            return f"{self.prefix}-{group[0]}"
        # Stable across restarts of the same fleet, so the broker keeps our sessions.
        digest = hashlib.sha256("\n".join(group).encode()).hexdigest()[:12]
        return f"{self.prefix}-meters-{group[0]}-{len(group)}-{digest}"

    # -- life cycle ----------------------------------------------------------------------

    def start(self, wait: float | None = 15.0) -> "Fleet":
        """Connect every client; with ``wait``, block until all are subscribed or raise."""
        if self._state == "running":
            return self
        if self._state == "stopped":
            # Threads and paho clients are not restartable: a new Fleet with the same
            # serials gets the same client ids, hence the same broker sessions.
            raise RuntimeError("a stopped fleet cannot start again; create a new Fleet")
        self._state = "running"
        for connection in self.connections:
            connection.start()
        for meter in self._meters.values():
            self.scheduler.wake_at(meter, meter.on_timer())
        self.scheduler.start()
        if wait is not None and not self.wait_connected(wait):
            self.stop()
            raise TimeoutError(f"the meters could not subscribe at {self.host}:{self.port}")
        logger.info(
            "%d meters on %d connections to %s:%d (prefix %s)",
            len(self._meters),
            len(self.connections),
            self.host,
            self.port,
            self.prefix,
        )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop metering; each meter publishes {"online": false}; sessions stay on the broker."""
        if self._state != "running":
            return
        self._state = "stopped"
        self.scheduler.stop()
        self.scheduler.join(timeout)
        for connection in self.connections:
            connection.stop(timeout)
        logger.info("meter fleet stopped")

    def wait_connected(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        for connection in self.connections:
            if not connection.ready.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    @property
    def connected(self) -> bool:
        return all(connection.ready.is_set() for connection in self.connections)

    def __enter__(self) -> "Fleet":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- meters --------------------------------------------------------------------------

    def meter(self, serial: str) -> Meter:
        return self._meters[serial]

    @property
    def meters(self) -> list[Meter]:
        return list(self._meters.values())

    def published(self) -> int:
        """Messages handed to the broker connections so far."""
        return sum(connection.published.value for connection in self.connections)

    def manifest(self) -> list[dict[str, Any]]:
        """What a vendor delivers with the meters: serial, model data, prepaid secrets."""
        rows = []
        for meter in self._meters.values():
            spec = meter.spec
            row: dict[str, Any] = {
                "serial": spec.serial,
                "category": str(spec.category),
                "payment_mode": "prepaid" if spec.prepaid else "postpaid",
                "rated_w": spec.rated_w,
                "fw": spec.fw,
            }
            if spec.prepaid:
                row["openpaygo_secret_hex"] = spec.secret_hex
                row["openpaygo_count"] = meter.token_count
            rows.append(row)
        return rows

    def publish_history(
        self,
        readings_per_meter: int,
        step_seconds: float,
        batch_size: int = 100,
        *,
        end: datetime | None = None,
        connections: int = 2,
        timeout: float = 600.0,
    ) -> HistoryResult:
        """Publish past readings of every meter as fast as the broker takes them.

        Readings end one step before ``end`` (default: the fleet's simulated start, so the
        history joins the live register) and follow each meter's load curve. Messages are
        serialised first, then published over ``connections`` fresh clients in parallel;
        the result says what was published and when the last PUBACK came back.
        """
        last = (end.timestamp() if end else self.clock.start) - step_seconds
        return publish_history(
            host=self.host,
            port=self.port,
            prefix=self.prefix,
            specs=[meter.spec for meter in self._meters.values()],
            readings_per_meter=readings_per_meter,
            step_seconds=step_seconds,
            batch_size=batch_size,
            last_at=last,
            connections=connections,
            timeout=timeout,
        )
