"""The head-end process: the MQTT transport wired to the metering services.

Inbound, every batch the transport hands over is stored by ``telemetry_ingest``,
``acks_apply`` and ``statuses_apply`` (each idempotent, so a batch retried after a failure
stores nothing twice) before the transport acknowledges it to the broker. Outbound, a loop
sends due commands every ``dispatch_interval`` seconds and keeps the refused-message
counters. Several head-end processes may run side by side (shared subscription, SKIP LOCKED).
"""

import logging
import threading
import time
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections

from mwolo.headend.transport import Batch, MqttTransport, TransportError

from . import services

logger = logging.getLogger(__name__)


class Headend:
    def __init__(
        self,
        *,
        url: str | None = None,
        prefix: str | None = None,
        client_id: str = "mwolo-headend",
        shared_group: str | None = None,
        dispatch_interval: float = 0.5,
        max_batch: int = 1000,
        heartbeat: Path | None = None,
    ) -> None:
        self.dispatch_interval = dispatch_interval
        self.heartbeat = heartbeat
        self._rejections: Counter[str] = Counter()
        self._last_refused_topic = ""
        self._lock = threading.Lock()
        self.transport = MqttTransport(
            url or settings.MQTT_URL,
            prefix or settings.MQTT_TOPIC_PREFIX,
            self.handle,
            client_id=client_id,
            on_rejected=self.refused,
            on_worker_exit=connections.close_all,
            shared_group=shared_group,
            max_batch=max_batch,
        )

    def handle(self, batch: Batch) -> None:
        """Store a batch; raising leaves it unacknowledged and the transport retries it."""
        close_old_connections()  # a database connection may have dropped since the last batch
        if batch.telemetry:
            report = services.telemetry_ingest(messages=[d.message for d in batch.telemetry])
            if report.unknown_serials:
                logger.warning(
                    "telemetry from unknown meters: %s", sorted(report.unknown_serials)[:20]
                )
                self._count("unknown_serial", len(report.unknown_serials))
        if batch.acks:
            outcome = services.acks_apply(acks=[d.message for d in batch.acks])
            if outcome["unknown_command"]:
                self._count("unknown_command", outcome["unknown_command"])
        if batch.statuses:
            services.statuses_apply(statuses=[d.message for d in batch.statuses])

    def refused(self, topic: str, payload: bytes, reason: str) -> None:
        with self._lock:
            self._last_refused_topic = topic
        self._count(reason)

    def _count(self, reason: str, amount: int = 1) -> None:
        with self._lock:
            self._rejections[reason] += amount

    def flush_counters(self) -> None:
        with self._lock:
            reasons, self._rejections = self._rejections, Counter()
            topic = self._last_refused_topic
        if reasons:
            services.rejections_count(reasons=reasons, last_topic=topic)

    def dispatch_once(self) -> int:
        close_old_connections()
        return services.commands_dispatch(publish=self.transport.publish_command)

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: receive in the background, send due commands here."""
        self.transport.start()
        last_flush = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    self.dispatch_once()
                    if self.heartbeat is not None and self.transport.is_ready:
                        self.heartbeat.touch()  # the container's health check reads its age
                    if time.monotonic() - last_flush > 10:
                        self.flush_counters()
                        last_flush = time.monotonic()
                except TransportError:
                    logger.exception("commands not sent: the outgoing queue is full")
                except Exception:  # the loop must outlive a database outage
                    logger.exception("command dispatch failed; retrying")
                stop.wait(self.dispatch_interval)
        finally:
            self.transport.stop()
            self.flush_counters()
            connections.close_all()
