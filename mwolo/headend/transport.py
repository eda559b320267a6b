"""The head-end's MQTT session: meter messages in, in batches, acknowledged after they are stored.

One long-running paho-mqtt 2.x client with a persistent session (fixed client id, clean
session off), subscribed at QoS 1 to every meter's ack, telemetry and status topics (acks
and telemetry shared within a group of head-ends, statuses to one of them:
``subscription_topics``).

Delivery guarantee (docs/meter-protocol.md, "Head-end"):

- The client runs with ``manual_ack=True``. paho's network thread parses each message as it
  arrives and queues it; a worker thread hands batches to ``handler`` and sends the PUBACKs
  of a batch only after ``handler`` returned, i.e. after the platform's transaction
  committed. Until then the broker keeps the message in the session's in-flight window and
  delivers it again if the head-end dies or the connection drops (duplicates are possible,
  losses are not; the platform's storage ignores duplicates).
- A handler that raises leaves its batch unacknowledged, and the transport retries the same
  batch in-process with exponential backoff until it succeeds. It does not reconnect to get
  the messages again: that would depend on the broker redelivering in-flight messages, which
  amqtt does not do, and would flood the platform with every queued message as duplicates.
  The broker still holds the batch unacknowledged, so if the process dies meanwhile the
  messages come back at the next connection. The handler should therefore raise only for
  transient failures (database unavailable): a batch that fails forever stops the flow.
- A PUBACK refers to a packet id of one connection. After the connection drops, the acks of
  messages received on it are not sent (the broker redelivers those messages, or it lost the
  session and then the ids mean nothing); the messages already received are still handled.
- Invalid messages are counted, logged, handed to ``on_rejected`` and acknowledged at once:
  they will never become valid.

Throughput with QoS 1 is bounded by the broker's in-flight window per client: the broker
stops sending after that many unacknowledged messages, and acks leave only when a batch is
stored, so a batch never holds more than the window. Mosquitto's ``max_inflight_messages``
(20 by default, 100 in deploy/mosquitto.conf) should be at least ``max_batch``;
``max_queued_messages`` / ``max_queued_bytes`` must hold what the fleet sends while the
head-end is away (a deployment) or behind (a clock-aligned burst). paho's own in-flight
limit (20 by default) applies only to what this client publishes: commands.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from .protocol import (
    Ack,
    Message,
    ProtocolError,
    Status,
    Telemetry,
    command_topic,
    parse_message,
    stale_subscription_topics,
    subscription_topics,
)

logger = logging.getLogger(__name__)

M = TypeVar("M", Telemetry, Ack, Status)

LOGGED_PAYLOAD_BYTES = 200


class TransportError(Exception):
    """A command could not be queued for the broker."""


@dataclass(frozen=True, slots=True)
class Delivery(Generic[M]):
    """A parsed message and what MQTT said about it."""

    message: M
    topic: str
    mid: int
    qos: int
    # A retained message replayed because the head-end (re)subscribed: the meter's last
    # known state, not a fresh event. (amqtt also sets it on messages queued while the
    # session was offline.)
    retained: bool
    duplicate: bool  # MQTT DUP flag: the broker sent it before without getting our PUBACK
    generation: int = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class _Rejected:
    topic: str
    payload: bytes
    reason: str
    mid: int
    qos: int
    generation: int


@dataclass
class Batch:
    """Messages handed to the handler together, in arrival order within each list."""

    telemetry: list[Delivery[Telemetry]] = field(default_factory=list)
    acks: list[Delivery[Ack]] = field(default_factory=list)
    statuses: list[Delivery[Status]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.telemetry) + len(self.acks) + len(self.statuses)

    @property
    def readings(self) -> int:
        return sum(len(d.message.readings) for d in self.telemetry)

    def deliveries(self) -> Iterator[Delivery[Any]]:
        return itertools.chain(self.telemetry, self.acks, self.statuses)

    def add(self, delivery: Delivery[Any]) -> None:
        message = delivery.message
        if isinstance(message, Telemetry):
            self.telemetry.append(delivery)
        elif isinstance(message, Ack):
            self.acks.append(delivery)
        else:
            self.statuses.append(delivery)


Handler = Callable[[Batch], object]
OnRejected = Callable[[str, bytes, str], object]

_WAKE = object()  # wakes the worker when stopping


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """``mqtt://[user[:password]@]host[:port]`` (1883) or ``mqtts://…`` (TLS, 8883)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"not an MQTT URL (mqtt://host:port): {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class MqttTransport:
    """The head-end's MQTT session. Thread-safe; ``start()`` once, ``stop()`` once.

    ``handler(batch)`` runs in the transport's worker thread, one batch at a time; it
    returns once the batch is stored, or raises to have it retried. ``on_worker_exit()``
    runs in that thread as it ends. A batch closes when it
    holds ``max_batch`` messages, when its first message is ``max_delay`` seconds old, or
    when nothing has arrived for ``linger`` seconds (the broker has nothing more to send,
    or its in-flight window is full and it waits for our acks).
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        handler: Handler,
        *,
        client_id: str = "mwolo-headend",
        on_rejected: OnRejected | None = None,
        on_worker_exit: Callable[[], object] | None = None,
        shared_group: str | None = None,
        statuses: bool = True,
        max_batch: int = 1000,
        max_delay: float = 0.2,
        linger: float = 0.005,
        keepalive: int = 30,
        reconnect_min_delay: int = 1,
        reconnect_max_delay: int = 30,
        retry_min_delay: float = 0.5,
        retry_max_delay: float = 30.0,
        max_inflight_commands: int = 1000,
        max_queued_commands: int = 100_000,
    ) -> None:
        if max_batch < 1 or max_delay <= 0 or linger < 0:
            raise ValueError("max_batch >= 1, max_delay > 0 and linger >= 0 are required")
        self.address = BrokerAddress.from_url(url)
        self.prefix = prefix
        self.client_id = client_id
        self.topics = subscription_topics(prefix, shared_group, statuses=statuses)
        self._stale_topics = stale_subscription_topics(prefix, shared_group, statuses=statuses)
        self._handler = handler
        self._on_rejected = on_rejected
        self._on_worker_exit = on_worker_exit
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._linger = linger
        self._retry_min_delay = retry_min_delay
        self._retry_max_delay = retry_max_delay

        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name=f"headend-{client_id}", daemon=True)
        self._started = False
        self._closing = False  # set first on stop: new messages are left to the broker
        self._stopping = threading.Event()  # then the worker flushes and ends
        self._ready = threading.Event()  # connected and subscribed

        # Generation of the connection, bumped by paho's thread whenever a connection ends or
        # begins; the worker acks only messages of the current one (see _ack).
        self._conn_lock = threading.Lock()
        self._generation = 0
        self._subscribe_mid: int | None = None
        self._connected_once = False

        self._metrics_lock = threading.Lock()
        self._received: Counter[str] = Counter()
        self._rejections: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()

        self._published = threading.Condition()
        self._unpublished: set[int] = set()
        self._published_early: set[int] = set()

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,  # the broker keeps our subscriptions and messages while away
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set()
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.suppress_exceptions = True  # a bug in a callback must not end the network thread
        client.reconnect_delay_set(reconnect_min_delay, reconnect_max_delay)
        # Outgoing only (commands): paho's default of 20 in flight would make a burst of
        # commands (a dunning run) wait on round trips; the queue bound keeps a long broker
        # outage from growing memory without limit (publish_command then raises).
        client.max_inflight_messages_set(max_inflight_commands)
        client.max_queued_messages_set(max_queued_commands)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self._client = client
        self._keepalive = keepalive

    # --- Life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers) and start handling."""
        if self._started:
            raise RuntimeError("an MqttTransport starts once; create a new one to start again")
        self._started = True
        self._worker.start()
        self._client.connect_async(self.address.host, self.address.port, self._keepalive)
        self._client.loop_start()

    def stop(self, timeout: float = 30.0) -> None:
        """Flush the current batch (one last attempt if the handler is failing), then disconnect.

        Messages that arrive meanwhile are neither handled nor acknowledged: the broker keeps
        them in the session for the next start.
        """
        if not self._started or self._stopping.is_set():
            return
        self._closing = True
        self._stopping.set()
        self._queue.put(_WAKE)
        self._worker.join(timeout)
        if self._worker.is_alive():
            logger.error("head-end worker still busy after %.0fs; disconnecting anyway", timeout)
        # The network thread ends once the PUBACKs queued above are written; the DISCONNECT
        # is then written from here (paho writes at once when no loop thread runs).
        self._client.loop_stop()
        self._client.disconnect()
        self._ready.clear()
        logger.info("head-end %s stopped: %s", self.client_id, self.metrics())

    def __enter__(self) -> MqttTransport:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the client is connected and its subscriptions are granted."""
        return self._ready.wait(timeout)

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    # --- Commands -------------------------------------------------------------------------

    def publish_command(self, serial: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        """Publish a command at QoS 1. Thread-safe.

        While disconnected the command waits in paho's queue and goes out at reconnection
        (``info.rc`` is then MQTT_ERR_NO_CONN). Raises ValueError for an invalid serial and
        TransportError if the outgoing queue is full.
        """
        info = self._client.publish(command_topic(self.prefix, serial), payload, qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise TransportError(f"command for {serial} not queued: outgoing queue full")
        with self._published:
            if info.mid in self._published_early:  # PUBACK already in (a fast broker)
                self._published_early.discard(info.mid)
            else:
                self._unpublished.add(info.mid)
        return info

    def wait_published(self, timeout: float) -> bool:
        """Wait until the broker has acknowledged every command published so far."""
        deadline = time.monotonic() + timeout
        with self._published:
            while self._unpublished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._published.wait(remaining)
        return True

    # --- Metrics --------------------------------------------------------------------------

    @property
    def received(self) -> Counter[str]:
        """Valid messages received, per kind (telemetry, ack, status)."""
        with self._metrics_lock:
            return self._received.copy()

    @property
    def rejections(self) -> Counter[str]:
        """Invalid messages, per ProtocolError reason."""
        with self._metrics_lock:
            return self._rejections.copy()

    def _count(self, name: str) -> int:
        with self._metrics_lock:
            return self._counts[name]

    @property
    def readings_received(self) -> int:
        return self._count("readings_received")

    @property
    def batches_handled(self) -> int:
        return self._count("batches_handled")

    @property
    def messages_handled(self) -> int:
        return self._count("messages_handled")

    @property
    def handler_failures(self) -> int:
        return self._count("handler_failures")

    @property
    def reconnects(self) -> int:
        return self._count("reconnects")

    @property
    def acks_sent(self) -> int:
        return self._count("acks_sent")

    @property
    def acks_dropped(self) -> int:
        """Acks not sent because their connection had ended (the messages come again)."""
        return self._count("acks_dropped")

    def metrics(self) -> dict[str, Any]:
        """A consistent snapshot, for logs and health checks."""
        with self._metrics_lock:
            return {
                **self._counts,
                "received": dict(self._received),
                "rejections": dict(self._rejections),
            }

    def _add(self, name: str, amount: int = 1) -> None:
        with self._metrics_lock:
            self._counts[name] += amount

    # --- paho callbacks (network thread) --------------------------------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        with self._conn_lock:
            self._generation += 1

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            logger.error("MQTT broker %s refused the head-end: %s", self.address.host, reason_code)
            return
        if self._connected_once:
            self._add("reconnects")
        self._connected_once = True
        logger.info(
            "head-end %s connected to %s:%d (session %s)",
            self.client_id,
            self.address.host,
            self.address.port,
            "resumed" if flags.session_present else "new",
        )
        # A session kept from a run with other settings (before sharing, say) still holds
        # its subscriptions: through them the broker would deliver each message twice,
        # or statuses to a process that must not take them. Dropped first, every time.
        if self._stale_topics:
            client.unsubscribe(self._stale_topics)
        # Every time: a broker that lost the session (restart without persistence) has lost
        # the subscriptions too. The price is the replay of retained statuses.
        _rc, self._subscribe_mid = client.subscribe([(topic, 1) for topic in self.topics])

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        logger.warning("MQTT broker %s:%d unreachable", self.address.host, self.address.port)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        with self._conn_lock:
            self._generation += 1
        self._ready.clear()
        if not self._closing:
            logger.warning("head-end %s lost the broker: %s", self.client_id, reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Any,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [t for t, rc in zip(self.topics, reason_codes, strict=False) if rc.is_failure]
        if refused:
            logger.error("MQTT broker refused the subscriptions %s (check its ACL)", refused)
            return
        self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._closing:
            return  # not acked: the broker delivers it again at the next connection
        generation = self._generation  # written only by this thread
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)[:200]  # brokers refuse such topics; kept total anyway
            self._reject(topic, msg, ProtocolError("bad_topic", "not UTF-8"), generation)
            return
        try:
            message: Message = parse_message(topic, bytes(msg.payload), self.prefix)
        except ProtocolError as error:
            self._reject(topic, msg, error, generation)
            return
        delivery: Delivery[Any] = Delivery(
            message=message,
            topic=topic,
            mid=msg.mid,
            qos=msg.qos,
            retained=bool(msg.retain),
            duplicate=bool(msg.dup),
            generation=generation,
        )
        with self._metrics_lock:
            if isinstance(message, Telemetry):
                self._received["telemetry"] += 1
                self._counts["readings_received"] += len(message.readings)
            else:
                self._received["ack" if isinstance(message, Ack) else "status"] += 1
        self._queue.put(delivery)

    def _reject(
        self, topic: str, msg: mqtt.MQTTMessage, error: ProtocolError, generation: int
    ) -> None:
        with self._metrics_lock:
            self._rejections[error.reason] += 1
        payload = bytes(msg.payload)
        logger.warning(
            "refused meter message on %s: %s (payload %r%s)",
            topic,
            error,
            payload[:LOGGED_PAYLOAD_BYTES],
            "…" if len(payload) > LOGGED_PAYLOAD_BYTES else "",
        )
        self._queue.put(_Rejected(topic, payload, error.reason, msg.mid, msg.qos, generation))

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        with self._published:
            if mid in self._unpublished:
                self._unpublished.discard(mid)
                self._published.notify_all()
            else:
                self._published_early.add(mid)

    # --- Worker thread --------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while True:
                entries = self._collect()
                if entries is None:
                    return
                try:
                    self._process(entries)
                except Exception:  # a bug here must not stop the head-end; nothing was acked
                    logger.exception("head-end worker failed on %d messages", len(entries))
        finally:
            if self._on_worker_exit is not None:
                self._on_worker_exit()  # e.g. close the thread's database connections

    def _collect(self) -> list[Any] | None:
        """Wait for a first message, then gather a batch. None once stopped and drained."""
        while True:
            if self._stopping.is_set():
                try:
                    first = self._queue.get_nowait()
                except queue.Empty:
                    return None
            else:
                try:
                    first = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
            if first is not _WAKE:
                break
        entries = [first]
        valid = 1 if isinstance(first, Delivery) else 0
        deadline = time.monotonic() + self._max_delay
        while valid < self._max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                if self._linger == 0 or self._stopping.is_set():
                    entry = self._queue.get_nowait()
                else:
                    entry = self._queue.get(timeout=min(self._linger, remaining))
            except queue.Empty:
                break
            if entry is _WAKE:
                continue
            entries.append(entry)
            valid += 1 if isinstance(entry, Delivery) else 0
        return entries

    def _process(self, entries: list[Any]) -> None:
        batch = Batch()
        rejected: list[_Rejected] = []
        for entry in entries:
            if isinstance(entry, Delivery):
                batch.add(entry)
            else:
                rejected.append(entry)
        if rejected:
            if self._on_rejected is not None:
                for item in rejected:
                    try:
                        self._on_rejected(item.topic, item.payload, item.reason)
                    except Exception:  # storing a refusal is best effort
                        logger.exception("on_rejected failed for %s", item.topic)
            self._ack(rejected)
        if batch:
            self._handle(batch)

    def _handle(self, batch: Batch) -> None:
        """Run the handler until it succeeds (or, when stopping, once more), then ack."""
        delay = self._retry_min_delay
        while True:
            started = time.monotonic()
            try:
                self._handler(batch)
            except Exception:
                self._add("handler_failures")
                if self._stopping.is_set():
                    logger.exception(
                        "handler failed on %d messages while stopping: left unacknowledged, "
                        "the broker delivers them again at the next start",
                        len(batch),
                    )
                    return
                logger.exception(
                    "handler failed on %d messages (unacknowledged); retry in %.1fs",
                    len(batch),
                    delay,
                )
                self._stopping.wait(delay)  # a stop cuts the wait short: one last attempt
                delay = min(delay * 2, self._retry_max_delay)
                continue
            with self._metrics_lock:
                self._counts["batches_handled"] += 1
                self._counts["messages_handled"] += len(batch)
            logger.debug(
                "handled %d messages (%d readings) in %.3fs",
                len(batch),
                batch.readings,
                time.monotonic() - started,
            )
            self._ack(list(batch.deliveries()))
            return

    def _ack(self, entries: list[Any]) -> None:
        """PUBACK each message on the connection it came from, if that connection still lives.

        The lock orders this against paho's thread: once a connection ends (on_disconnect or
        on_pre_connect bumps the generation), no ack for it can be queued on the next one,
        where its packet id could name another message.
        """
        sent = dropped = 0
        with self._conn_lock:
            live = self._client.is_connected()
            for entry in entries:
                if entry.qos == 0:
                    continue
                if live and entry.generation == self._generation:
                    self._client.ack(entry.mid, entry.qos)
                    sent += 1
                else:
                    dropped += 1
        with self._metrics_lock:
            self._counts["acks_sent"] += sent
            self._counts["acks_dropped"] += dropped
