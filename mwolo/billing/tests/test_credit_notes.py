"""Credit notes, balances and statements: what a client owes comes from the entries, and
an invoice's status from what is left to pay on it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.billing import selectors, services
from mwolo.billing.models import AccountEntry, CreditNote, Invoice
from mwolo.billing.tests.factories import OCTOBER, local, metered_site, tariff
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.payments import services as payments
from mwolo.payments.tests.factories import cashier_of

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def issued():
    """An issued October invoice of 24 940 CDF (120 kWh)."""
    tariff()
    site = metered_site(readings=[(local("2026-09-30"), "1100"), (local("2026-10-31"), "1220")])
    services.invoices_draft(period=OCTOBER, site_ids=[site.pk])
    invoice = Invoice.objects.get()
    return services.invoice_issue(invoice_id=invoice.pk, actor=None)


def test_a_full_credit_note_cancels_the_invoice_and_clears_the_balance(issued):
    assert selectors.client_balances(client_id=issued.client_id) == {"CDF": D("24940.00")}

    note = services.credit_note_issue(invoice_id=issued.pk, reason="Relevé erroné", actor=None)

    year = clock.today("Africa/Kinshasa").year
    assert note.number == f"AV-{year}-000001"
    assert (note.total, note.vat_amount, note.subtotal) == (
        D("24940.00"),
        D("3440.00"),
        D("21500.00"),
    )
    assert Invoice.objects.get(pk=issued.pk).status == Invoice.Status.CANCELLED
    assert selectors.client_balances(client_id=issued.client_id) == {"CDF": D("0.00")}
    assert AccountEntry.objects.get(credit_note=note).amount == D("-24940.00")


def test_a_cancelled_month_can_be_billed_again(issued):
    services.credit_note_issue(invoice_id=issued.pk, reason="Relevé erroné", actor=None)

    report = services.invoices_draft(period=OCTOBER, site_ids=[issued.site_id])

    assert report.drafted == 1
    assert Invoice.objects.filter(site_id=issued.site_id, period=OCTOBER).count() == 2


def test_partial_credit_notes_up_to_the_total(issued):
    first = services.credit_note_issue(
        invoice_id=issued.pk, reason="Geste commercial", actor=None, amount=D("1160")
    )
    assert (first.subtotal, first.vat_amount) == (D("1000.00"), D("160.00"))
    assert Invoice.objects.get(pk=issued.pk).status == Invoice.Status.ISSUED
    assert selectors.invoices_open_amounts(invoice_ids=[issued.pk]) == {issued.pk: D("23780.00")}

    with pytest.raises(ValidationError) as refused:
        services.credit_note_issue(
            invoice_id=issued.pk, reason="Trop", actor=None, amount=D("23780.01")
        )
    assert refused.value.messages == [
        "Au plus 23\xa0780,00 CDF de cette facture peuvent être crédités."
    ]
    services.credit_note_issue(invoice_id=issued.pk, reason="Solde", actor=None, amount=D("23780"))
    assert Invoice.objects.get(pk=issued.pk).status == Invoice.Status.CANCELLED
    assert [n.number[-1] for n in CreditNote.objects.order_by("pk")] == ["1", "2"]


@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [
        (D(0), "x", "amount"),
        (D(-5), "x", "amount"),
        (D("NaN"), "x", "amount"),
        (D(10), " ", "reason"),
    ],
)
def test_a_bad_credit_note_is_refused_and_nothing_is_written(issued, amount, reason, field):
    with pytest.raises(ValidationError) as raised:
        services.credit_note_issue(invoice_id=issued.pk, reason=reason, actor=None, amount=amount)

    assert field in raised.value.message_dict
    assert not CreditNote.objects.exists()
    assert AccountEntry.objects.count() == 1


def test_drafts_and_cancelled_invoices_get_no_credit_note(issued):
    services.credit_note_issue(invoice_id=issued.pk, reason="Erreur", actor=None)
    with pytest.raises(ApplicationError, match="annulée"):
        services.credit_note_issue(invoice_id=issued.pk, reason="Encore", actor=None)
    services.invoices_draft(period=OCTOBER, site_ids=[issued.site_id])
    draft = Invoice.objects.get(status=Invoice.Status.DRAFT)
    with pytest.raises(ApplicationError, match="brouillon"):
        services.credit_note_issue(invoice_id=draft.pk, reason="Erreur", actor=None)
    assert CreditNote.objects.count() == 1


def test_the_statement_runs_the_balance_from_the_entries(issued):
    services.credit_note_issue(
        invoice_id=issued.pk, reason="Geste commercial", actor=None, amount=D("940")
    )
    today = clock.today("Africa/Kinshasa")

    statement = selectors.client_statement(
        client=issued.client, currency="CDF", start=today - dt.timedelta(days=30), end=today
    )

    assert statement.opening == 0
    assert [(line.kind, line.debit, line.credit, line.balance) for line in statement.lines] == [
        ("invoice", D("24940.00"), D(0), D("24940.00")),
        ("credit_note", D(0), D("940.00"), D("24000.00")),
    ]
    assert statement.closing == D("24000.00")
    later = selectors.client_statement(
        client=issued.client,
        currency="CDF",
        start=today + dt.timedelta(days=1),
        end=today + dt.timedelta(days=2),
    )
    assert (later.opening, later.lines, later.closing) == (D("24000.00"), [], D("24000.00"))
    with pytest.raises(ValidationError):
        selectors.client_statement(
            client=issued.client, currency="CDF", start=today, end=today - dt.timedelta(days=1)
        )


# --- The invoice's status after a credit note ------------------------------------------------


@pytest.fixture
def till(issued):
    cashier = cashier_of(issued.agency)
    payments.cash_session_open(
        cashier=cashier, agency_id=issued.agency_id, opening_cdf=D(0), opening_usd=D(0)
    )
    return cashier


def pay(issued, till, amount):
    return payments.payment_record_cash(
        cashier=till, client_id=issued.client_id, amount=D(amount), currency="CDF"
    )


def status_of(invoice):
    return Invoice.objects.get(pk=invoice.pk).status


def test_a_credit_note_for_what_payments_left_marks_the_invoice_paid(issued, till):
    pay(issued, till, 20000)
    assert status_of(issued) == Invoice.Status.PARTIALLY_PAID

    services.credit_note_issue(
        invoice_id=issued.pk, reason="Geste commercial", actor=None, amount=D(4940)
    )

    assert status_of(issued) == Invoice.Status.PAID
    assert selectors.invoices_open_amounts(invoice_ids=[issued.pk]) == {issued.pk: D("0.00")}
    assert selectors.client_balances(client_id=issued.client_id) == {"CDF": D("0.00")}


def test_a_partial_credit_on_a_partly_paid_invoice_leaves_it_partly_paid(issued, till):
    pay(issued, till, 10000)

    services.credit_note_issue(invoice_id=issued.pk, reason="Geste", actor=None, amount=D(940))

    assert status_of(issued) == Invoice.Status.PARTIALLY_PAID
    assert selectors.invoices_open_amounts(invoice_ids=[issued.pk]) == {issued.pk: D("14000.00")}


def test_a_reversed_payment_reopens_a_credited_invoice_as_issued(issued, till):
    payment = pay(issued, till, 20000)
    services.credit_note_issue(invoice_id=issued.pk, reason="Geste", actor=None, amount=D(4940))
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=issued.agency)

    payments.payment_reverse(payment_id=payment.pk, reason="Chèque sans provision", actor=manager)

    # What is left is what the credit note left: nothing of it is paid any more.
    assert status_of(issued) == Invoice.Status.ISSUED
    assert selectors.invoices_open_amounts(invoice_ids=[issued.pk]) == {issued.pk: D("20000.00")}


def test_a_full_credit_of_a_paid_invoice_cancels_it_and_leaves_the_money_as_credit(issued, till):
    pay(issued, till, 24940)

    services.credit_note_issue(invoice_id=issued.pk, reason="Relevé erroné", actor=None)

    assert status_of(issued) == Invoice.Status.CANCELLED
    assert selectors.client_balances(client_id=issued.client_id) == {"CDF": D("-24940.00")}


@pytest.mark.parametrize(
    ("credited", "paid", "status"),
    [
        ("0", "0", Invoice.Status.ISSUED),
        ("1160", "0", Invoice.Status.ISSUED),
        ("0", "100", Invoice.Status.PARTIALLY_PAID),
        ("4940", "19999.99", Invoice.Status.PARTIALLY_PAID),
        ("4940", "20000", Invoice.Status.PAID),
        ("0", "30000", Invoice.Status.PAID),
        ("24940", "0", Invoice.Status.CANCELLED),
        ("24940", "24940", Invoice.Status.CANCELLED),
    ],
)
def test_the_status_rule(credited, paid, status):
    assert selectors.invoice_status(total=D(24940), credited=D(credited), paid=D(paid)) == status
