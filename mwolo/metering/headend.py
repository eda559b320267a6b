"""The head-end process: the MQTT transport wired to the metering services.

Inbound, every batch the transport hands over is stored by ``telemetry_ingest``,
``acks_apply`` and ``statuses_apply`` (each idempotent, so a batch retried after a failure
stores nothing twice) before the transport acknowledges it to the broker. Outbound, a loop
sends due commands every ``dispatch_interval`` seconds and keeps the refused-message
counters. Several head-end processes may run side by side: acks and telemetry shared among
them (shared subscription), statuses taken by one of them (``statuses``), commands sent by
whichever takes them first (SKIP LOCKED).
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
        statuses: bool = True,
        dispatch_interval: float = 0.5,
        max_batch: int = 1000,
        heartbeat: Path | None = None,
    ) -> None:
        self.dispatch_interval = dispatch_interval
        self.heartbeat = heartbeat
        self._rejections: Counter[str] = Counter()
        self._last_topics: dict[str, str] = {}
        self._lock = threading.Lock()
        self.transport = MqttTransport(
            url or settings.MQTT_URL,
            prefix or settings.MQTT_TOPIC_PREFIX,
            self.handle,
            client_id=client_id,
            on_rejected=self.refused,
            on_worker_exit=connections.close_all,
            shared_group=shared_group,
            statuses=statuses,
            max_batch=max_batch,
        )

    def handle(self, batch: Batch) -> None:
        """Store a batch; raising leaves it unacknowledged and the transport retries it.

        What the services report as changing nothing or coming late (unknown serials and
        commands, duplicate and late readings or acks) is counted per reason with the
        refused messages and logged with the serials.
        """
        close_old_connections()  # a database connection may have dropped since the last batch
        if batch.telemetry:
            ingest = services.telemetry_ingest(messages=[d.message for d in batch.telemetry])
            self._note("telemetry", ingest.anomalies)
        if batch.acks:
            acks = services.acks_apply(acks=[d.message for d in batch.acks])
            self._note("ack", acks.anomalies)
        if batch.statuses:
            statuses = services.statuses_apply(
                statuses=[d.message for d in batch.statuses if not d.retained],
                replayed=[d.message for d in batch.statuses if d.retained],
            )
            self._note("status", statuses.anomalies)

    def _note(self, kind: str, anomalies: services.Anomalies) -> None:
        for reason, count in sorted(anomalies.counts.items()):
            serials = sorted(anomalies.serials[reason])
            # Unknown meters and commands point at a misconfigured meter or broker ACL;
            # duplicates and late messages are routine with QoS 1 and buffering meters.
            level = logging.WARNING if reason.startswith("unknown") else logging.INFO
            logger.log(
                level,
                "%s: %d %s from %s%s",
                kind,
                count,
                reason,
                ", ".join(serials[:20]),
                "…" if len(serials) > 20 else "",
            )
            self._count(reason, f"{self.transport.prefix}/meters/{serials[-1]}/{kind}", count)

    def refused(self, topic: str, payload: bytes, reason: str) -> None:
        """The transport refused a malformed message (it logged it): counted."""
        self._count(reason, topic)

    def _count(self, reason: str, topic: str, amount: int = 1) -> None:
        with self._lock:
            self._rejections[reason] += amount
            self._last_topics[reason] = topic

    def flush_counters(self) -> None:
        """Add what was counted since the last flush to the day's counters (admin: refused
        meter messages). Kept for the next flush if the database is unavailable."""
        with self._lock:
            reasons, self._rejections = self._rejections, Counter()
            topics, self._last_topics = self._last_topics, {}
        if not reasons:
            return
        try:
            services.rejections_count(reasons=reasons, last_topics=topics)
        except Exception:
            with self._lock:
                self._rejections.update(reasons)
                self._last_topics = {**topics, **self._last_topics}
            raise

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
