"""The meter simulator over a real broker; the test plays the platform with a plain paho client."""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from openpaygo import generate_token

from mwolo.core.testing.mqtt import ROOT, MqttBroker
from sandbox.meters import TOKEN_START_COUNT, Fleet, factory_secret

EMBEDDED_BROKER = not os.environ.get("MQTT_URL")  # amqtt (sandbox.broker)


@dataclass(frozen=True)
class Message:
    index: int
    serial: str
    kind: str
    body: Any
    raw: bytes
    retain: bool


class Platform:
    """What the head-end sees and sends: every message under the run's prefix."""

    def __init__(self, broker: MqttBroker, name: str = "platform") -> None:
        self.prefix = broker.prefix
        self.messages: list[Message] = []
        self._condition = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{broker.prefix}-{name}-{uuid.uuid4().hex[:6]}",
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the platform could not subscribe"

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        client.subscribe(f"{self.prefix}/meters/#", qos=1)

    def _on_message(self, client, userdata, message) -> None:
        parts = message.topic.split("/")
        if parts[-1] == "cmd":
            return  # our own commands
        try:
            body = json.loads(message.payload)
        except ValueError:
            body = None
        with self._condition:
            self.messages.append(
                Message(
                    len(self.messages), parts[-2], parts[-1], body, message.payload, message.retain
                )
            )
            self._condition.notify_all()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- sending -------------------------------------------------------------------------

    def command(
        self,
        serial: str,
        action: str,
        *,
        command_id: str | None = None,
        expires_at: datetime | None = None,
        **extra: Any,
    ) -> str:
        command_id = command_id or str(uuid.uuid4())
        now = datetime.now(UTC)
        body = {
            "id": command_id,
            "action": action,
            "issued_at": now.isoformat(),
            # Far ahead: a fleet running at speed has a meter clock ahead of ours.
            "expires_at": (expires_at or now + timedelta(days=365)).isoformat(),
            **extra,
        }
        self.send_raw(serial, json.dumps(body).encode())
        return command_id

    def send_raw(self, serial: str, payload: bytes) -> None:
        self.client.publish(f"{self.prefix}/meters/{serial}/cmd", payload, qos=1).wait_for_publish(
            5
        )

    # -- receiving -----------------------------------------------------------------------

    def of(self, serial: str, kind: str | None = None) -> list[Message]:
        with self._condition:
            return [
                m for m in self.messages if m.serial == serial and (kind is None or m.kind == kind)
            ]

    def wait_for(
        self,
        serial: str,
        kind: str,
        where: Callable[[Any], bool] = lambda body: True,
        *,
        after: int = -1,
        timeout: float = 10,
    ) -> Message:
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for m in self.messages:
                    if m.index > after and m.serial == serial and m.kind == kind and where(m.body):
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {kind} from {serial} matching the test in {timeout}s")
                self._condition.wait(remaining)

    def ack(self, serial: str, command_id: str, *, after: int = -1, timeout: float = 10) -> dict:
        return self.wait_for(
            serial,
            "ack",
            lambda b: isinstance(b, dict) and b.get("id") == command_id,
            after=after,
            timeout=timeout,
        ).body

    def last_index(self) -> int:
        with self._condition:
            return len(self.messages) - 1


@pytest.fixture
def platform(mqtt_broker: MqttBroker) -> Iterator[Platform]:
    p = Platform(mqtt_broker)
    yield p
    p.close()


@pytest.fixture
def fleet_of(mqtt_broker: MqttBroker) -> Iterator[Callable[..., Fleet]]:
    """Start fleets of meters whose serials no other test uses."""
    fleets: list[Fleet] = []

    def make(count: int = 1, **options: Any) -> Fleet:
        options.setdefault("serial_prefix", f"T{uuid.uuid4().hex[:6].upper()}")
        fleet = Fleet(
            mqtt_broker.host, mqtt_broker.port, mqtt_broker.prefix, count=count, **options
        )
        fleets.append(fleet)
        return fleet.start()

    yield make
    for fleet in fleets:
        fleet.stop()


def _status(body: Any, **expected: Any) -> bool:
    return isinstance(body, dict) and all(body.get(k) == v for k, v in expected.items())


# -- commands ------------------------------------------------------------------------------


