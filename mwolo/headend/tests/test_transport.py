"""The head-end's MQTT transport over a real broker; a plain paho client plays the meters.

Every test runs on the run's broker: the embedded amqtt broker by default, Mosquitto with
MQTT_URL (CI's second pass), under a topic prefix of its own (``mqtt_broker``): the exact
counts below hold whatever other tests leave retained on the broker. Where amqtt lacks an
MQTT feature the test still runs in full and is marked as an expected, strict failure
there, with the reason. Tests that restart their broker get a private Mosquitto with
persistence, as deployed.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from mwolo.core.testing.mqtt import MqttBroker, retained_clear
from mwolo.headend.protocol import Ack, Status, Telemetry, command_payload
from mwolo.headend.transport import Batch, BrokerAddress, Delivery, MqttTransport

from .meters import Meters, simple_telemetry
from .strategies import junk_payloads

# Without MQTT_URL the run's broker is the embedded amqtt broker.
AMQTT = not os.environ.get("MQTT_URL")


def amqtt_lacks(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(
        AMQTT, reason=f"amqtt 0.12.1: {reason}", strict=True, raises=AssertionError
    )


class Recorder:
    """A handler that stores batches; it may fail its first calls or wait for a gate."""

    def __init__(self, failures: int = 0, gate: threading.Event | None = None) -> None:
        self.failures = failures
        self.gate = gate
        self.calls = 0
        self.entered = threading.Event()
        self.batches: list[Batch] = []
        self.seen: list[Batch] = []  # every call, failed or not
        self._changed = threading.Condition()

    def __call__(self, batch: Batch) -> None:
        with self._changed:
            self.calls += 1
            call = self.calls
            self.seen.append(batch)
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        if call <= self.failures:
            raise RuntimeError("database unavailable")
        with self._changed:
            self.batches.append(batch)
            self._changed.notify_all()

    def deliveries(self) -> list[Delivery[Any]]:
        with self._changed:
            return [d for batch in self.batches for d in batch.deliveries()]

    def messages(self) -> list[Any]:
        return [d.message for d in self.deliveries()]

    def energies(self) -> set[int]:
        return {
            int(reading.energy_kwh)
            for message in self.messages()
            if isinstance(message, Telemetry)
            for reading in message.readings
        }

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.05))
        return True


def eventually(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def forget_session(broker: MqttBroker, client_id: str) -> None:
    """Connect once with a clean session: the broker drops what it kept for this client id."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        client.connect(broker.host, broker.port)
        client.loop_start()
        client.disconnect()
        client.loop_stop()
    except OSError:
        return  # a private broker already stopped keeps nothing


@pytest.fixture
def transports() -> Iterator[Callable[..., MqttTransport]]:
    """Start transports on a broker (ready: subscribed); stop them and forget their sessions."""
    made: list[tuple[MqttBroker, MqttTransport]] = []

    def make(
        broker: MqttBroker,
        handler: Callable[[Batch], object],
        *,
        start: bool = True,
        **kw: Any,
    ) -> MqttTransport:
        kw.setdefault("client_id", f"headend-test-{uuid.uuid4().hex[:12]}")
        kw.setdefault("retry_min_delay", 0.05)
        url = kw.pop("url", broker.url)
        transport = MqttTransport(url, broker.prefix, handler, **kw)
        made.append((broker, transport))
        if start:
            transport.start()
            assert transport.wait_ready(10)
        return transport

    yield make
    for _broker, transport in made:
        transport.stop()
    forgotten: set[str] = set()
    for broker, transport in made:
        if transport.client_id not in forgotten:
            forgotten.add(transport.client_id)
            forget_session(broker, transport.client_id)


@pytest.fixture
def meters(mqtt_broker: MqttBroker) -> Iterator[Meters]:
    meters = Meters(mqtt_broker)
    yield meters
    meters.close()


# --- Flow ------------------------------------------------------------------------------------


