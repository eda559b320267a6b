"""The ladder walked day by day: reminders, final notice, disconnection, in order, once."""

import datetime as dt
from decimal import Decimal

import pytest

from mwolo.billing import services as billing
from mwolo.dunning.models import Action, Disconnection, DunningPolicy, DunningStep, Reminder
from mwolo.dunning.services import dunning_run
from mwolo.dunning.tests.factories import (
    DUE,
    NOVEMBER,
    billed_site,
    day,
    open_episode,
    overdue_invoice,
    site_meter,
    steps_taken,
)
from mwolo.metering.models import Meter, MeterCommand, Relay
from mwolo.notifications.models import Notification

pytestmark = pytest.mark.django_db

REMIND, NOTICE, CUT = Action.REMIND, Action.FINAL_NOTICE, Action.DISCONNECT
LADDER = [(3, REMIND), (7, REMIND), (12, NOTICE), (14, CUT)]


def walk(first: int, last: int, due: dt.date = DUE, **options: object) -> None:
    """Run the daily pass every day from ``due + first`` to ``due + last``."""
    for offset in range(first, last + 1):
        dunning_run(as_of=day(offset, due), **options)


def sms(invoice_or_client, event: str) -> list[str]:
    client_id = getattr(invoice_or_client, "client_id", None) or invoice_or_client.pk
    return list(
        Notification.objects.filter(client_id=client_id, event=event, channel="sms")
        .order_by("pk")
        .values_list("body", flat=True)
    )


def test_the_ladder_reminds_on_d3_and_d7_warns_on_d12_and_cuts_on_d14(residential):
    invoice = overdue_invoice()

    walk(0, 14)

    assert steps_taken(invoice) == LADDER
    assert sms(invoice, "reminder") == [
        f"Mwolo Energy: rappel. La facture {invoice.number} de 24 940,00 CDF est impayée "
        f"depuis {days} jours. Payez vite pour éviter une coupure."
        for days in (3, 7)
    ]
    assert sms(invoice, "final_notice") == [
        f"Mwolo Energy: DERNIER AVIS. Sans paiement de 24 940,00 CDF (facture "
        f"{invoice.number}) avant le 15/02/2027, le courant sera coupé."
    ]
    episode = Disconnection.objects.get()
    assert (episode.site_id, episode.opened_on, episode.amount_due) == (
        invoice.site_id,
        day(14),
        Decimal("24940.00"),
    )
    meter = site_meter(invoice.site)
    assert (meter.relay_wanted, meter.relay_wanted_reason) == (Relay.OFF, "dunning")
    command = MeterCommand.objects.get(meter=meter)
    assert (command.action, command.source, command.status) == ("disconnect", "dunning", "queued")
    assert episode.meters.get().cut_command == command
    [cut_sms] = sms(invoice, "disconnection")
    assert cut_sms.startswith(
        f"Mwolo Energy: le courant du site {invoice.site.reference} est coupé pour un impayé "
        "de 24 940,00 CDF."
    )

    # The meter never answers: each next working day's pass sends the cut again, for
    # that day's window only, and tells the client nothing more.
    messages = Notification.objects.count()
    assert [dunning_run(as_of=day(offset)).cuts_resent for offset in (15, 16)] == [1, 1]
    commands = list(MeterCommand.objects.filter(meter=meter).order_by("pk"))
    assert [(c.action, c.status) for c in commands] == [
        ("disconnect", "superseded"),
        ("disconnect", "superseded"),
        ("disconnect", "queued"),
    ]
    assert [c.expires_at.date() for c in commands] == [day(14), day(15), day(16)]
    cut = episode.meters.get()
    assert (cut.cut_command, cut.cut_commands) == (commands[-1], 3)
    assert Notification.objects.count() == messages
    assert steps_taken(invoice) == LADDER


def test_the_same_day_twice_sends_nothing_twice(residential):
    invoice = overdue_invoice()
    walk(0, 13)

    first = dunning_run(as_of=day(14))
    counts = (Reminder.objects.count(), Notification.objects.count(), MeterCommand.objects.count())
    again = dunning_run(as_of=day(14))

    assert (first.disconnections, again.disconnections) == (1, 0)
    assert (again.reminders, again.final_notices, again.messages) == (0, 0, 0)
    assert counts == (
        Reminder.objects.count(),
        Notification.objects.count(),
        MeterCommand.objects.count(),
    )
    assert steps_taken(invoice) == LADDER


