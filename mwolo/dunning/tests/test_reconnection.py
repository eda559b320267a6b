"""Reconnection: when nothing is overdue any more, and by hand with a reason."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.billing import services as billing
from mwolo.billing.models import Invoice
from mwolo.billing.selectors import invoices_open_amounts
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.dunning.models import Disconnection, Reminder
from mwolo.dunning.services import (
    disconnection_reconnect,
    dunning_run,
    overdue_cleared_check,
    overdue_cleared_on_commit,
)
from mwolo.dunning.tests.factories import (
    NOVEMBER,
    billed_site,
    day,
    open_episode,
    overdue_invoice,
    site_meter,
    steps_taken,
)
from mwolo.dunning.tests.test_ladder import LADDER, sms, walk
from mwolo.metering.models import Meter, MeterCommand, Relay
from mwolo.notifications.models import MessageTemplate, Notification
from mwolo.payments import services as payments
from mwolo.payments.tests.factories import cashier_of

pytestmark = pytest.mark.django_db

D = Decimal
# Cut on Monday 16 November 2026, before today: the checks run as of today.
DUE = dt.date(2026, 11, 2)


@pytest.fixture
def cut(residential):
    invoice = overdue_invoice(due=DUE)
    walk(0, 14, due=DUE)
    assert open_episode(invoice.site) is not None
    return invoice


def test_a_credit_note_clearing_the_balance_reconnects_the_site(cut):
    billing.credit_note_issue(invoice_id=cut.pk, reason="Compteur défectueux", actor=None)

    [episode] = overdue_cleared_check(client_id=cut.client_id)

    assert (episode.closed_reason, episode.site_id) == (
        Disconnection.ClosedReason.CLEARED,
        cut.site_id,
    )
    meter = site_meter(cut.site)
    assert (meter.relay_wanted, meter.relay_wanted_reason) == (Relay.ON, "normal")
    connect = MeterCommand.objects.get(meter=meter, action="connect")
    assert (connect.source, connect.status) == ("dunning", "queued")
    assert episode.meters.get().restore_command == connect
    # The disconnect command still on its way was superseded by the connect.
    assert MeterCommand.objects.get(meter=meter, action="disconnect").status == "superseded"
    assert sms(cut, "reconnection") == [
        f"Mwolo Energy: merci pour votre paiement. Le courant du site {cut.site.reference} "
        f"est rétabli. Un souci? Appelez le {cut.agency.phone.as_international}"
    ]


def test_the_check_is_idempotent_and_does_nothing_while_something_is_overdue(cut):
    assert overdue_cleared_check(client_id=cut.client_id) == []

    billing.credit_note_issue(invoice_id=cut.pk, reason="Erreur", actor=None, amount=D("20000"))
    assert overdue_cleared_check(client_id=cut.client_id) == []  # 4 940 CDF still overdue
    assert open_episode(cut.site) is not None

    billing.credit_note_issue(invoice_id=cut.pk, reason="Solde", actor=None)
    assert len(overdue_cleared_check(client_id=cut.client_id)) == 1
    assert overdue_cleared_check(client_id=cut.client_id) == []
    assert MeterCommand.objects.filter(action="connect").count() == 1
    assert len(sms(cut, "reconnection")) == 1


def test_an_invoice_not_yet_due_does_not_keep_the_site_cut(cut):
    overdue_invoice(site=cut.site, period=NOVEMBER, due=dt.date(2099, 1, 1))
    billing.credit_note_issue(invoice_id=cut.pk, reason="Erreur", actor=None)

    assert len(overdue_cleared_check(client_id=cut.client_id)) == 1


def test_a_credit_note_reconnects_once_committed_through_the_hook_billing_calls(
    cut, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        billing.credit_note_issue(invoice_id=cut.pk, reason="Compteur défectueux", actor=None)
        overdue_cleared_on_commit(client_id=cut.client_id)
        assert open_episode(cut.site) is not None  # not before the commit

    assert open_episode(cut.site) is None
    assert len(sms(cut, "reconnection")) == 1


def test_the_hook_in_a_rolled_back_transaction_reconnects_nothing(
    cut, django_capture_on_commit_callbacks
):
    def credit_then_fail() -> None:
        with transaction.atomic():
            billing.credit_note_issue(invoice_id=cut.pk, reason="Erreur", actor=None)
            overdue_cleared_on_commit(client_id=cut.client_id)
            raise RuntimeError("the caller fails after the credit note")

    with (
        django_capture_on_commit_callbacks(execute=True) as queued,
        pytest.raises(RuntimeError),
    ):
        credit_then_fail()

    assert queued == []
    assert open_episode(cut.site) is not None
    assert not MeterCommand.objects.filter(action="connect").exists()
    assert sms(cut, "reconnection") == []


def test_a_payment_of_a_client_nobody_cut_queues_no_check(
    residential, django_capture_on_commit_callbacks, django_assert_num_queries
):
    invoice = overdue_invoice(due=DUE)

    with (
        django_capture_on_commit_callbacks() as queued,
        transaction.atomic(),
        django_assert_num_queries(1),
    ):
        overdue_cleared_on_commit(client_id=invoice.client_id)

    assert queued == []


def test_the_daily_pass_reconnects_what_a_credit_note_cleared(cut):
    billing.credit_note_issue(invoice_id=cut.pk, reason="Compteur défectueux", actor=None)

    report = dunning_run(as_of=day(15, DUE))

    assert report.reconnections == 1
    assert open_episode(cut.site) is None


def test_a_client_with_no_disconnection_costs_two_queries(residential, django_assert_num_queries):
    invoice = overdue_invoice()
    with django_assert_num_queries(4):  # the client locked, its open episodes; a savepoint
        assert overdue_cleared_check(client_id=invoice.client_id) == []


def test_a_meter_a_person_turned_off_since_stays_off(cut):
    meter = site_meter(cut.site)
    Meter.objects.filter(pk=meter.pk).update(relay_wanted_reason=Meter.RelayReason.STAFF)
    billing.credit_note_issue(invoice_id=cut.pk, reason="Erreur", actor=None)

    [episode] = overdue_cleared_check(client_id=cut.client_id)

    assert episode.meters.get().restore_command is None
    assert site_meter(cut.site).relay_wanted == Relay.OFF
    assert not MeterCommand.objects.filter(action="connect").exists()


# --- By hand -------------------------------------------------------------------------------


def test_staff_reconnect_with_a_reason_kept_on_the_record_and_in_the_audit_trail(cut):
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=cut.agency)
    episode = open_episode(cut.site)

    closed = disconnection_reconnect(
        disconnection_id=episode.pk, reason="Patient sous oxygène à domicile", actor=manager
    )

    assert (closed.closed_reason, closed.closed_by, closed.close_note) == (
        Disconnection.ClosedReason.OVERRIDE,
        manager,
        "Patient sous oxygène à domicile",
    )
    connect = MeterCommand.objects.get(action="connect")
    assert connect.reason.startswith("Décision du personnel : Patient sous oxygène")
    assert connect.source == MeterCommand.Source.STAFF
    entry = LogEntry.objects.get_for_object(closed).get()
    assert entry.changes_dict["close_note"] == ["", "Patient sous oxygène à domicile"]
    # The invoice's disconnection step stays taken: the next passes leave the site on.
    walk(15, 20, due=DUE)
    assert open_episode(cut.site) is None


def test_a_reconnection_without_reason_writes_nothing(cut):
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=cut.agency)
    episode = open_episode(cut.site)

    with pytest.raises(ValidationError) as refused:
        disconnection_reconnect(disconnection_id=episode.pk, reason="  ", actor=manager)

    assert refused.value.message_dict == {"reason": ["Indiquez le motif."]}
    assert open_episode(cut.site) == episode
    assert not MeterCommand.objects.filter(action="connect").exists()


def test_only_staff_with_the_override_permission_and_the_agency_may_reconnect(cut):
    episode = open_episode(cut.site)
    cashier = EmployeeFactory(role=Role.CASHIER, agency=cut.agency)
    elsewhere = EmployeeFactory(role=Role.BILLING_AGENT)

    with pytest.raises(PermissionDenied):
        disconnection_reconnect(disconnection_id=episode.pk, reason="x", actor=cashier)
    with pytest.raises(ApplicationError) as missing:
        disconnection_reconnect(disconnection_id=episode.pk, reason="x", actor=elsewhere)

    assert missing.value.status == 404
    assert open_episode(cut.site) == episode


def test_a_site_reconnected_already_cannot_be_again(cut):
    manager = EmployeeFactory(role=Role.BILLING_AGENT, agency=cut.agency)
    episode = open_episode(cut.site)
    disconnection_reconnect(disconnection_id=episode.pk, reason="Erreur", actor=manager)

    with pytest.raises(ApplicationError) as refused:
        disconnection_reconnect(disconnection_id=episode.pk, reason="Encore", actor=manager)

    assert refused.value.message == "Ce site est déjà rétabli."


def test_two_sites_of_a_client_cut_are_both_reconnected(residential):
    first = overdue_invoice(due=DUE)
    second_site = billed_site()
    type(second_site).objects.filter(pk=second_site.pk).update(client=first.client)
    second_site.refresh_from_db()
    second = overdue_invoice(site=second_site, due=DUE)
    walk(0, 14, due=DUE)
    assert Disconnection.objects.filter(closed_at=None).count() == 2

    for invoice in (first, second):
        billing.credit_note_issue(invoice_id=invoice.pk, reason="Erreur", actor=None)

    assert len(overdue_cleared_check(client_id=first.client_id)) == 2
    assert not Disconnection.objects.filter(closed_at=None).exists()


# --- Payments ------------------------------------------------------------------------------


def pay_cash(invoice, amount: str, on_commit) -> None:
    """``amount`` CDF in cash at a till of the invoice's agency, and what runs after the
    commit (the receipt, the reconnection check)."""
    cashier = cashier_of(invoice.agency)
    payments.cash_session_open(
        cashier=cashier, agency_id=invoice.agency_id, opening_cdf=D(0), opening_usd=D(0)
    )
    with on_commit(execute=True):
        payments.payment_record_cash(
            cashier=cashier, client_id=invoice.client_id, amount=D(amount), currency="CDF"
        )


def test_a_partial_payment_lowers_the_next_reminder_and_the_site_stays_cut_until_cleared(
    residential, django_capture_on_commit_callbacks
):
    invoice = overdue_invoice(due=DUE)
    walk(0, 3, due=DUE)
    pay_cash(invoice, "10000", django_capture_on_commit_callbacks)

    walk(4, 14, due=DUE)

    # Every step after the payment asks for what is left: 24 940 - 10 000.
    assert steps_taken(invoice) == LADDER
    assert list(
        Reminder.objects.filter(invoice=invoice).order_by("sent_on").values_list("amount_due")
    ) == [(D("24940.00"),), (D("14940.00"),), (D("14940.00"),), (D("14940.00"),)]
    assert sms(invoice, "reminder") == [
        f"Mwolo Energy: rappel. La facture {invoice.number} de {amount} CDF est impayée "
        f"depuis {days} jours. Payez vite pour éviter une coupure."
        for amount, days in (("24 940,00", 3), ("14 940,00", 7))
    ]
    assert (
        f"Sans paiement de 14 940,00 CDF (facture {invoice.number})"
        in (sms(invoice, "final_notice")[0])
    )
    episode = open_episode(invoice.site)
    assert episode.amount_due == D("14940.00")
    assert "pour un impayé de 14 940,00 CDF" in sms(invoice, "disconnection")[0]

    # Another part paid: 4 940 still overdue, the site stays cut, today and at the next pass.
    pay_cash(invoice, "10000", django_capture_on_commit_callbacks)
    dunning_run(as_of=day(15, DUE))

    assert invoices_open_amounts(invoice_ids=[invoice.pk]) == {invoice.pk: D("4940.00")}
    assert open_episode(invoice.site) == episode
    assert site_meter(invoice.site).relay_wanted == Relay.OFF
    assert not MeterCommand.objects.filter(action="connect").exists()
    assert sms(invoice, "reconnection") == []

    # The rest: reconnected at once, without waiting for the next pass.
    pay_cash(invoice, "4940", django_capture_on_commit_callbacks)

    episode.refresh_from_db()
    assert episode.closed_reason == Disconnection.ClosedReason.CLEARED
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    meter = site_meter(invoice.site)
    assert (meter.relay_wanted, meter.relay_wanted_reason) == (Relay.ON, "normal")
    assert episode.meters.get().restore_command.action == "connect"
    assert len(sms(invoice, "reconnection")) == 1
    receipts = sms(invoice, "payment_receipt")
    assert [text.split("Reste à payer: ")[1] for text in receipts] == [
        "14 940,00 CDF. Merci!",
        "4 940,00 CDF. Merci!",
        "0,00 CDF. Merci!",
    ]


def test_a_payment_reconnects_even_when_its_receipt_cannot_be_sent(
    cut, django_capture_on_commit_callbacks
):
    # No receipt template any more: the receipt task fails on every attempt.
    MessageTemplate.objects.filter(event="payment_receipt").delete()

    pay_cash(cut, "24940", django_capture_on_commit_callbacks)

    episode = Disconnection.objects.get(site=cut.site)
    assert episode.closed_reason == Disconnection.ClosedReason.CLEARED
    assert site_meter(cut.site).relay_wanted == Relay.ON
    connect = MeterCommand.objects.get(action="connect")
    assert connect.source == MeterCommand.Source.PAYMENT  # what caused it, on the command
    assert len(sms(cut, "reconnection")) == 1
    assert not Notification.objects.filter(event="payment_receipt").exists()


# --- Credit notes (billing calls dunning's hook) -------------------------------------------


def test_a_credit_note_that_clears_the_balance_reconnects_at_once(
    cut, django_capture_on_commit_callbacks
):
    # No daily pass, no explicit check: issuing the credit note is enough.
    with django_capture_on_commit_callbacks(execute=True):
        billing.credit_note_issue(invoice_id=cut.pk, reason="Compteur défectueux", actor=None)

    episode = Disconnection.objects.get(site=cut.site)
    assert episode.closed_reason == Disconnection.ClosedReason.CLEARED
    meter = site_meter(cut.site)
    assert (meter.relay_wanted, meter.relay_wanted_reason) == (Relay.ON, "normal")
    assert episode.meters.get().restore_command.action == "connect"
    assert len(sms(cut, "reconnection")) == 1


def test_a_credit_note_that_leaves_something_overdue_reconnects_nothing(
    cut, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        billing.credit_note_issue(
            invoice_id=cut.pk, reason="Geste commercial", actor=None, amount=D("20000")
        )

    assert open_episode(cut.site) is not None  # 4 940 CDF still overdue
    assert not MeterCommand.objects.filter(action="connect").exists()
    assert sms(cut, "reconnection") == []