def test_a_disconnect_is_applied_and_acknowledged_with_the_relay_off(fleet_of, platform):
    fleet = fleet_of()
    serial = fleet.serials[0]
    platform.wait_for(serial, "status", lambda b: _status(b, online=True, relay="on"))

    command_id = platform.command(serial, "disconnect")

    ack = platform.ack(serial, command_id)
    assert ack["status"] == "ok"
    assert ack["relay"] == "off"
    assert "error" not in ack
    datetime.fromisoformat(ack["at"])
    assert fleet.meter(serial).relay == "off"
    status = platform.wait_for(serial, "status", lambda b: _status(b, relay="off"))
    assert status.body["online"] is True


def test_a_repeated_command_id_is_acknowledged_again_but_not_applied_again(fleet_of, platform):
    fleet = fleet_of()
    serial = fleet.serials[0]
    connect_id = platform.command(serial, "connect")
    platform.ack(serial, connect_id)
    disconnect_id = platform.command(serial, "disconnect")
    platform.ack(serial, disconnect_id)
    mark = platform.last_index()

    platform.command(serial, "connect", command_id=connect_id)  # the platform re-sends

    replayed = platform.ack(serial, connect_id, after=mark)
    assert replayed["status"] == "ok"
    assert replayed["relay"] == "off"
    assert fleet.meter(serial).relay == "off"
    assert fleet.meter(serial).applied_command_ids == [connect_id, disconnect_id]


def test_an_expired_command_is_refused(fleet_of, platform):
    fleet = fleet_of()
    serial = fleet.serials[0]
    past = datetime.now(UTC) - timedelta(minutes=5)

    command_id = platform.command(serial, "disconnect", expires_at=past)

    ack = platform.ack(serial, command_id)
    assert (ack["status"], ack["error"], ack["relay"]) == ("error", "expired", "on")
    assert fleet.meter(serial).relay == "on"
    assert command_id not in fleet.meter(serial).applied_command_ids


def test_read_sends_a_reading_now_and_acks_with_the_register(fleet_of, platform):
    fleet = fleet_of(interval=3600)  # no scheduled reading during the test
    serial = fleet.serials[0]

    command_id = platform.command(serial, "read")

    ack = platform.ack(serial, command_id)
    reading = platform.wait_for(serial, "telemetry").body
    assert ack["status"] == "ok"
    assert Decimal(str(ack["energy_kwh"])) == Decimal(str(reading["energy_kwh"]))
    assert reading["relay"] == "on"
    assert {"at", "power_w", "voltage_v"} <= reading.keys()
    assert Decimal(str(reading["energy_kwh"])) <= fleet.meter(serial).register_kwh


def test_telemetry_arrives_every_interval_with_a_growing_register(fleet_of, platform):
    fleet = fleet_of(interval=900, speed=3600)  # a reading every quarter of a wall second
    serial = fleet.serials[0]

    platform.wait_for(serial, "telemetry", after=-1, timeout=5)
    deadline = time.monotonic() + 10
    while len(platform.of(serial, "telemetry")) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)

    readings = [m.body for m in platform.of(serial, "telemetry")][:5]
    assert len(readings) == 5
    times = [datetime.fromisoformat(r["at"]) for r in readings]
    assert all(b - a == timedelta(seconds=900) for a, b in itertools.pairwise(times))
    energies = [Decimal(str(r["energy_kwh"])) for r in readings]
    assert energies == sorted(energies)
    assert energies[-1] > energies[0]
    assert all(r["power_w"] > 0 and 200 < r["voltage_v"] < 240 for r in readings)


def test_garbage_on_the_command_topic_does_not_stop_the_meter(fleet_of, platform):
    fleet = fleet_of()
    serial = fleet.serials[0]
    for garbage in (
        b"\xff\xfe not json",
        b"[1, 2, 3]",
        b'{"action": "disconnect"}',
        b'{"id": 42, "action": "disconnect"}',
        b"",
    ):
        platform.send_raw(serial, garbage)
    unknown = platform.command(serial, "self_destruct")
    naive = str(uuid.uuid4())
    platform.send_raw(
        serial,
        json.dumps(
            {
                "id": naive,
                "action": "disconnect",
                "issued_at": "2026-11-21T08:00:00",  # no UTC offset: refused
                "expires_at": "2100-01-01T00:00:00",
            }
        ).encode(),
    )

    good = platform.command(serial, "disconnect")

    assert platform.ack(serial, unknown)["error"] == "unsupported"
    assert platform.ack(serial, naive)["error"] == "invalid_command"
    ack = platform.ack(serial, good)
    assert (ack["status"], ack["relay"]) == ("ok", "off")
    assert fleet.meter(serial).applied_command_ids == [good]


