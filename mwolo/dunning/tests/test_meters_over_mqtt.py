"""A disconnection and its reconnection reaching a simulated meter over a real MQTT broker:
the head-end runs in this process, the meter is the sandbox fleet's, acks come back."""

import datetime as dt
from collections.abc import Iterator

import pytest

from mwolo.billing import services as billing
from mwolo.core import clock
from mwolo.core.testing.mqtt import MqttBroker
from mwolo.dunning.models import Disconnection
from mwolo.dunning.services import overdue_cleared_check
from mwolo.dunning.tests.factories import (
    first_day_to_cut,
    open_episode,
    overdue_invoice,
    site_meter,
)
from mwolo.dunning.tests.test_ladder import walk
from mwolo.metering.headend import Headend
from mwolo.metering.models import MeterCommand, Relay
from mwolo.metering.tests.test_headend_scenarios import (
    command_status,
    eventually,
    fleet_for,
    running_headend,
)

pytestmark = pytest.mark.django_db(transaction=True)


def due_for_a_cut_to_come() -> dt.date:
    """A due date whose D+14 is a working day still to come.

    The head-end sends commands by the real clock, and a cut's command lives until the
    policy's cut-off hour of its day: a cut day in the past would expire unsent.
    """
    return first_day_to_cut(clock.today() + dt.timedelta(days=15)) - dt.timedelta(days=14)


@pytest.fixture
def headend(mqtt_broker: MqttBroker) -> Iterator[Headend]:
    yield from running_headend(mqtt_broker, f"{mqtt_broker.prefix}-dunning-headend")


def test_the_cut_is_acknowledged_and_clearing_the_balance_switches_the_meter_back_on(
    mqtt_broker, headend, residential
):
    due = due_for_a_cut_to_come()
    invoice = overdue_invoice(due=due)
    meter = site_meter(invoice.site)
    with fleet_for(mqtt_broker, [meter]) as fleet:
        walk(0, 14, due=due)
        episode = open_episode(invoice.site)
        cut = episode.meters.get().cut_command

        eventually(lambda: command_status(cut) == "acknowledged", what="ack of the disconnect")
        assert fleet.meter(meter.serial).relay == "off"
        assert site_meter(invoice.site).relay_reported == Relay.OFF

        billing.credit_note_issue(invoice_id=invoice.pk, reason="Compteur défectueux", actor=None)
        # The credit note's own check runs on commit; this one finds nothing more to do then.
        overdue_cleared_check(client_id=invoice.client_id)
        closed = Disconnection.objects.get(pk=episode.pk)
        assert closed.closed_at is not None
        restore = closed.meters.get().restore_command

        eventually(lambda: command_status(restore) == "acknowledged", what="ack of the connect")
        assert fleet.meter(meter.serial).relay == "on"
        assert site_meter(invoice.site).relay_reported == Relay.ON
        assert closed.closed_reason == Disconnection.ClosedReason.CLEARED
        assert MeterCommand.objects.filter(meter=meter).count() == 2
