"""What holds the ladder back: exemptions, quiet days, promises, small amounts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.billing import services as billing
from mwolo.billing.tests.factories import KINSHASA
from mwolo.core import clock
from mwolo.core.permissions import Role
from mwolo.crm.models import SiteCategory
from mwolo.dunning.models import (
    Action,
    Disconnection,
    DunningExemption,
    DunningPolicy,
    PromiseToPay,
    Reminder,
)
from mwolo.dunning.services import (
    dunning_exemption_end,
    dunning_exemption_grant,
    dunning_run,
    promise_to_pay_record,
)
from mwolo.dunning.tests.factories import (
    DUE,
    billed_site,
    day,
    first_day_to_cut,
    monday_to_come,
    open_episode,
    overdue_invoice,
    site_meter,
    steps_taken,
)
from mwolo.dunning.tests.test_ladder import LADDER, sms, walk
from mwolo.metering.models import MeterCommand, Relay

pytestmark = pytest.mark.django_db

REMIND, NOTICE, CUT = Action.REMIND, Action.FINAL_NOTICE, Action.DISCONNECT
REMINDERS_ONLY = [(3, REMIND), (7, REMIND)]
D = Decimal


# --- Exemptions ----------------------------------------------------------------------------


def test_an_essential_site_is_reminded_but_never_warned_nor_cut(residential):
    invoice = overdue_invoice()
    dunning_exemption_grant(
        client_id=invoice.client_id,
        site_id=invoice.site_id,
        effect=DunningExemption.Effect.NO_DISCONNECTION,
        reason="Centre de santé",
        actor=None,
        starts_on=DUE,
    )

    walk(0, 40)

    assert steps_taken(invoice) == REMINDERS_ONLY
    assert not Disconnection.objects.exists()


def test_a_staff_exemption_ends_on_its_day_and_the_ladder_resumes_in_order(residential):
    due = monday_to_come()  # staff may not grant an exemption ending in the past
    invoice = overdue_invoice(due=due)
    exemption = dunning_exemption_grant(
        client_id=invoice.client_id,
        effect=DunningExemption.Effect.NO_DISCONNECTION,
        reason="Litige sur le relevé en cours d'examen",
        actor=None,
        starts_on=due,
        ends_on=day(20, due),
    )
    assert exemption.site is None
    cut_on = first_day_to_cut(day(23, due))

    walk(0, (cut_on - due).days + 2, due=due)

    # Held back at D+12 and D+14; the final notice the day after the end, then the cut.
    assert steps_taken(invoice) == [
        (3, REMIND),
        (7, REMIND),
        (21, NOTICE),
        ((cut_on - due).days, CUT),
    ]


def test_public_services_follow_their_own_policy_without_disconnection(public_tariff):
    invoice = overdue_invoice(category=SiteCategory.PUBLIC)

    walk(0, 30)

    assert steps_taken(invoice) == [(3, REMIND), (7, REMIND), (14, REMIND)]
    assert not Disconnection.objects.exists()


def test_a_hold_stops_everything_until_its_last_day(residential):
    due = monday_to_come()  # staff may not grant a hold ending in the past
    invoice = overdue_invoice(due=due)
    dunning_exemption_grant(
        client_id=invoice.client_id,
        effect=DunningExemption.Effect.HOLD,
        reason="Réclamation en cours",
        actor=None,
        starts_on=due,
        ends_on=day(9, due),
    )

    walk(0, 12, due=due)

    assert steps_taken(invoice) == [(10, REMIND), (12, REMIND)]


def test_granting_an_exemption_reconnects_a_site_dunning_cut(residential):
    invoice = overdue_invoice(due=dt.date(2026, 11, 2))
    walk(0, 14, due=invoice.due_date)
    assert open_episode(invoice.site)

    dunning_exemption_grant(
        client_id=invoice.client_id,
        site_id=invoice.site_id,
        effect=DunningExemption.Effect.NO_DISCONNECTION,
        reason="Pompage d'eau potable",
        actor=None,
    )

    episode = Disconnection.objects.get()
    assert episode.closed_reason == Disconnection.ClosedReason.EXEMPTION
    assert site_meter(invoice.site).relay_wanted == Relay.ON


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"effect": "hold", "ends_on": None}, "ends_on"),
        ({"ends_on": dt.date(2026, 1, 1)}, "ends_on"),
        ({"reason": "  "}, "reason"),
        ({"effect": "forever"}, "effect"),
    ],
)
def test_a_wrong_exemption_is_refused_and_nothing_is_written(residential, options, field):
    invoice = overdue_invoice()
    arguments = {
        "client_id": invoice.client_id,
        "effect": DunningExemption.Effect.NO_DISCONNECTION,
        "reason": "Hôpital",
        "actor": None,
        **options,
    }

    with pytest.raises(ValidationError) as refused:
        dunning_exemption_grant(**arguments)

    assert field in refused.value.message_dict
    assert not DunningExemption.objects.exists()


def test_an_exemption_for_another_clients_site_is_refused(residential):
    invoice = overdue_invoice()
    other = billed_site()

    with pytest.raises(ValidationError) as refused:
        dunning_exemption_grant(
            client_id=invoice.client_id,
            site_id=other.pk,
            effect="no_disconnection",
            reason="Hôpital",
            actor=None,
        )

    assert refused.value.message_dict == {"site": ["Choisissez un site de ce client."]}


def test_ending_an_exemption_makes_today_its_last_day(residential):
    invoice = overdue_invoice()
    exemption = dunning_exemption_grant(
        client_id=invoice.client_id, effect="no_disconnection", reason="Hôpital", actor=None
    )

    ended = dunning_exemption_end(exemption_id=exemption.pk, actor=None)

    assert ended.ends_on == ended.starts_on


# --- Quiet days ----------------------------------------------------------------------------


def test_no_disconnection_on_a_saturday_but_reminders_still_go(residential):
    due = dt.date(2027, 2, 6)  # a Saturday: D+14 is Saturday 20 February
    cut = overdue_invoice(due=due)
    walk(0, 13, due=due)
    reminded = overdue_invoice(due=day(-3, dt.date(2027, 2, 20)))  # its D+3 is that Saturday

    saturday = dunning_run(as_of=dt.date(2027, 2, 20))
    sunday = dunning_run(as_of=dt.date(2027, 2, 21))
    monday = dunning_run(as_of=dt.date(2027, 2, 22))

    assert (saturday.waiting_quiet_day, saturday.reminders) == (1, 1)
    assert (sunday.waiting_quiet_day, sunday.disconnections) == (1, 0)
    assert monday.disconnections == 1
    assert steps_taken(cut)[-1] == (16, CUT)
    assert steps_taken(reminded) == [(3, REMIND)]


def test_no_disconnection_on_a_public_holiday(residential):
    due = dt.date(2027, 5, 3)  # D+14 is Monday 17 May, Liberation Day
    invoice = overdue_invoice(due=due)

    walk(0, 15, due=due)

    assert steps_taken(invoice)[-2:] == [(12, NOTICE), (15, CUT)]
    # The final notice already named the next working day.
    assert sms(invoice, "final_notice")[0].endswith("avant le 18/05/2027, le courant sera coupé.")


def test_no_disconnection_after_the_cutoff_hour_the_client_can_still_pay_today(residential):
    invoice = overdue_invoice()
    walk(0, 13)
    afternoon = dt.datetime.combine(day(14), dt.time(15, 30), tzinfo=KINSHASA)
    morning = dt.datetime.combine(day(14), dt.time(14, 59), tzinfo=KINSHASA)

    late = dunning_run(as_of=day(14), now=afternoon)
    assert (late.waiting_quiet_day, late.disconnections) == (1, 0)
    early = dunning_run(as_of=day(14), now=morning)

    assert early.disconnections == 1
    assert steps_taken(invoice) == LADDER


def test_a_policy_may_allow_weekend_disconnections(residential):
    DunningPolicy.objects.filter(agency=None, site_category="").update(
        quiet_weekends=False, disconnection_cutoff=None
    )
    due = dt.date(2027, 2, 6)
    invoice = overdue_invoice(due=due)

    walk(0, 14, due=due)

    assert steps_taken(invoice)[-1] == (14, CUT)


# --- Promises to pay -----------------------------------------------------------------------
# A promise is made from today (the real one) to at most 30 days ahead: these tests count
# from today, and let the policy cut any day and hour so that the weekday does not matter.


def _today() -> dt.date:
    return clock.today("Africa/Kinshasa")


def _any_day_any_hour() -> None:
    DunningPolicy.objects.filter(agency=None, site_category="").update(
        quiet_weekends=False, quiet_public_holidays=False, disconnection_cutoff=None
    )


def _promise(invoice, promised_on, whole_account=False):
    return promise_to_pay_record(
        client_id=invoice.client_id,
        invoice_id=None if whole_account else invoice.pk,
        currency="CDF",
        promised_on=promised_on,
        amount=D("24940"),
        reason="Salaire attendu le 10",
        actor=None,
    )


def test_a_promise_pauses_the_ladder_until_its_day_then_a_broken_one_resumes_it(residential):
    due = _today() + dt.timedelta(days=1)
    invoice = overdue_invoice(due=due)
    promise = _promise(invoice, promised_on=day(9, due))

    walk(0, 13, due=due)

    promise.refresh_from_db()
    assert (promise.status, promise.settled_on) == (PromiseToPay.Status.BROKEN, day(10, due))
    # Nothing until the day after the promise, then the steps in order, gaps kept.
    assert steps_taken(invoice) == [(10, REMIND), (12, REMIND)]


def test_a_kept_promise_leaves_nothing_to_chase(residential):
    due = _today() + dt.timedelta(days=1)
    invoice = overdue_invoice(due=due)
    promise = _promise(invoice, promised_on=day(9, due))
    billing.credit_note_issue(invoice_id=invoice.pk, reason="Réclamation fondée", actor=None)

    walk(0, 20, due=due)

    promise.refresh_from_db()
    assert promise.status == PromiseToPay.Status.KEPT
    assert steps_taken(invoice) == []


def test_granting_a_promise_reconnects_and_breaking_it_cuts_again(residential):
    _any_day_any_hour()
    due = _today() - dt.timedelta(days=16)
    invoice = overdue_invoice(due=due)
    walk(0, 14, due=due)
    first = open_episode(invoice.site)
    assert first is not None

    promise = _promise(invoice, promised_on=day(22, due), whole_account=True)

    first.refresh_from_db()
    assert (first.closed_reason, first.promise) == (Disconnection.ClosedReason.PROMISE, promise)
    meter = site_meter(invoice.site)
    assert meter.relay_wanted == Relay.ON
    assert MeterCommand.objects.filter(meter=meter, action="connect").exists()
    assert sms(invoice, "reconnection")

    dunning_run(as_of=day(22, due))  # still promised
    assert open_episode(invoice.site) is None
    dunning_run(as_of=day(23, due))  # broken: cut again

    again = open_episode(invoice.site)
    assert again is not None
    assert again.resumes == first
    assert site_meter(invoice.site).relay_wanted == Relay.OFF
    assert len(sms(invoice, "disconnection")) == 2
    dunning_run(as_of=day(24, due))
    assert Disconnection.objects.count() == 2


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"promised_on": dt.date(2026, 1, 1)}, "promised_on"),
        ({"promised_on": dt.date(2099, 6, 1)}, "promised_on"),
        ({"amount": D(0)}, "amount"),
        ({"reason": ""}, "reason"),
    ],
)
def test_a_wrong_promise_is_refused_and_nothing_is_written(residential, options, field):
    invoice = overdue_invoice()
    arguments = {
        "client_id": invoice.client_id,
        "invoice_id": invoice.pk,
        "promised_on": _today() + dt.timedelta(days=5),
        "amount": D(1000),
        "reason": "Salaire",
        "actor": None,
        **options,
    }

    with pytest.raises(ValidationError) as refused:
        promise_to_pay_record(**arguments)

    assert list(refused.value.message_dict) == [field]
    assert not PromiseToPay.objects.exists()


def test_a_promise_on_another_clients_invoice_is_refused(residential):
    invoice = overdue_invoice()
    other = overdue_invoice()

    with pytest.raises(ValidationError) as refused:
        promise_to_pay_record(
            client_id=invoice.client_id,
            invoice_id=other.pk,
            promised_on=_today() + dt.timedelta(days=5),
            amount=D(1000),
            reason="Salaire",
            actor=None,
        )

    assert refused.value.message_dict == {
        "invoice": ["Choisissez une facture impayée de ce client."]
    }


def test_staff_without_the_permission_cannot_record_a_promise(residential):
    invoice = overdue_invoice()
    cashier = EmployeeFactory(role=Role.CASHIER, agency=invoice.agency)

    with pytest.raises(PermissionDenied):
        promise_to_pay_record(
            client_id=invoice.client_id,
            invoice_id=invoice.pk,
            promised_on=_today() + dt.timedelta(days=5),
            amount=D(1000),
            reason="Salaire",
            actor=cashier,
        )

    assert not PromiseToPay.objects.exists()


# --- Amounts -------------------------------------------------------------------------------


def test_a_partly_credited_invoice_is_chased_for_what_is_left(residential):
    invoice = overdue_invoice()
    billing.credit_note_issue(
        invoice_id=invoice.pk, reason="Geste commercial", actor=None, amount=D("4940")
    )

    walk(0, 3)

    assert Reminder.objects.get().amount_due == D("20000.00")
    assert "de 20 000,00 CDF est impayée depuis 3 jours" in sms(invoice, "reminder")[0]


def test_below_the_minimum_nothing_is_sent(residential):
    DunningPolicy.objects.filter(agency=None, site_category="").update(minimum_cdf=D(5000))
    small = overdue_invoice()
    billing.credit_note_issue(
        invoice_id=small.pk, reason="Geste commercial", actor=None, amount=D("19940")
    )  # 5 000 left: not above the minimum
    large = overdue_invoice()

    report = dunning_run(as_of=day(3))

    assert (report.below_minimum, report.reminders) == (1, 1)
    assert steps_taken(small) == []
    assert steps_taken(large) == [(3, REMIND)]
