"""MQTT brokers for tests: the run's broker, and private ones a test may restart.

With ``MQTT_URL`` set (CI's second pass: Mosquitto on 127.0.0.1:1883) tests use that
broker; otherwise an embedded amqtt broker (``sandbox.broker``) is started for the session,
as ``make run`` does. A test that restarts its broker gets a private Mosquitto with
persistence, as deployed (deploy/mosquitto.conf).

Every test gets a topic prefix of its own, so two tests (or two runs on one broker) never
see each other's messages; the retained messages a test leaves under its prefix (meters'
statuses and last wills) are cleared when it ends, so nothing piles up on a shared broker.
"""

import dataclasses
import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest

ROOT = Path(__file__).resolve().parents[3]
DEPLOYED_CONFIG = ROOT / "deploy" / "mosquitto.conf"
# The settings of the deployed broker that decide throughput and what survives an outage.
DEPLOYED_TUNING = (
    "max_inflight_messages",
    "max_queued_messages",
    "max_queued_bytes",
    "max_packet_size",
)


@dataclass
class MqttBroker:
    host: str
    port: int
    prefix: str
    process: subprocess.Popen | None = field(default=None, repr=False)
    command: list[str] = field(default_factory=list, repr=False)
    state_dir: Path | None = field(default=None, repr=False)  # removed by close()

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def start(self) -> None:
        """(Re)start a private broker on the same port; sessions of clients are lost."""
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            self.command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.host, self.port)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"no MQTT broker answered on {host}:{port} within {timeout}s")


def _prefix() -> str:
    return f"test{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def embedded_broker() -> MqttBroker:
    """The embedded amqtt broker that ``make run`` starts, on a port of its own."""
    port = free_port()
    command = [sys.executable, "-m", "sandbox.broker", "--port", str(port)]
    broker = MqttBroker(host="127.0.0.1", port=port, prefix=_prefix(), command=command)
    broker.start()
    return broker


def deployed_tuning() -> list[str]:
    """The windows and queue limits of deploy/mosquitto.conf, as configuration lines."""
    lines = DEPLOYED_CONFIG.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.split(" ", 1)[0] in DEPLOYED_TUNING]


def private_broker() -> MqttBroker:
    """A broker process of this test's own: Mosquitto configured as deployed, persistence
    included (its queues survive a restart), where installed; else the embedded broker."""
    mosquitto = _mosquitto()
    if not mosquitto:
        return embedded_broker()
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix="mosquitto-"))
    config = state / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {state}/",
        # Started as root, Mosquitto would switch to its own user, who may not write here.
        f"user {getpass.getuser()}",
        *deployed_tuning(),
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broker = MqttBroker(
        host="127.0.0.1",
        port=port,
        prefix=_prefix(),
        command=[mosquitto, "-c", str(config)],
        state_dir=state,
    )
    broker.start()
    return broker


def retained_clear(broker: MqttBroker, *, settle: float = 0.3, timeout: float = 10) -> list[str]:
    """Clear every retained message under ``broker.prefix``; returns their topics.

    Subscribes to the prefix, gathers what the broker replays as retained, and publishes an
    empty retained message on each topic (which deletes it). The broker replays retained
    messages before it delivers a message published after the subscription, so a marker
    sent to ourselves closes the replay; ``settle`` more seconds of quiet cover a broker
    that replays from another task (amqtt).
    """
    topics: set[str] = set()
    marker = f"{broker.prefix}/_retained-clear/{uuid.uuid4().hex}"
    seen_marker = threading.Event()
    subscribed = threading.Event()
    last_message = [time.monotonic()]

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        last_message[0] = time.monotonic()
        if message.topic == marker:
            seen_marker.set()
        elif message.retain and message.payload:
            topics.add(message.topic)

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"{broker.prefix}-clear-{uuid.uuid4().hex[:8]}",
        clean_session=True,
    )
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    try:
        client.connect(broker.host, broker.port)
    except OSError:
        return []  # a broker already stopped keeps nothing
    client.loop_start()
    try:
        client.subscribe(f"{broker.prefix}/#", qos=1)
        if not subscribed.wait(timeout):
            raise RuntimeError(f"could not subscribe to {broker.prefix}/# to clear it")
        client.publish(marker, b"x", qos=1)
        if not seen_marker.wait(timeout):
            raise RuntimeError(f"the broker did not echo {marker}")
        while time.monotonic() - last_message[0] < settle:
            time.sleep(settle / 3)
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in sorted(topics)]
        for info in infos:
            info.wait_for_publish(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return sorted(topics)


@pytest.fixture(scope="session")
def mqtt_server() -> Iterator[MqttBroker]:
    """The broker process of this run: MQTT_URL's, or an embedded one started here."""
    url = os.environ.get("MQTT_URL")
    if url:
        parts = urlsplit(url)
        yield MqttBroker(
            host=parts.hostname or "127.0.0.1", port=parts.port or 1883, prefix=_prefix()
        )
        return
    broker = embedded_broker()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt_broker(mqtt_server: MqttBroker) -> Iterator[MqttBroker]:
    """The run's broker, under a topic prefix of this test's own.

    What the test leaves retained under it (statuses, last wills of meters the test
    stopped or dropped) is cleared afterwards: a later test subscribing to a wildcard on
    the same broker must not receive another test's meters.
    """
    broker = dataclasses.replace(mqtt_server, prefix=_prefix(), process=None, command=[])
    yield broker
    retained_clear(broker)


@pytest.fixture
def restartable_mqtt_broker() -> Iterator[MqttBroker]:
    """A broker this test may stop and restart (``broker.restart()``)."""
    broker = private_broker()
    yield broker
    broker.close()
