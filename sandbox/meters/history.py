"""A burst of historical telemetry, for the ingest benchmark.

Every payload is serialised before the clock starts; then one thread per connection
publishes its share with QoS 1, never more than ``MAX_INFLIGHT`` unacknowledged (a window
released by each PUBACK keeps memory flat however long the burst), and the result says when
the last PUBACK came back.
"""

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from sandbox.meters.meter import MeterSpec
from sandbox.meters.protocol import MAX_BATCH, TELEMETRY, iso, kwh, topic

logger = logging.getLogger("sandbox.meters")

MAX_INFLIGHT = 1000


@dataclass(frozen=True)
class HistoryResult:
    messages: int
    readings: int
    connections: int
    started_at: datetime  # UTC, when the first message was handed to paho
    last_puback_at: datetime  # UTC, when the broker acknowledged the last one
    seconds: float  # from the first publish to the last PUBACK

    @property
    def readings_per_second(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def history_messages(
    spec: MeterSpec,
    *,
    prefix: str,
    readings_per_meter: int,
    step_seconds: float,
    batch_size: int,
    last_at: float,
) -> list[tuple[str, bytes]]:
    """One meter's past readings, oldest first, as (topic, payload) ready to publish."""
    readings = []
    for i in range(readings_per_meter - 1, -1, -1):
        at = last_at - i * step_seconds
        energy = kwh(spec.register_at(at))
        readings.append(f'{{"at":"{iso(at)}","energy_kwh":{energy},"relay":"on"}}')
    name = topic(prefix, spec.serial, TELEMETRY)
    if batch_size == 1:
        return [(name, reading.encode()) for reading in readings]
    return [
        (name, ('{"readings":[' + ",".join(readings[i : i + batch_size]) + "]}").encode())
        for i in range(0, len(readings), batch_size)
    ]


class _Burst:
    """One connection's share of the burst."""

    def __init__(self, host: str, port: int, client_id: str, messages: list[tuple[str, bytes]]):
        self.messages = messages
        self.connected = threading.Event()
        self.done = threading.Event()
        self.acked = 0
        self.last_ack_wall = 0.0
        self.last_ack_perf = 0.0
        self.error: str | None = None
        self._window = threading.Semaphore(MAX_INFLIGHT)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        # The window above does the flow control. paho's own limit costs a scan of every
        # message in flight on each PUBACK, which halves the throughput of a burst.
        client.max_inflight_messages_set(0)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        self.client = client
        self._host, self._port = host, port
        if not messages:
            self.done.set()

    def connect(self) -> None:
        self.client.connect_async(self._host, self._port, keepalive=60)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            self.connected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        # Called on paho's network thread only: plain counters are safe.
        self._window.release()
        self.acked += 1
        self.last_ack_wall = time.time()
        self.last_ack_perf = time.perf_counter()
        if self.acked >= len(self.messages):
            self.done.set()

    def run(self, deadline: float) -> None:
        try:
            for name, payload in self.messages:
                if not self._window.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise TimeoutError("the broker stopped acknowledging")
                self.client.publish(name, payload, qos=1)
        except Exception as error:  # reported by publish_history, not lost in a thread
            self.error = repr(error)
            self.done.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_history(
    *,
    host: str,
    port: int,
    prefix: str,
    specs: Sequence[MeterSpec],
    readings_per_meter: int,
    step_seconds: float,
    batch_size: int,
    last_at: float,
    connections: int = 2,
    timeout: float = 600.0,
) -> HistoryResult:
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size is between 1 and {MAX_BATCH} (the protocol's batch limit)")
    if readings_per_meter < 1 or step_seconds <= 0 or connections < 1:
        raise ValueError("readings_per_meter, step_seconds and connections must be positive")
    connections = min(connections, len(specs))
    shares: list[list[tuple[str, bytes]]] = [[] for _ in range(connections)]
    for index, spec in enumerate(specs):
        shares[index % connections].extend(
            history_messages(
                spec,
                prefix=prefix,
                readings_per_meter=readings_per_meter,
                step_seconds=step_seconds,
                batch_size=batch_size,
                last_at=last_at,
            )
        )
    run_id = uuid.uuid4().hex[:8]
    bursts = [
        _Burst(host, port, f"{prefix}-history-{run_id}-{i}", share)
        for i, share in enumerate(shares)
    ]
    deadline = time.monotonic() + timeout
    try:
        for burst in bursts:
            burst.connect()
        for burst in bursts:
            if not burst.connected.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"no MQTT broker accepted the burst at {host}:{port}")
        threads = [
            threading.Thread(target=burst.run, args=(deadline,), name=f"history-{i}")
            for i, burst in enumerate(bursts)
        ]
        started_wall, started_perf = time.time(), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for burst in bursts:
            if not burst.done.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("the broker did not acknowledge the whole burst in time")
            if burst.error:
                raise RuntimeError(f"history burst failed: {burst.error}")
    finally:
        for burst in bursts:
            burst.close()
    last = max(bursts, key=lambda b: b.last_ack_perf)
    messages = sum(len(share) for share in shares)
    result = HistoryResult(
        messages=messages,
        readings=readings_per_meter * len(specs),
        connections=connections,
        started_at=datetime.fromtimestamp(started_wall, UTC),
        last_puback_at=datetime.fromtimestamp(last.last_ack_wall or started_wall, UTC),
        seconds=max(last.last_ack_perf - started_perf, 0.0),
    )
    logger.info(
        "history: %d readings in %d messages, %.2fs (%.0f readings/s, %.0f messages/s)",
        result.readings,
        result.messages,
        result.seconds,
        result.readings_per_second,
        result.messages_per_second,
    )
    return result
