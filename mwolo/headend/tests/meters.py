"""The meter side of protocol v1 for the head-end's tests: payload encoding and a plain client."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from mwolo.core.testing.mqtt import MqttBroker
from mwolo.headend.protocol import Ack, Reading, Status


def encode(value: Any) -> str:
    """JSON with Decimals written as exact numbers (json.dumps knows only floats)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v) for v in value) + "]"
    if isinstance(value, dt.datetime):
        return json.dumps(value.isoformat())
    return json.dumps(value)


def reading_object(reading: Reading) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "at": reading.at,
        "energy_kwh": reading.energy_kwh,
        "relay": reading.relay,
    }
    for name in ("power_w", "voltage_v", "credit_kwh"):
        if getattr(reading, name) is not None:
            obj[name] = getattr(reading, name)
    if reading.tamper:
        obj["tamper"] = True
    return obj


def telemetry_payload(*readings: Reading, batch: bool = False) -> bytes:
    if len(readings) == 1 and not batch:
        return encode(reading_object(readings[0])).encode()
    return encode({"readings": [reading_object(r) for r in readings]}).encode()


def ack_payload(ack: Ack) -> bytes:
    obj: dict[str, Any] = {
        "id": str(ack.command_id),
        "status": ack.status,
        "relay": ack.relay,
        "at": ack.at,
    }
    for name in ("error", "energy_kwh", "credit_kwh"):
        if getattr(ack, name) is not None:
            obj[name] = getattr(ack, name)
    return encode(obj).encode()


def status_payload(status: Status) -> bytes:
    obj: dict[str, Any] = {"online": status.online}
    if status.relay is not None:
        obj["relay"] = status.relay
    if status.fw is not None:
        obj["fw"] = status.fw
    return encode(obj).encode()


def simple_telemetry(energy: str | int = "1.5", at: str = "2026-01-01T00:00:00Z") -> bytes:
    return f'{{"at": "{at}", "energy_kwh": {energy}, "relay": "on"}}'.encode()


class Meters:
    """One plain MQTT connection playing any number of meters (a data concentrator)."""

    def __init__(self, broker: MqttBroker, client_id: str | None = None) -> None:
        self.broker = broker
        self.prefix = broker.prefix
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"meters-{uuid.uuid4().hex[:10]}"
        )
        self.client.max_inflight_messages_set(1000)
        self.received: list[mqtt.MQTTMessage] = []
        self._received = threading.Condition()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._received:
            self.received.append(msg)
            self._received.notify_all()

    def topic(self, serial: str, kind: str) -> str:
        return f"{self.prefix}/meters/{serial}/{kind}"

    def publish(
        self, serial: str, kind: str, payload: bytes, *, retain: bool = False, wait: bool = True
    ) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(self.topic(serial, kind), payload, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(10)
            assert info.is_published()
        return info

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10)

    def wait_received(self, count: int, timeout: float = 10) -> list[mqtt.MQTTMessage]:
        with self._received:
            self._received.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
