"""The head-end and simulated meters over a real MQTT broker, with the real database.

The head-end runs in this process (a thread), the meter fleet too (its own MQTT
connections): everything between them crosses the broker as it would in production.
"""

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from mwolo.core import clock
from mwolo.core.testing.mqtt import MqttBroker
from mwolo.crm.tests.factories import SiteFactory
from mwolo.metering import services
from mwolo.metering.headend import Headend
from mwolo.metering.models import (
    HeadendRejection,
    Meter,
    MeterAlarm,
    MeterCommand,
    MeterReading,
    PrepaidToken,
    Relay,
)
from mwolo.metering.tests.factories import installed_meter
from sandbox.meters import Fleet, factory_secret

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 20.0


def eventually(check: Callable[[], bool], timeout: float = WAIT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {timeout}s: {what}")


def running_headend(
    broker: MqttBroker, client_id: str, heartbeat: Path | None = None
) -> Iterator[Headend]:
    headend = Headend(
        url=broker.url,
        prefix=broker.prefix,
        client_id=client_id,
        dispatch_interval=0.1,
        heartbeat=heartbeat,
    )
    stop = threading.Event()
    thread = threading.Thread(target=headend.run, args=(stop,), daemon=True)
    thread.start()
    assert headend.transport.wait_ready(WAIT)
    yield headend
    stop.set()
    thread.join(WAIT)


@pytest.fixture
def headend(mqtt_broker: MqttBroker) -> Iterator[Headend]:
    yield from running_headend(mqtt_broker, f"{mqtt_broker.prefix}-headend")


@pytest.fixture
def site():
    return SiteFactory()


def fleet_for(broker: MqttBroker, meters: list[Meter], **options) -> Fleet:
    return Fleet(
        broker.host,
        broker.port,
        broker.prefix,
        serials=[meter.serial for meter in meters],
        prepaid=[m.serial for m in meters if m.payment_mode == "prepaid"],
        **{"interval": 3600, **options},
    )


def command_status(command: MeterCommand) -> str:
    command.refresh_from_db()
    return command.status


def test_a_disconnect_reaches_the_meter_is_acknowledged_and_recorded(mqtt_broker, headend, site):
    meter = installed_meter(site, serial=f"{mqtt_broker.prefix}-M1")
    with fleet_for(mqtt_broker, [meter]) as fleet:
        command = services.meter_relay_request(
            meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
        )

        eventually(lambda: command_status(command) == "acknowledged", what="ack of the disconnect")
        assert fleet.meter(meter.serial).relay == "off"
        meter.refresh_from_db()
        assert meter.relay_reported == Relay.OFF
        assert fleet.meter(meter.serial).applied_command_ids.count(str(command.uuid)) == 1


def meter_online(meter: Meter) -> bool:
    return Meter.objects.get(pk=meter.pk).online


def command_sent_while_offline(fleet: Fleet, meter: Meter) -> MeterCommand:
    """The meter drops off the broker (its last will tells the head-end), then staff cut it."""
    simulated = fleet.meter(meter.serial)
    eventually(lambda: meter_online(meter), what="the meter's status")
    simulated.go_offline()
    eventually(lambda: not meter_online(meter), what="the meter's last will")
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
    )
    eventually(lambda: command_status(command) == "sent", what="command sent")
    time.sleep(1)
    assert simulated.relay == "on"
    assert command_status(command) == "sent"
    return command


def test_a_meter_offline_at_send_time_gets_the_command_when_it_reconnects(
    mqtt_broker, headend, site
):
    meter = installed_meter(site, serial=f"{mqtt_broker.prefix}-M2")
    with fleet_for(mqtt_broker, [meter]) as fleet:
        simulated = fleet.meter(meter.serial)
        command = command_sent_while_offline(fleet, meter)

        # Its persistent session back: Mosquitto delivers the command it kept, and the
        # head-end re-sends it on the meter's status (amqtt keeps no session: only that).
        simulated.come_online()

        eventually(lambda: command_status(command) == "acknowledged", what="ack after return")
        assert simulated.relay == "off"
        assert simulated.applied_command_ids.count(str(command.uuid)) == 1
        assert meter_online(meter)