# -- prepaid -------------------------------------------------------------------------------


def test_a_token_adds_its_kwh_once_and_is_refused_the_second_time(fleet_of, platform):
    fleet = fleet_of(prepaid=1.0, initial_credit_kwh=Decimal("2"))
    serial = fleet.serials[0]
    meter = fleet.meter(serial)
    meter.set_demand(0)  # freeze the credit so the arithmetic is exact
    credit = meter.credit_kwh  # the load may have used a little before the freeze
    assert credit is not None
    assert Decimal("1.9") < credit <= Decimal("2")
    secret = factory_secret(serial)
    assert meter.spec.secret_hex == secret
    count, token = generate_token(secret_key=secret, count=TOKEN_START_COUNT, value=25)

    first = platform.command(serial, "token", token=token)
    ack = platform.ack(serial, first)
    assert (ack["status"], ack["relay"]) == ("ok", "on")
    assert Decimal(str(ack["credit_kwh"])) == credit + 25
    assert meter.token_count == count

    again = platform.command(serial, "token", token=token)  # a new command, the same token
    refused = platform.ack(serial, again)
    assert (refused["status"], refused["error"]) == ("error", "invalid_token")
    assert Decimal(str(refused["credit_kwh"])) == credit + 25

    forged = platform.command(serial, "token", token="123456789")
    assert platform.ack(serial, forged)["error"] == "invalid_token"

    # The next token, typed on the keypad, is reported by a reading at once.
    _, keypad_token = generate_token(secret_key=secret, count=count, value=3)
    result = meter.enter_token(keypad_token)
    assert result.accepted
    assert result.value == Decimal(3)
    assert meter.credit_kwh == credit + 28
    assert not meter.enter_token(keypad_token).accepted
    platform.wait_for(serial, "telemetry", lambda b: Decimal(str(b["credit_kwh"])) == credit + 28)


def test_credit_running_out_opens_the_relay_and_a_token_closes_it(fleet_of, platform):
    fleet = fleet_of(prepaid=1.0, initial_credit_kwh=Decimal("0.5"), speed=60, interval=3600)
    serial = fleet.serials[0]
    meter = fleet.meter(serial)
    secret = factory_secret(serial)
    meter.set_demand(36_000)  # 0.5 kWh lasts 50 simulated seconds, under a wall second

    cut = platform.wait_for(serial, "telemetry", lambda b: b["relay"] == "off", timeout=10).body
    assert cut["credit_kwh"] == 0
    assert cut["power_w"] == 0
    opened = platform.wait_for(serial, "status", lambda b: _status(b, online=True, relay="off"))
    assert meter.relay == "off"
    assert meter.credit_kwh == 0
    refused = platform.command(serial, "connect")
    assert platform.ack(serial, refused)["error"] == "no_credit"

    meter.set_demand(0)
    count, token = generate_token(secret_key=secret, count=TOKEN_START_COUNT, value=5)
    topped_up = platform.command(serial, "token", token=token)
    ack = platform.ack(serial, topped_up)
    assert (ack["status"], ack["relay"], ack["credit_kwh"]) == ("ok", "on", 5)
    platform.wait_for(serial, "status", lambda b: _status(b, relay="on"), after=opened.index)

    # Credit does not override the platform: after a disconnect a token leaves the relay open.
    platform.ack(serial, platform.command(serial, "disconnect"))
    _, token = generate_token(secret_key=secret, count=count, value=1)
    ack = platform.ack(serial, platform.command(serial, "token", token=token))
    assert (ack["status"], ack["relay"], ack["credit_kwh"]) == ("ok", "off", 6)


def test_a_postpaid_meter_refuses_tokens(fleet_of, platform):
    fleet = fleet_of(prepaid=0.0)
    serial = fleet.serials[0]
    ack = platform.ack(serial, platform.command(serial, "token", token="123456789"))
    assert (ack["status"], ack["error"]) == ("error", "unsupported")
    assert "credit_kwh" not in ack


# -- behaviours ----------------------------------------------------------------------------