def test_every_kind_reaches_the_handler_parsed_and_acknowledged(mqtt_broker, meters, transports):
    recorder = Recorder()
    transport = transports(mqtt_broker, recorder)
    command_id = uuid.uuid4()
    meters.publish("SN-1", "telemetry", simple_telemetry("15234.125"))
    meters.publish(
        "SN-2",
        "telemetry",
        b'{"readings": [{"at": "2026-01-01T00:00:00Z", "energy_kwh": 1, "relay": "on"},'
        b' {"at": "2026-01-01T00:15:00+01:00", "energy_kwh": 2, "relay": "off"}]}',
    )
    meters.publish(
        "SN-1",
        "ack",
        f'{{"id": "{command_id}", "status": "ok", "relay": "off",'
        f' "at": "2026-01-01T00:00:03Z"}}'.encode(),
    )
    meters.publish("SN-3", "status", b'{"online": true, "relay": "on", "fw": "2.4.1"}')
    assert recorder.wait_for(lambda: len(recorder.messages()) == 4)

    messages = recorder.messages()
    telemetry = [m for m in messages if isinstance(m, Telemetry)]
    assert {t.serial: [r.energy_kwh for r in t.readings] for t in telemetry} == {
        "SN-1": [Decimal("15234.125")],
        "SN-2": [Decimal("1.000"), Decimal("2.000")],
    }
    (ack,) = [m for m in messages if isinstance(m, Ack)]
    assert (ack.serial, ack.command_id, ack.status, ack.relay) == ("SN-1", command_id, "ok", "off")
    (status,) = [m for m in messages if isinstance(m, Status)]
    assert status == Status(serial="SN-3", online=True, relay="on", fw="2.4.1")

    assert transport.received == {"telemetry": 2, "ack": 1, "status": 1}
    assert transport.readings_received == 3
    assert eventually(lambda: transport.acks_sent == 4)
    assert transport.messages_handled == 4
    assert transport.batches_handled == len(recorder.batches)
    assert transport.handler_failures == 0
    assert not transport.rejections
    assert all(not d.duplicate and not d.retained and d.qos == 1 for d in recorder.deliveries())


def test_batches_never_exceed_max_batch(mqtt_broker, meters, transports):
    recorder = Recorder()
    # Nothing but the size closes a batch here: linger and max_delay are far away.
    transports(mqtt_broker, recorder, max_batch=10, max_delay=30, linger=30)
    for energy in range(50):
        meters.publish(f"SN-{energy}", "telemetry", simple_telemetry(energy), wait=False)
    assert recorder.wait_for(lambda: len(recorder.deliveries()) == 50)
    assert [len(batch) for batch in recorder.batches] == [10] * 5
    assert recorder.energies() == set(range(50))


def test_a_batch_waits_at_most_max_delay(mqtt_broker, meters, transports):
    recorder = Recorder()
    transports(mqtt_broker, recorder, max_batch=1000, max_delay=0.3, linger=20)
    published = time.monotonic()
    meters.publish("SN-1", "telemetry", simple_telemetry())
    assert recorder.wait_for(lambda: len(recorder.batches) == 1)
    waited = time.monotonic() - published
    # Held for max_delay, not for linger (20 s) nor until 1000 messages.
    assert 0.3 <= waited < 10


def test_a_pause_in_the_stream_closes_the_batch(mqtt_broker, meters, transports):
    recorder = Recorder()
    transports(mqtt_broker, recorder, max_batch=1000, max_delay=30, linger=0.05)
    meters.publish("SN-1", "telemetry", simple_telemetry())
    assert recorder.wait_for(lambda: len(recorder.batches) == 1, timeout=10)


def test_stop_flushes_the_current_batch_and_acknowledges_it(mqtt_broker, meters, transports):
    recorder = Recorder()
    client_id = f"headend-test-{uuid.uuid4().hex[:12]}"
    transport = transports(mqtt_broker, recorder, client_id=client_id, max_delay=30, linger=30)
    for energy in range(3):
        meters.publish("SN-1", "telemetry", simple_telemetry(energy))
    assert eventually(lambda: transport.received["telemetry"] == 3)
    assert not recorder.batches  # held: nothing closes the batch for 30 s

    transport.stop()
    assert recorder.energies() == {0, 1, 2}
    assert transport.acks_sent == 3

    # The PUBACKs left before the DISCONNECT: the broker has nothing to deliver again.
    again = Recorder()
    transports(mqtt_broker, again, client_id=client_id)
    time.sleep(0.5)
    assert again.messages() == []


