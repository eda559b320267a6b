"""A meter goes off for dunning only inside the day's window the policy allows: not on a
quiet day, not after the cut-off hour, whoever sends the command (the pass, the re-send
to a meter back online, reconciliation). Reconnections never wait.

The meter side runs as the head-end would, its moments given: ``statuses_apply`` (the
meter's status), ``commands_dispatch`` (what goes out), ``acks_apply``, ``meters_reconcile``.
"""

import datetime as dt
import json
import re

import pytest
from django.urls import reverse

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.billing import services as billing
from mwolo.billing.tests.factories import KINSHASA
from mwolo.core.permissions import Role
from mwolo.dunning.models import Action, DisconnectionMeter, Reminder
from mwolo.dunning.services import dunning_run, overdue_cleared_check
from mwolo.dunning.tests.factories import day, open_episode, overdue_invoice, site_meter
from mwolo.dunning.tests.test_ladder import sms, walk
from mwolo.headend.protocol import Ack, Status
from mwolo.metering import services as metering
from mwolo.metering.models import Meter, MeterAlarm, MeterCommand, Relay

pytestmark = pytest.mark.django_db

FRIDAY_DUE = dt.date(2027, 2, 5)  # D+12 Wednesday 17 (final notice), D+14 Friday 19 (cut)
FRIDAY, SATURDAY, MONDAY = dt.date(2027, 2, 19), dt.date(2027, 2, 20), dt.date(2027, 2, 22)


def at(day: dt.date, time: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(time), tzinfo=KINSHASA)


def dispatch(now: dt.datetime) -> list[dict]:
    """One round of the head-end's dispatcher at ``now``: the commands it published."""
    sent: list[bytes] = []
    metering.commands_dispatch(publish=lambda serial, payload: sent.append(payload), now=now)
    return [json.loads(payload) for payload in sent]


def acknowledge(meter: Meter, command: MeterCommand, now: dt.datetime) -> None:
    metering.acks_apply(
        acks=[Ack(serial=meter.serial, command_id=command.uuid, status="ok", relay="off", at=now)]
    )


def switched_on_by_hand(meter: Meter, now: dt.datetime) -> None:
    """The meter reports its relay on (its status, published at every relay change)."""
    metering.statuses_apply(
        statuses=[Status(serial=meter.serial, online=True, relay="on")], now=now
    )


def commands_sent(page: str) -> str:
    """The meter's count of disconnect commands on a disconnection's page."""
    found = re.search(r'class="field-cut_commands">\s*<p>(\d+)</p>', page)
    assert found is not None
    return found.group(1)


def cut_row(invoice) -> DisconnectionMeter:
    return DisconnectionMeter.objects.select_related("cut_command").get(
        disconnection__site=invoice.site
    )


@pytest.mark.parametrize(
    "back_at",
    [at(FRIDAY, "18:00"), at(SATURDAY, "10:00")],
    ids=["friday-evening", "saturday"],
)
def test_a_meter_offline_at_the_cut_and_back_after_the_window_is_cut_on_the_next_allowed_day(
    residential, back_at
):
    invoice = overdue_invoice(due=FRIDAY_DUE)
    meter = site_meter(invoice.site)
    online, gone = at(FRIDAY_DUE, "08:00"), at(FRIDAY_DUE, "08:30")
    metering.statuses_apply(
        statuses=[Status(serial=meter.serial, online=True, relay="on")], now=online
    )
    metering.statuses_apply(statuses=[Status(serial=meter.serial, online=False)], now=gone)
    walk(0, 14, due=FRIDAY_DUE)

    # Friday 09:00: the cut is decided; its command lives until the cut-off hour, 15:00.
    first = cut_row(invoice).cut_command
    assert first.expires_at == at(FRIDAY, "15:00")
    [payload] = dispatch(at(FRIDAY, "09:00:30"))  # into the void: the meter is away
    assert (payload["action"], payload["expires_at"]) == ("disconnect", "2027-02-19T14:00:00Z")

    # The meter comes back after the window: the re-send does not go, the command expires.
    assert metering.statuses_apply(
        statuses=[Status(serial=meter.serial, online=True, relay="on")], now=back_at
    ).came_back
    assert dispatch(back_at) == []
    first.refresh_from_db()
    assert first.status == MeterCommand.Status.EXPIRED
    # Reconciliation sees a meter wanted off and reporting on: it waits too, no alarm.
    for minutes in range(0, 20, 5):
        assert metering.meters_reconcile(now=back_at + dt.timedelta(minutes=minutes)).commands == 0
    assert not MeterAlarm.objects.filter(meter=meter, kind=MeterAlarm.Kind.DISAGREEMENT).exists()
    assert MeterCommand.objects.filter(meter=meter).count() == 1
    # The weekend's passes send nothing either; the record says the cut is still to come.
    for quiet in (SATURDAY, SATURDAY + dt.timedelta(days=1)):
        assert dunning_run(as_of=quiet).cuts_resent == 0
    row = cut_row(invoice)
    assert (row.cut_command, row.cut_commands) == (first, 1)
    meter.refresh_from_db()
    assert (meter.relay_wanted, meter.relay_reported) == (Relay.OFF, Relay.ON)

    # Monday's pass, inside Monday's window, sends a new command; the meter applies it.
    monday = dunning_run(as_of=MONDAY)

    assert monday.cuts_resent == 1
    row = cut_row(invoice)
    again = row.cut_command
    assert row.cut_commands == 2
    assert (again.action, again.status, again.expires_at) == (
        MeterCommand.Action.DISCONNECT,
        MeterCommand.Status.QUEUED,
        at(MONDAY, "15:00"),
    )
    assert [payload["id"] for payload in dispatch(at(MONDAY, "09:00:10"))] == [str(again.uuid)]
    acknowledge(meter, again, at(MONDAY, "09:00:12"))
    assert site_meter(invoice.site).relay_reported == Relay.OFF
    assert dunning_run(as_of=MONDAY + dt.timedelta(days=1)).cuts_resent == 0
    # One episode, one disconnection step, one message: the cut was late, not repeated.
    assert open_episode(invoice.site) == row.disconnection
    assert Reminder.objects.filter(invoice=invoice, step__action=Action.DISCONNECT).count() == 1
    assert len(sms(invoice, "disconnection")) == 1