def test_a_policy_of_zero_gaps_still_takes_one_step_a_day_run_as_often_as_you_like(residential):
    # Gaps of 0 days, as a policy could be saved before they were refused: the pass itself
    # holds each invoice to one step a day, and never cuts on the final notice's day.
    DunningStep.objects.update(min_days_after_previous=0)
    invoice = overdue_invoice()  # found late: Monday 22 February is D+21

    for offset in (21, 22, 23, 24):
        first = dunning_run(as_of=day(offset))
        counts = (Notification.objects.count(), MeterCommand.objects.count())
        for _ in range(3):
            again = dunning_run(as_of=day(offset))
            assert (again.reminders, again.final_notices, again.disconnections) == (0, 0, 0)
            assert again.messages == 0
        assert (Notification.objects.count(), MeterCommand.objects.count()) == counts
        assert first.reminders + first.final_notices + first.disconnections == 1
    dunning_run(as_of=day(22))  # an earlier day run again takes nothing either

    assert steps_taken(invoice) == [(21, REMIND), (22, REMIND), (23, NOTICE), (24, CUT)]
    assert len(sms(invoice, "reminder")) == 2
    assert sms(invoice, "final_notice") == [
        f"Mwolo Energy: DERNIER AVIS. Sans paiement de 24 940,00 CDF (facture "
        f"{invoice.number}) avant le 25/02/2027, le courant sera coupé."
    ]
    assert len(sms(invoice, "disconnection")) == 1
    assert MeterCommand.objects.filter(meter=site_meter(invoice.site)).count() == 1


def test_a_late_start_walks_the_ladder_in_order_never_jumping_to_the_cut(residential):
    due = dt.date(2027, 2, 3)  # a Wednesday: D+26 is Monday 1 March
    invoice = overdue_invoice(due=due)

    walk(20, 30, due=due)

    # Found 20 days late: the first reminder at once, then each step two days apart.
    assert steps_taken(invoice) == [(20, REMIND), (22, REMIND), (24, NOTICE), (26, CUT)]
    assert sms(invoice, "final_notice")[0].endswith("avant le 01/03/2027, le courant sera coupé.")


def test_a_second_overdue_invoice_of_a_cut_site_joins_the_open_episode(residential):
    site = billed_site()
    october = overdue_invoice(site=site, due=DUE)
    november = overdue_invoice(site=site, period=NOVEMBER, due=day(14))
    walk(0, 14)
    assert open_episode(site) is not None

    walk(15, 28)

    assert steps_taken(november) == [(3, REMIND), (7, REMIND), (12, NOTICE), (14, CUT)]
    assert Disconnection.objects.count() == 1
    assert set(
        Reminder.objects.filter(step__action=CUT).values_list("invoice", "disconnection")
    ) == {
        (october.pk, open_episode(site).pk),
        (november.pk, open_episode(site).pk),
    }
    assert len(sms(october, "disconnection")) == 1
    # The disconnection message counts everything overdue then.
    assert Disconnection.objects.get().amount_due == Decimal("24940.00")


def test_nothing_happens_before_the_due_date_or_for_paid_or_cancelled_invoices(residential):
    pending = overdue_invoice(due=day(10))
    cancelled = overdue_invoice()
    billing.credit_note_issue(invoice_id=cancelled.pk, reason="Erreur de relevé", actor=None)

    report = dunning_run(as_of=day(5))

    assert report.invoices == 0
    assert not Reminder.objects.exists()
    assert steps_taken(pending) == []


def test_a_staff_cut_meter_is_not_taken_over_and_the_step_waits(residential):
    invoice = overdue_invoice()
    meter = site_meter(invoice.site)
    Meter.objects.filter(pk=meter.pk).update(relay_wanted=Relay.OFF, relay_wanted_reason="staff")
    walk(0, 13)

    report = dunning_run(as_of=day(14))

    assert (report.disconnections, report.waiting_no_meter) == (0, 1)
    assert not Disconnection.objects.exists()
    assert not MeterCommand.objects.filter(meter=meter).exists()
    assert steps_taken(invoice) == LADDER[:3]


def test_the_policy_of_an_agency_and_category_wins(residential):
    invoice = overdue_invoice()
    policy = DunningPolicy.objects.create(
        name="Gombe, résidentiel", agency=invoice.agency, site_category="residential"
    )
    policy.steps.create(position=1, days_after_due=1, action=REMIND)

    walk(0, 20)

    assert steps_taken(invoice) == [(1, REMIND)]