def test_retained_statuses_replayed_on_subscribe_are_marked(mqtt_broker, meters, transports):
    meters.publish("SN-RET", "status", b'{"online": true, "relay": "off"}', retain=True)
    try:
        recorder = Recorder()
        transport = transports(mqtt_broker, recorder)
        assert recorder.wait_for(lambda: len(recorder.deliveries()) == 1)
        (delivery,) = recorder.deliveries()
        assert delivery.retained
        assert delivery.message == Status(serial="SN-RET", online=True, relay="off")
    finally:
        meters.publish("SN-RET", "status", b"", retain=True)  # clears the retained message
    # The clearing message reaches subscribers too: refused as empty, never a crash.
    assert eventually(lambda: transport.rejections["empty"] == 1)


# --- Invalid messages ------------------------------------------------------------------------


def test_invalid_messages_are_counted_refused_and_acknowledged(mqtt_broker, meters, transports):
    recorder = Recorder()
    refused: list[tuple[str, bytes, str]] = []
    transport = transports(mqtt_broker, recorder, on_rejected=lambda *args: refused.append(args))
    junk = [
        ("SN-1", "telemetry", b"", "empty"),
        ("SN-1", "telemetry", b"\xff\xfe", "bad_encoding"),
        ("SN-1", "telemetry", b"{not json", "bad_json"),
        ("SN-1", "telemetry", b'{"energy_kwh": NaN}', "bad_json"),
        ("SN-1", "status", b"[1, 2]", "not_object"),
        ("SN-1", "telemetry", b'{"relay": "on"}', "missing_field"),
        ("SN-1", "status", b'{"online": 1}', "bad_type"),
        ("SN-1", "telemetry", simple_telemetry("-5"), "bad_value"),
        ("SN-1", "telemetry", simple_telemetry(at="2026-01-01T00:00:00"), "naive_time"),
        ("SN-1", "telemetry", simple_telemetry(at="3000-01-01T00:00:00Z"), "future_time"),
        ("SN-1", "ack", b'{"id": "x", "status": "ok", "relay": "on", "at": "x"}', "bad_value"),
        ("bad.serial", "telemetry", simple_telemetry(), "bad_serial"),
        ("x" * 65, "telemetry", simple_telemetry(), "bad_serial"),
    ]
    for serial, kind, payload, _reason in junk:
        meters.publish(serial, kind, payload)
    meters.publish("SN-OK", "telemetry", simple_telemetry("7"))

    assert recorder.wait_for(lambda: len(recorder.messages()) == 1)
    assert eventually(lambda: sum(transport.rejections.values()) == len(junk))
    expected: dict[str, int] = {}
    for *_, reason in junk:
        expected[reason] = expected.get(reason, 0) + 1
    assert transport.rejections == expected
    assert sorted((topic.split("/")[-2], payload) for topic, payload, _ in refused) == sorted(
        (serial, payload) for serial, _, payload, _ in junk
    )
    assert eventually(lambda: transport.acks_sent == len(junk) + 1)
    assert recorder.messages()[0].serial == "SN-OK"


def test_random_payloads_never_stop_the_flow(mqtt_broker, meters, transports):
    recorder = Recorder()
    transport = transports(mqtt_broker, recorder)
    published = [0]

    @given(
        serial=st.sampled_from(["SN-1", "bad.serial", "x" * 65]),
        kind=st.sampled_from(["telemetry", "ack", "status"]),
        payload=junk_payloads(),
    )
    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def publish_junk(serial: str, kind: str, payload: bytes) -> None:
        meters.publish(serial, kind, payload)
        published[0] += 1

    publish_junk()
    meters.publish("SN-FINAL", "telemetry", simple_telemetry("42"))

    total = published[0] + 1
    assert total > 200
    # Each message is either refused or handled, and each is acknowledged.
    assert eventually(
        lambda: sum(transport.rejections.values()) + transport.messages_handled == total
    )
    assert any(getattr(m, "serial", None) == "SN-FINAL" for m in recorder.messages())
    assert eventually(lambda: transport.acks_sent == total)
    assert transport.is_ready
    assert transport.handler_failures == 0


# --- Handler failures and redelivery --------------------------------------------------------


