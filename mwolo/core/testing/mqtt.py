"""MQTT brokers for tests: the run's broker, and private ones a test may restart.

With ``MQTT_URL`` set (CI's second pass: Mosquitto on 127.0.0.1:1883) tests use that
broker; otherwise an embedded amqtt broker (``sandbox.broker``) is started for the session,
as ``make run`` does. A test that restarts its broker gets a private Mosquitto with
persistence, as deployed (deploy/mosquitto.conf).
Every session gets its own topic prefix, so two runs on one broker never see each other's
messages.
"""

import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[MqttBroker]:
    """The broker of this run, with a topic prefix of its own."""
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
def restartable_mqtt_broker() -> Iterator[MqttBroker]:
    """A broker this test may stop and restart (``broker.restart()``)."""
    broker = private_broker()
    yield broker
    broker.close()