def test_a_meter_back_without_its_session_gets_the_command_resent_at_once(
    mqtt_broker, headend, site
):
    """The broker forgot the meter's session (expired, or restarted without persistence):
    the command it held is lost, and only the head-end's re-send on the meter's return
    brings it, long before the first timed retry."""
    meter = installed_meter(site, serial=f"{mqtt_broker.prefix}-M5")
    with fleet_for(mqtt_broker, [meter]) as fleet:
        simulated = fleet.meter(meter.serial)
        command = command_sent_while_offline(fleet, meter)

        simulated.come_online(session_lost=True)

        eventually(
            lambda: command_status(command) == "acknowledged",
            timeout=services.RETRY_DELAYS[0].total_seconds() / 2,
            what="ack of the command re-sent on the meter's return",
        )
        command.refresh_from_db()
        # Sent while offline (lost), re-sent on its return: again for each "online" status
        # that comes before the ack, which the meter ignores (it applies a command once).
        assert command.attempts >= 2
        assert command.acknowledged_at - command.last_sent_at < services.RETRY_DELAYS[0]
        assert simulated.relay == "off"
        assert simulated.applied_command_ids.count(str(command.uuid)) == 1


def test_a_restarted_head_end_takes_replayed_statuses_for_no_news(mqtt_broker, site):
    """Subscribing again, the head-end gets every meter's retained status: it neither
    re-sends the commands just sent nor counts the replay as a sign of life."""
    meter = installed_meter(site, serial=f"{mqtt_broker.prefix}-M6")
    client_id = f"{mqtt_broker.prefix}-headend"
    first = running_headend(mqtt_broker, client_id)
    next(first)
    with fleet_for(mqtt_broker, [meter]) as fleet:
        simulated = fleet.meter(meter.serial)
        eventually(lambda: meter_online(meter), what="the meter's status")
        simulated.set_flaky(1.0)  # its acks are lost from now on: the command stays sent
        command = services.meter_relay_request(
            meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
        )
        eventually(lambda: simulated.relay == "off", what="the disconnect applied")
        eventually(
            lambda: Meter.objects.get(pk=meter.pk).relay_reported == Relay.OFF,
            what="the meter's status after the cut",
        )
        command.refresh_from_db()
        sent = (command.status, command.attempts, command.next_attempt_at)
        seen = Meter.objects.get(pk=meter.pk).last_seen_at
        next(first, None)  # the head-end stops (a deployment)...

        again = running_headend(mqtt_broker, client_id)
        restarted = next(again)  # ...and subscribes again
        try:
            eventually(lambda: restarted.transport.received["status"] >= 1, what="the replay")
            time.sleep(1)  # a few dispatch rounds
            command.refresh_from_db()
            assert (command.status, command.attempts, command.next_attempt_at) == sent
            assert Meter.objects.get(pk=meter.pk).last_seen_at == seen
        finally:
            next(again, None)


def test_a_meter_switched_on_by_hand_is_corrected_and_one_that_keeps_disagreeing_alarms(
    mqtt_broker, headend, site
):
    meter = installed_meter(site, serial=f"{mqtt_broker.prefix}-M3")

    def reported() -> str:
        return Meter.objects.get(pk=meter.pk).relay_reported

    def reconcile_and_settle() -> services.ReconcileReport:
        report = services.meters_reconcile()
        for command in MeterCommand.objects.filter(meter=meter, status__in=("queued", "sent")):
            eventually(lambda c=command: command_status(c) not in ("queued", "sent"))
        return report

    with fleet_for(mqtt_broker, [meter]) as fleet:
        simulated = fleet.meter(meter.serial)
        cut = services.meter_relay_request(
            meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
        )
        eventually(lambda: command_status(cut) == "acknowledged", what="ack of the cut")
        assert services.meters_reconcile().commands == 0

        simulated.switch_by_hand(on=True)  # the client bridges the cut: the meter says so

        eventually(lambda: reported() == Relay.ON, what="the meter's report of its relay")
        assert reconcile_and_settle().commands == 1
        eventually(lambda: reported() == Relay.OFF, what="relay reported off again")
        assert simulated.relay == "off"
        assert services.meters_reconcile().commands == 0

        # Bridged again, and now the relay is welded: every correction fails.
        simulated.switch_by_hand(on=True)
        simulated.set_relay_stuck(True)
        eventually(lambda: reported() == Relay.ON, what="the meter's report of its relay")
        reports = [reconcile_and_settle() for _round in range(services.DISAGREEMENTS_BEFORE_ALARM)]

        assert [r.commands for r in reports] == [1, 1, 1]
        assert [r.alarms for r in reports] == [0, 0, 1]
        alarm = MeterAlarm.objects.get(meter=meter, kind=MeterAlarm.Kind.DISAGREEMENT)
        assert alarm.closed_at is None
        failed = MeterCommand.objects.filter(meter=meter, status="failed", error="relay_fault")
        assert failed.count() == 3
        assert simulated.relay == "on"

        simulated.set_relay_stuck(False)  # repaired on site
        assert reconcile_and_settle().commands == 1
        eventually(lambda: reported() == Relay.OFF, what="relay reported off after repair")
        services.meters_reconcile()
        alarm.refresh_from_db()
        assert alarm.closed_at is not None
        assert simulated.relay == "off"