@pytest.mark.parametrize(
    ("moment", "commands"),
    [("09:30", 1), ("14:59", 1), ("15:00", 0), ("20:00", 0)],
)
def test_reconciliation_switches_a_meter_off_for_dunning_inside_the_window_only(
    residential, moment, commands
):
    invoice = overdue_invoice()  # cut on Monday 15 February at 09:00
    meter = site_meter(invoice.site)
    walk(0, 14)
    cut = cut_row(invoice).cut_command
    acknowledge(meter, cut, at(day(14), "09:01"))
    switched_on_by_hand(meter, at(day(14), "09:10"))  # a neighbour bypasses the cut

    report = metering.meters_reconcile(now=at(day(14), moment))

    assert report.commands == commands
    issued = MeterCommand.objects.filter(meter=meter).exclude(pk=cut.pk)
    if commands:
        command = issued.get()
        assert (command.action, command.source, command.expires_at) == (
            MeterCommand.Action.DISCONNECT,
            MeterCommand.Source.RECONCILIATION,
            at(day(14), "15:00"),
        )
    else:
        assert not issued.exists()
        assert Meter.objects.get(pk=meter.pk).disagreements == 0


def test_a_meter_switched_on_after_the_window_is_cut_again_by_the_next_days_pass(residential):
    invoice = overdue_invoice()
    meter = site_meter(invoice.site)
    walk(0, 14)
    acknowledge(meter, cut_row(invoice).cut_command, at(day(14), "09:01"))
    switched_on_by_hand(meter, at(day(14), "09:10"))
    assert metering.meters_reconcile(now=at(day(14), "19:00")).commands == 0

    assert dunning_run(as_of=day(15)).cuts_resent == 1

    row = cut_row(invoice)
    assert (row.cut_commands, row.cut_command.expires_at) == (2, at(day(15), "15:00"))
    # The pass run again that day sends nothing more: the command is on its way.
    assert dunning_run(as_of=day(15)).cuts_resent == 0
    assert MeterCommand.objects.filter(meter=meter).count() == 2


def test_a_pass_after_the_cutoff_hour_sends_nothing_and_the_next_morning_does(residential):
    invoice = overdue_invoice()
    meter = site_meter(invoice.site)
    walk(0, 14)
    acknowledge(meter, cut_row(invoice).cut_command, at(day(14), "09:01"))
    switched_on_by_hand(meter, at(day(14), "09:10"))

    assert dunning_run(as_of=day(15), now=at(day(15), "16:00")).cuts_resent == 0
    assert dunning_run(as_of=day(16), now=at(day(16), "08:00")).cuts_resent == 1


def test_a_reconnection_never_waits_for_a_window(residential):
    invoice = overdue_invoice(due=FRIDAY_DUE)
    meter = site_meter(invoice.site)
    walk(0, 14, due=FRIDAY_DUE)
    acknowledge(meter, cut_row(invoice).cut_command, at(FRIDAY, "09:01"))

    # Paid (here, credited) after the window: switched on at once, with no deadline.
    billing.credit_note_issue(invoice_id=invoice.pk, reason="Erreur de relevé", actor=None)
    [episode] = overdue_cleared_check(client_id=invoice.client_id)

    restore = episode.meters.get().restore_command
    meter.refresh_from_db()
    assert (meter.relay_wanted, meter.relay_deadline) == (Relay.ON, None)
    assert restore.action == MeterCommand.Action.CONNECT
    assert restore.expires_at - restore.issued_at == metering.COMMAND_LIFETIME
    sent: list[bytes] = []
    metering.commands_dispatch(publish=lambda serial, payload: sent.append(payload))
    assert [json.loads(payload)["id"] for payload in sent] == [str(restore.uuid)]
    # Had it been lost, reconciliation would send another on a Saturday evening too.
    MeterCommand.objects.filter(pk=restore.pk).update(status=MeterCommand.Status.EXPIRED)
    assert metering.meters_reconcile(now=at(SATURDAY, "22:00")).commands == 1


def test_the_disconnection_page_says_what_became_of_a_cut_that_missed_its_window(
    client, residential
):
    invoice = overdue_invoice()
    walk(0, 14)
    episode = open_episode(invoice.site)
    url = reverse("admin:dunning_disconnection_change", args=[episode.pk])
    client.force_login(EmployeeFactory(role=Role.ADMINISTRATOR))
    dispatch(at(day(14), "16:00"))  # the meter never answered: the command expired

    waiting = client.get(url).content.decode()
    dunning_run(as_of=day(15))
    sent_again = client.get(url).content.decode()

    assert "<p>Expirée : renvoyée le prochain jour autorisé</p>" in waiting
    assert commands_sent(waiting) == "1"
    assert "<p>En attente</p>" in sent_again
    assert commands_sent(sent_again) == "2"