def test_a_failing_batch_stays_unacknowledged_until_the_handler_succeeds(
    mqtt_broker, meters, transports
):
    recorder = Recorder(failures=3)
    # A long linger keeps the three in one batch even on a loaded machine.
    transport = transports(mqtt_broker, recorder, max_delay=30, linger=2)
    for energy in range(3):
        meters.publish("SN-1", "telemetry", simple_telemetry(energy), wait=False)
    assert recorder.wait_for(lambda: len(recorder.batches) >= 1)

    assert transport.handler_failures == 3
    assert recorder.calls == 4
    # The same messages were offered each time, and acknowledged only after success.
    assert {id(b) for b in recorder.seen} == {id(recorder.batches[0])}
    assert recorder.energies() == {0, 1, 2}
    assert eventually(lambda: transport.acks_sent == 3)
    assert transport.acks_dropped == 0

    meters.publish("SN-1", "telemetry", simple_telemetry(3))  # the flow goes on
    assert recorder.wait_for(lambda: 3 in recorder.energies())


@amqtt_lacks(
    "unacknowledged QoS 1 messages are dropped when the subscriber disconnects "
    "(the in-flight record is popped when the PUBACK wait is cancelled, and after a 5 s "
    "PUBACK timeout), and anonymous sessions are not kept"
)
def test_messages_unacknowledged_by_a_failing_head_end_come_back_from_the_broker(
    mqtt_broker, meters, transports
):
    client_id = f"headend-test-{uuid.uuid4().hex[:12]}"
    failing = Recorder(failures=10**9)
    first = transports(mqtt_broker, failing, client_id=client_id, linger=0.05)
    for energy in range(3):
        meters.publish("SN-1", "telemetry", simple_telemetry(energy))
    assert eventually(lambda: first.handler_failures >= 2)
    first.stop()  # as if the process died while the database was down
    assert first.acks_sent == 0

    recorder = Recorder()
    transports(mqtt_broker, recorder, client_id=client_id)
    assert recorder.wait_for(lambda: recorder.energies() == {0, 1, 2}, timeout=3)
    assert all(d.duplicate for d in recorder.deliveries())  # the broker's redelivery


@amqtt_lacks(
    "messages for a disconnected persistent session are queued only for sessions that "
    "are not anonymous, and sandbox.broker lets everyone in anonymously"
)
def test_messages_published_while_the_head_end_is_stopped_arrive_when_it_restarts(
    mqtt_broker, meters, transports
):
    client_id = f"headend-test-{uuid.uuid4().hex[:12]}"
    # A username, as in production: amqtt keeps only sessions of authenticated clients.
    url = f"mqtt://headend@{mqtt_broker.host}:{mqtt_broker.port}"
    first = transports(mqtt_broker, Recorder(), client_id=client_id, url=url)
    first.stop()
    for energy in range(5):
        meters.publish(f"SN-{energy}", "telemetry", simple_telemetry(energy))

    recorder = Recorder()
    transports(mqtt_broker, recorder, client_id=client_id, url=url)
    assert recorder.wait_for(lambda: recorder.energies() == set(range(5)), timeout=3)


def test_acks_for_a_lost_connection_are_not_sent_on_the_next_one(
    restartable_mqtt_broker, transports
):
    broker = restartable_mqtt_broker
    gate = threading.Event()
    recorder = Recorder(gate=gate)
    transport = transports(broker, recorder, linger=0.05)
    meters = Meters(broker)
    try:
        for energy in range(3):
            meters.publish("SN-1", "telemetry", simple_telemetry(energy))
        assert recorder.entered.wait(10)  # the handler holds the batch...
        meters.close()
        broker.restart()  # ...while the connection it came from ends
        assert eventually(lambda: transport.reconnects == 1 and transport.is_ready, timeout=20)
        gate.set()
        assert recorder.wait_for(lambda: recorder.energies() == {0, 1, 2})
        # Handled, but their packet ids meant nothing on the new connection.
        assert eventually(lambda: transport.acks_dropped == 3)

        meters = Meters(broker)
        meters.publish("SN-1", "telemetry", simple_telemetry(3))
        assert recorder.wait_for(lambda: 3 in recorder.energies())
        # Acked: what came on the new connection, i.e. the new message and, from a broker
        # that kept the session across its restart, the first three again.
        assert eventually(lambda: transport.acks_sent == len(recorder.deliveries()) - 3)
        assert transport.acks_dropped == 3
    finally:
        gate.set()
        meters.close()