def test_a_token_is_accepted_by_the_meters_decoder_exactly_once(mqtt_broker, headend, site):
    meter = Meter(
        serial=f"{mqtt_broker.prefix}-P1",
        vendor="Sandbox",
        hardware_model="SIM",
        agency=site.agency,
        payment_mode="prepaid",
    )
    services.meter_register(
        meter=meter, actor=None, token_secret=factory_secret(meter.serial), token_count=1
    )
    services.meter_install(meter_id=meter.pk, site=site, register_kwh=Decimal(0), actor=None)
    with fleet_for(mqtt_broker, [Meter.objects.get(pk=meter.pk)]) as fleet:
        simulated = fleet.meter(meter.serial)
        credit_before = simulated.credit_kwh

        token = services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=40, actor=None)

        eventually(lambda: command_status(token.command) == "acknowledged", what="token applied")
        assert simulated.credit_kwh >= credit_before + 40 - Decimal("0.1")
        # The client types the same token on the keypad: the decoder refuses it.
        assert not simulated.enter_token(token.token).accepted
        assert PrepaidToken.objects.get().energy_kwh == 40


def test_a_broker_restart_loses_no_acknowledged_reading_and_stores_none_twice(
    restartable_mqtt_broker, site
):
    """Meters publish at QoS 1 before, during and after a broker restart.

    Every reading the broker acknowledged to a meter ends up stored, once. (The broker
    must keep its queue across the restart: Mosquitto with persistence, as in production.)
    """
    broker = restartable_mqtt_broker
    meter = installed_meter(
        site, serial=f"{broker.prefix}-R1", at=clock.now() - dt.timedelta(days=2)
    )
    base = meter.last_reading_at
    acknowledged: set[int] = set()
    publisher = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{broker.prefix}-R1", clean_session=False
    )
    publisher.max_inflight_messages_set(100)
    sent: dict[int, int] = {}  # mid -> minute
    publisher.on_publish = lambda client, userdata, mid, reason, props: acknowledged.add(sent[mid])
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    topic = f"{broker.prefix}/meters/{meter.serial}/telemetry"

    def publish(minute: int) -> None:
        payload = json.dumps(
            {
                "at": (base + dt.timedelta(minutes=minute)).isoformat(),
                "energy_kwh": 1000 + minute / 100,
                "relay": "on",
            }
        )
        info = publisher.publish(topic, payload, qos=1)
        sent[info.mid] = minute

    headend_runs = running_headend(broker, f"{broker.prefix}-headend")
    headend = next(headend_runs)
    try:
        for minute in range(1, 201):
            publish(minute)
            if minute == 100:
                broker.restart()
            time.sleep(0.01)
        eventually(lambda: len(acknowledged) >= 190, what="publisher acknowledged again")
        telemetry = MeterReading.objects.filter(meter=meter, source="telemetry")
        wanted = {base + dt.timedelta(minutes=m) for m in acknowledged}
        eventually(
            lambda: wanted <= set(telemetry.values_list("taken_at", flat=True)),
            what="every acknowledged reading stored",
        )
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        next(headend_runs, None)  # stops the head-end: its counters are written
    stored = list(telemetry.values_list("taken_at", flat=True))
    assert set(stored) <= {base + dt.timedelta(minutes=m) for m in sent.values()}
    # Stored once each, and whatever the broker delivered again was counted as such:
    # every reading the head-end received is either a stored row or a counted duplicate.
    duplicates = HeadendRejection.objects.filter(reason="duplicate_reading")
    assert len(stored) <= len(sent)
    assert len(stored) + sum(duplicates.values_list("count", flat=True)) == (
        headend.transport.readings_received
    )


def test_the_heartbeat_file_stays_fresh_while_connected(mqtt_broker, tmp_path):
    heartbeat = tmp_path / "headend-alive"
    runs = running_headend(mqtt_broker, f"{mqtt_broker.prefix}-beat", heartbeat=heartbeat)
    next(runs)
    try:
        eventually(heartbeat.exists, what="first heartbeat")
        first = heartbeat.stat().st_mtime_ns
        eventually(lambda: heartbeat.stat().st_mtime_ns > first, what="a later heartbeat")
    finally:
        next(runs, None)