def test_an_offline_meter_drops_off_the_broker_then_sends_one_batch_and_obeys(fleet_of, platform):
    fleet = fleet_of(interval=60, speed=600)  # ten readings a wall second
    serial = fleet.serials[0]
    meter = fleet.meter(serial)
    platform.wait_for(serial, "telemetry")

    meter.go_offline()
    # Its connection dropped without a DISCONNECT: the broker published its last will.
    offline = platform.wait_for(serial, "status", lambda b: b == {"online": False})
    time.sleep(0.8)
    command_id = platform.command(serial, "disconnect")
    time.sleep(0.3)
    assert not [m for m in platform.of(serial) if m.index > offline.index], "an offline meter spoke"
    assert meter.relay == "on"

    meter.come_online()

    online = platform.wait_for(
        serial, "status", lambda b: _status(b, online=True), after=offline.index
    )
    # As the platform does when a meter's status says it is back (the broker may also
    # have kept the command in the meter's session: the meter applies an id once).
    platform.command(serial, "disconnect", command_id=command_id)
    batch = platform.wait_for(serial, "telemetry", after=online.index)
    ack = platform.ack(serial, command_id)
    assert "readings" in batch.body
    readings = batch.body["readings"]
    assert len(readings) >= 5
    assert all(r["relay"] == "on" for r in readings)
    energies = [Decimal(str(r["energy_kwh"])) for r in readings]
    assert energies == sorted(energies)
    assert (ack["status"], ack["relay"]) == ("ok", "off")
    assert meter.applied_command_ids.count(command_id) == 1
    # Exactly one batch between coming back and the ack.
    telemetry_between = [
        m for m in platform.of(serial, "telemetry") if online.index < m.index < batch.index
    ]
    assert telemetry_between == []


def test_a_meter_back_with_its_session_gets_what_the_broker_kept_and_without_it_nothing(
    mqtt_broker, fleet_of, platform
):
    fleet = fleet_of(count=2, offline=1.0, interval=3600)  # each on a connection of its own
    kept, lost = (fleet.meter(serial) for serial in fleet.serials)
    commands = {}
    for meter in (kept, lost):
        platform.wait_for(meter.serial, "status", lambda b: _status(b, online=True))
        meter.go_offline()
        platform.wait_for(meter.serial, "status", lambda b: b == {"online": False})
        commands[meter.serial] = platform.command(meter.serial, "disconnect")

    kept.come_online()
    lost.come_online(session_lost=True)

    for meter in (kept, lost):
        platform.wait_for(meter.serial, "status", lambda b: _status(b, online=True, relay="on"))
    time.sleep(1)
    assert lost.relay == "on"  # what the broker held for it went with its session
    assert platform.of(lost.serial, "ack") == []
    if EMBEDDED_BROKER:
        # amqtt keeps no session for clients it lets in anonymously: nothing was kept.
        assert kept.relay == "on"
    else:
        assert platform.ack(kept.serial, commands[kept.serial])["relay"] == "off"