def test_a_broker_restart_mid_stream_loses_no_acknowledged_message(
    restartable_mqtt_broker, transports
):
    """Every telemetry message whose PUBACK the meter got reaches the handler (once or more).

    The meter side resumes only once the head-end is back, so that the test holds on a
    broker without persistence too (the embedded one, where Mosquitto is not installed):
    there a message accepted before the head-end has subscribed again has no subscriber.
    """
    broker = restartable_mqtt_broker
    recorder = Recorder()
    transport = transports(broker, recorder, linger=0.01)
    count = 600
    acked_mids: list[int] = []
    seq_of_mid: dict[int, int] = {}
    connections = [0]

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        connections[0] += 1
        if connections[0] > 1:  # back after the restart: wait for the head-end
            eventually(lambda: transport.reconnects >= 1 and transport.is_ready, timeout=30)

    meter = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"meter-{uuid.uuid4().hex[:8]}")
    meter.max_inflight_messages_set(1000)
    meter.on_connect = on_connect
    meter.on_publish = lambda client, userdata, mid, reason, props: acked_mids.append(mid)
    meter.connect(broker.host, broker.port)
    meter.loop_start()

    def publish_all() -> None:
        topic = f"{broker.prefix}/meters/SN-STREAM/telemetry"
        for seq in range(count):
            info = meter.publish(topic, simple_telemetry(seq), qos=1)
            seq_of_mid[info.mid] = seq
            time.sleep(0.003)

    publisher = threading.Thread(target=publish_all)
    try:
        publisher.start()
        assert eventually(lambda: len(seq_of_mid) >= count // 3)
        broker.restart()  # publishing goes on meanwhile: paho queues and resends
        publisher.join(60)
        assert eventually(lambda: len(acked_mids) == count, timeout=30), (
            len(acked_mids),
            connections,
            transport.metrics(),
            publisher.is_alive(),
            {str(m.state) for m in meter._out_messages.values()},
            len(meter._out_messages),
            meter.is_connected(),
        )
    finally:
        meter.disconnect()
        meter.loop_stop()

    acknowledged = {seq_of_mid[mid] for mid in acked_mids}
    assert recorder.wait_for(lambda: acknowledged <= recorder.energies(), timeout=20), sorted(
        acknowledged - recorder.energies()
    )
    assert transport.reconnects == 1
    assert transport.handler_failures == 0


# --- Commands --------------------------------------------------------------------------------


def test_commands_reach_the_meter_with_the_exact_payload(mqtt_broker, meters, transports):
    meters.subscribe(meters.topic("SN-CMD", "cmd"))
    transport = transports(mqtt_broker, Recorder(), start=False)
    issued = dt.datetime.now(dt.UTC)
    payloads = [
        command_payload(
            command_id=uuid.uuid4(),
            action=action,
            issued_at=issued,
            expires_at=issued + dt.timedelta(hours=1),
        )
        for action in ("disconnect", "connect", "read")
    ]
    # Published before the connection exists: queued, and sent once connected.
    first = transport.publish_command("SN-CMD", payloads[0])
    assert first.rc == mqtt.MQTT_ERR_NO_CONN
    transport.start()
    for payload in payloads[1:]:
        transport.publish_command("SN-CMD", payload)
    assert transport.wait_published(10)

    received = meters.wait_received(3)
    assert sorted(m.payload for m in received) == sorted(payloads)
    assert {(m.topic, m.qos, m.retain) for m in received} == {
        (meters.topic("SN-CMD", "cmd"), 1, False)
    }
    with pytest.raises(ValueError, match="serial"):
        transport.publish_command("SN/1", payloads[0])


# --- Shared subscriptions ----------------------------------------------------------------------


NO_SHARED_SUBSCRIPTIONS = (
    "no shared subscriptions: '$share/<group>/<filter>' is granted as a plain filter that "
    "matches no topic, so the workers receive nothing"
)


def statuses_of(recorder: Recorder) -> list[tuple[str, bool]]:
    return [
        (d.message.serial, d.message.online)
        for d in recorder.deliveries()
        if isinstance(d.message, Status)
    ]


@amqtt_lacks(NO_SHARED_SUBSCRIPTIONS)
def test_a_shared_group_splits_acks_and_telemetry_and_one_worker_takes_every_status(
    mqtt_broker, meters, transports
):
    first, second = Recorder(), Recorder()
    transports(mqtt_broker, first, shared_group="headend")
    transports(mqtt_broker, second, shared_group="headend", statuses=False)
    sent = []
    for energy in range(40):
        meters.publish(f"SN-{energy}", "telemetry", simple_telemetry(energy), wait=False)
        # A meter dropping and coming back: its last will, then its new status, at once.
        online = energy % 2 == 1
        meters.publish("SN-FLAKY", "status", f'{{"online": {str(online).lower()}}}'.encode())
        sent.append(("SN-FLAKY", online))

    assert eventually(lambda: first.energies() | second.energies() == set(range(40)), timeout=10)
    assert not first.energies() & second.energies()
    assert first.energies()
    assert second.energies()
    assert first.wait_for(lambda: len(statuses_of(first)) == len(sent))
    assert statuses_of(first) == sent  # all of them, in the order the meter sent them
    assert statuses_of(second) == []


@amqtt_lacks(NO_SHARED_SUBSCRIPTIONS)
def test_a_session_kept_from_an_unshared_run_delivers_nothing_twice_once_shared(
    mqtt_broker, meters, transports
):
    client_id = f"headend-test-{uuid.uuid4().hex[:12]}"
    earlier = transports(mqtt_broker, Recorder(), client_id=client_id)
    earlier.stop()  # the broker keeps its session: plain subscriptions to every kind
    first, second = Recorder(), Recorder()
    transports(mqtt_broker, first, client_id=client_id, shared_group="headend")
    transports(mqtt_broker, second, shared_group="headend", statuses=False)

    for energy in range(40):
        meters.publish(f"SN-{energy}", "telemetry", simple_telemetry(energy), wait=False)
    meters.publish("SN-0", "status", b'{"online": true}')

    assert eventually(lambda: first.energies() | second.energies() == set(range(40)), timeout=10)
    assert first.wait_for(lambda: len(statuses_of(first)) == 1)
    time.sleep(0.5)  # what a stale subscription would still deliver
    telemetry = [m for r in (first, second) for m in r.messages() if isinstance(m, Telemetry)]
    assert len(telemetry) == 40  # each once: the plain subscription of the earlier run is gone
    assert first.energies()
    assert second.energies()
    assert statuses_of(first) == [("SN-0", True)]


# --- Configuration -----------------------------------------------------------------------------


def test_broker_urls():
    assert BrokerAddress.from_url("mqtt://127.0.0.1:11883") == BrokerAddress(
        host="127.0.0.1", port=11883, tls=False, username=None, password=None
    )
    assert BrokerAddress.from_url("mqtts://mwolo-headend:p%40ss@mosquitto") == BrokerAddress(
        host="mosquitto", port=8883, tls=True, username="mwolo-headend", password="p@ss"
    )
    assert BrokerAddress.from_url("mqtt://broker").port == 1883
    for wrong in ("http://broker:1883", "mqtt://", "broker:1883"):
        with pytest.raises(ValueError, match="MQTT URL"):
            BrokerAddress.from_url(wrong)


def test_invalid_batching_options_are_refused():
    with pytest.raises(ValueError, match="max_batch"):
        MqttTransport("mqtt://127.0.0.1:1", "p", Recorder(), max_batch=0)


# --- Test isolation ----------------------------------------------------------------------------


def test_retained_messages_a_test_leaves_are_cleared_and_never_reach_another_prefix(
    mqtt_server, mqtt_broker, meters
):
    meters.publish("SN-LEFT", "status", b'{"online": false}', retain=True)
    meters.publish("SN-LEFT", "telemetry", simple_telemetry())  # not retained: nothing to clear

    # Another test's prefix on the same broker receives none of it.
    neighbour = MqttBroker(
        host=mqtt_server.host, port=mqtt_server.port, prefix=f"other-{uuid.uuid4().hex}"
    )
    assert retained_clear(neighbour) == []

    assert retained_clear(mqtt_broker) == [f"{mqtt_broker.prefix}/meters/SN-LEFT/status"]
    assert retained_clear(mqtt_broker) == []  # gone from the broker
