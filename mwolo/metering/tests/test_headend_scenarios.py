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
from mwolo.metering.models import Meter, MeterCommand, MeterReading, PrepaidToken, Relay
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


def test_a_meter_offline_at_send_time_gets_the_command_when_it_returns(mqtt_broker, headend, site):
    meter = installed_meter(site, serial=f"{mqtt_broker.prefix}-M2")
    with fleet_for(mqtt_broker, [meter]) as fleet:
        simulated = fleet.meter(meter.serial)
        simulated.go_offline()
        command = services.meter_relay_request(
            meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
        )
        eventually(lambda: command_status(command) == "sent", what="command sent")
        time.sleep(1)
        assert simulated.relay == "on"
        assert command_status(command) == "sent"

        simulated.come_online()

        eventually(lambda: command_status(command) == "acknowledged", what="ack after return")
        assert simulated.relay == "off"


def test_a_contradicting_meter_is_corrected_by_reconciliation(mqtt_broker, headend, site):
    meter = installed_meter(site, serial=f"{mqtt_broker.prefix}-M3")
    Meter.objects.filter(pk=meter.pk).update(relay_wanted=Relay.OFF, relay_reported=Relay.ON)
    with fleet_for(mqtt_broker, [meter]) as fleet:
        report = services.meters_reconcile()

        assert report.commands == 1
        eventually(
            lambda: Meter.objects.get(pk=meter.pk).relay_reported == Relay.OFF,
            what="relay reported off",
        )
        assert fleet.meter(meter.serial).relay == "off"
        assert services.meters_reconcile().commands == 0


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
    next(headend_runs)
    try:
        for minute in range(1, 201):
            publish(minute)
            if minute == 100:
                broker.restart()
            time.sleep(0.01)
        eventually(lambda: len(acknowledged) >= 190, what="publisher acknowledged again")
        stored = lambda: set(  # noqa: E731
            MeterReading.objects.filter(meter=meter, source="telemetry").values_list(
                "taken_at", flat=True
            )
        )
        wanted = {base + dt.timedelta(minutes=m) for m in acknowledged}
        eventually(lambda: wanted <= stored(), what="every acknowledged reading stored")
        assert stored() <= {base + dt.timedelta(minutes=m) for m in sent.values()}
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        next(headend_runs, None)


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