def test_duplicates_mode_sends_messages_twice(fleet_of, platform):
    fleet = fleet_of(interval=3600)
    serial = fleet.serials[0]
    fleet.meter(serial).set_duplicates(1.0)

    command_id = platform.command(serial, "read")

    platform.ack(serial, command_id)
    deadline = time.monotonic() + 5
    while len(platform.of(serial, "ack")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    acks = platform.of(serial, "ack")
    readings = platform.of(serial, "telemetry")
    assert [m.raw for m in acks] == [acks[0].raw] * 2
    assert [m.raw for m in readings] == [readings[0].raw] * 2


def test_a_flaky_meter_loses_acks_and_a_tampered_one_says_so(fleet_of, platform):
    fleet = fleet_of(count=2, interval=3600)
    flaky, tampered = (fleet.meter(s) for s in fleet.serials)
    flaky.set_flaky(1.0)

    lost = platform.command(flaky.serial, "disconnect")
    tampered.tamper()

    reading = platform.wait_for(tampered.serial, "telemetry").body
    assert reading["tamper"] is True
    time.sleep(0.3)
    assert flaky.relay == "off"  # applied, only the ack was lost
    assert platform.of(flaky.serial, "ack") == []
    flaky.set_flaky(0)
    ack = platform.ack(flaky.serial, platform.command(flaky.serial, "disconnect", command_id=lost))
    assert (ack["status"], ack["relay"]) == ("ok", "off")


def test_the_fleet_survives_a_broker_restart(restartable_mqtt_broker):
    broker = restartable_mqtt_broker
    with Fleet(
        broker.host, broker.port, broker.prefix, count=3, serial_prefix="RST", reconnect_max_delay=2
    ) as fleet:
        broker.restart()
        platform = Platform(broker, "after-restart")
        try:
            serial = fleet.serials[1]
            # As the head-end does: re-send (same id) until the ack arrives.
            command_id = str(uuid.uuid4())
            deadline = time.monotonic() + 30
            ack = None
            while ack is None and time.monotonic() < deadline:
                platform.command(serial, "disconnect", command_id=command_id)
                try:
                    ack = platform.ack(serial, command_id, timeout=1)
                except AssertionError:
                    continue
            assert ack is not None, "the meter never obeyed after the restart"
            assert (ack["status"], ack["relay"]) == ("ok", "off")
            # A resumed session delivers the queued command before the new SUBACK comes back.
            assert fleet.wait_connected(5)
            # Every meter republished its retained status on the new broker.
            for s in fleet.serials:
                platform.wait_for(s, "status", lambda b: _status(b, online=True))
        finally:
            platform.close()


# -- history burst -------------------------------------------------------------------------


def test_publish_history_pushes_the_readings_it_reports(mqtt_broker, platform):
    fleet = Fleet(
        mqtt_broker.host, mqtt_broker.port, mqtt_broker.prefix, count=4, serial_prefix="HIST"
    )

    batched = fleet.publish_history(readings_per_meter=250, step_seconds=900, batch_size=100)
    single = Fleet(
        mqtt_broker.host, mqtt_broker.port, mqtt_broker.prefix, count=2, serial_prefix="HIS1"
    ).publish_history(readings_per_meter=30, step_seconds=60, batch_size=1, connections=2)

    assert (batched.messages, batched.readings) == (4 * 3, 4 * 250)
    assert (single.messages, single.readings) == (2 * 30, 2 * 30)
    assert batched.last_puback_at >= batched.started_at
    assert batched.readings_per_second > 0

    def received(serials: list[str], expected: int) -> list[Message]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = [m for s in serials for m in platform.of(s, "telemetry")]
            if len(got) >= expected:
                return got
            time.sleep(0.05)
        return got

    messages = received(fleet.serials, batched.messages)
    assert len(messages) == batched.messages
    assert sum(len(m.body["readings"]) for m in messages) == batched.readings
    for serial in fleet.serials:
        readings = [r for m in platform.of(serial, "telemetry") for r in m.body["readings"]]
        times = [datetime.fromisoformat(r["at"]) for r in readings]
        assert len(set(times)) == 250
        assert times == sorted(times)
        assert times[-1] < datetime.fromtimestamp(fleet.clock.start, UTC)
        energies = [Decimal(str(r["energy_kwh"])) for r in readings]
        assert energies == sorted(energies)
    singles = received(["HIS1-000001", "HIS1-000002"], single.messages)
    assert len(singles) == single.messages
    assert all("energy_kwh" in m.body for m in singles)


# -- command line --------------------------------------------------------------------------


def test_the_command_line_runs_a_fleet_until_interrupted(mqtt_broker, platform):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.meters",
            "--count",
            "3",
            "--broker",
            mqtt_broker.url,
            "--prefix",
            mqtt_broker.prefix,
            "--serial-prefix",
            "CLI",
            "--interval",
            "60",
            "--speed",
            "600",
            "--prepaid-fraction",
            "0.34",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for i in (1, 2, 3):
            platform.wait_for(f"CLI-{i:06d}", "telemetry", timeout=15)
        prepaid = [
            m.body
            for i in (1, 2, 3)
            for m in platform.of(f"CLI-{i:06d}", "telemetry")
            if "credit_kwh" in m.body
        ]
        assert prepaid, "one meter in three is prepaid"
        command_id = platform.command("CLI-000002", "disconnect")
        assert platform.ack("CLI-000002", command_id)["relay"] == "off"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for i in (1, 2, 3):
        platform.wait_for(f"CLI-{i:06d}", "status", lambda b: b == {"online": False})


def test_the_command_line_refuses_bad_arguments():
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.meters", "--count", "3", "--prepaid-fraction", "2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "between 0 and 1" in result.stderr
