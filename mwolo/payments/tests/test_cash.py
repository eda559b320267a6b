"""Cash at the till, bank transfers, allocation, credit, reversal and refunds."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing import services as billing
from mwolo.billing.delivery import invoices_deliver
from mwolo.billing.models import AccountEntry, Invoice
from mwolo.billing.selectors import client_balances, invoices_open_amounts
from mwolo.billing.services import credit_note_issue
from mwolo.billing.tests.factories import local, pdf_text
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.geo.tests.factories import commune
from mwolo.metering.models import MeterReading
from mwolo.metering.services import readings_record
from mwolo.notifications.models import Notification
from mwolo.payments import services
from mwolo.payments.models import CashSession, Payment, Refund
from mwolo.payments.tests.factories import (
    NOVEMBER,
    OCTOBER,
    SEPTEMBER,
    D,
    cashier_of,
    site_with_invoices,
    todays_rate,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM")


@pytest.fixture
def till(gombe):
    cashier = cashier_of(gombe)
    services.cash_session_open(
        cashier=cashier, agency_id=gombe.pk, opening_cdf=D(50000), opening_usd=D(20)
    )
    return cashier


def statuses(invoices):
    return [Invoice.objects.get(pk=i.pk).status for i in invoices]


def test_cash_pays_the_oldest_invoice_first_then_the_next(gombe, till):
    site, invoices = site_with_invoices(agency=gombe, months=(SEPTEMBER, OCTOBER))

    first = services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=D(30000), currency="CDF"
    )

    assert first.receipt_number.startswith("REC-")
    assert first.receipt_number.endswith("000001")
    assert statuses(invoices) == [Invoice.Status.PAID, Invoice.Status.PARTIALLY_PAID]
    assert invoices_open_amounts(invoice_ids=[i.pk for i in invoices]) == {
        invoices[0].pk: D("0.00"),
        invoices[1].pk: D("19880.00"),
    }
    assert client_balances(client_id=site.client_id) == {"CDF": D("19880.00")}
    services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=D(19880), currency="CDF"
    )
    assert statuses(invoices) == [Invoice.Status.PAID, Invoice.Status.PAID]
    assert client_balances(client_id=site.client_id) == {"CDF": D("0.00")}


def test_a_chosen_invoice_is_paid_first(gombe, till):
    site, invoices = site_with_invoices(agency=gombe, months=(SEPTEMBER, OCTOBER))

    services.payment_record_cash(
        cashier=till,
        client_id=site.client_id,
        amount=D(24940),
        currency="CDF",
        invoice_id=invoices[1].pk,
    )

    assert statuses(invoices) == [Invoice.Status.ISSUED, Invoice.Status.PAID]


def october_issued(site):
    """October's reading, draft and issue, as the billing run does it: the invoice's PDF
    and notice (and the credit set against it) follow once the issue commits."""
    readings_record(
        meter_id=site.meters.get().pk,
        readings=[(local("2026-10-31", "20:00"), D(1220))],
        source=MeterReading.Source.TECHNICIAN,
        actor=None,
    )
    billing.invoices_draft(period=OCTOBER, site_ids=[site.pk])
    return billing.invoice_issue(
        invoice_id=Invoice.objects.get(site=site, period=OCTOBER).pk, actor=None
    )


@pytest.mark.parametrize(
    ("paid", "status", "left", "balance", "used", "told"),
    [
        # 5 060 of credit on October's 24 940: partly paid, 19 880 left to pay.
        pytest.param(
            D(30000), "partially_paid", D(19880), D(19880), "5 060,00", "19 880,00", id="partly"
        ),
        # 35 060 of credit: October paid whole, 10 120 of credit still the client's.
        pytest.param(D(60000), "paid", D(0), D(-10120), "24 940,00", "0,00", id="fully"),
    ],
)
def test_an_overpayment_stays_as_credit_and_pays_the_next_invoice_when_it_is_issued(
    gombe,
    till,
    django_capture_on_commit_callbacks,
    tmp_path,
    paid,
    status,
    left,
    balance,
    used,
    told,
):
    site, (_september,) = site_with_invoices(agency=gombe, months=(SEPTEMBER,))
    services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=paid, currency="CDF"
    )
    credit = paid - D(24940)
    assert client_balances(client_id=site.client_id) == {"CDF": -credit}

    with django_capture_on_commit_callbacks(execute=True):
        october = october_issued(site)

    october.refresh_from_db()
    assert october.status == status
    assert invoices_open_amounts(invoice_ids=[october.pk]) == {october.pk: left}
    assert client_balances(client_id=site.client_id) == {"CDF": balance}
    # The notice sent with the invoice asks for what is left to pay, never less than nothing.
    notice = Notification.objects.get(event="invoice_issued", client=site.client)
    assert f"de {told} CDF" in notice.body.replace("\u202f", " ").replace("\xa0", " ")
    # Its PDF prints the credit it uses and what is left to pay.
    text = " ".join(pdf_text(october.pdf.open("rb").read(), tmp_path).split())
    assert f"Crédit client -{used} CDF NET À PAYER {told} CDF" in text
    # The statement the client and staff read agrees with the balance, line by line.
    staff = EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe)
    api = APIClient()
    api.force_authenticate(staff)
    today = clock.today("Africa/Kinshasa")
    statement = api.get(
        f"/api/billing/statements/{site.client_id}/",
        {"currency": "CDF", "start": today - dt.timedelta(days=1), "end": today},
    ).json()
    assert statement["opening"] == "0.00"
    assert statement["closing"] == f"{balance:.2f}"
    assert D(statement["closing"]) == sum(
        D(line["debit"]) - D(line["credit"]) for line in statement["lines"]
    )
    # Delivered again (the backlog job, a retried task): the credit is not used twice.
    entries = AccountEntry.objects.count()
    invoices_deliver(invoice_ids=[october.pk])
    assert AccountEntry.objects.count() == entries
    assert client_balances(client_id=site.client_id) == {"CDF": balance}


def test_dollars_are_converted_at_the_days_rate(gombe, till):
    todays_rate("2800")
    site, (invoice,) = site_with_invoices(agency=gombe)

    payment = services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=D(10), currency="USD"
    )

    assert (payment.amount, payment.currency) == (D(10), "USD")
    assert (payment.credited, payment.account_currency) == (D("28000.00"), "CDF")
    assert payment.exchange_rate == D("2800.0000")
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    assert client_balances(client_id=site.client_id) == {"CDF": D("-3060.00")}


def test_without_a_rate_of_the_week_dollars_are_refused_and_nothing_is_written(gombe, till):
    site, _invoices = site_with_invoices(agency=gombe)

    with pytest.raises(ApplicationError, match="taux"):
        services.payment_record_cash(
            cashier=till, client_id=site.client_id, amount=D(10), currency="USD"
        )

    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [
        (D(0), "CDF", "amount"),
        (D(-100), "CDF", "amount"),
        (D("10.001"), "CDF", "amount"),
        (D("NaN"), "CDF", "amount"),
        (D(100), "EUR", "currency"),
    ],
)
def test_bad_cash_is_refused_and_nothing_is_written(gombe, till, amount, currency, field):
    site, _invoices = site_with_invoices(agency=gombe)

    with pytest.raises(ValidationError) as refused:
        services.payment_record_cash(
            cashier=till, client_id=site.client_id, amount=amount, currency=currency
        )

    assert field in refused.value.message_dict
    assert not Payment.objects.exists()
    assert AccountEntry.objects.filter(kind="payment").count() == 0


def test_no_cash_without_an_open_till(gombe):
    site, _invoices = site_with_invoices(agency=gombe)

    with pytest.raises(ApplicationError, match="caisse"):
        services.payment_record_cash(
            cashier=cashier_of(gombe), client_id=site.client_id, amount=D(100), currency="CDF"
        )
    assert not Payment.objects.exists()


def test_a_cashier_takes_no_cash_for_another_agencys_client(gombe, till):
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    site, _invoices = site_with_invoices(agency=lubumbashi)

    with pytest.raises(ApplicationError) as refused:
        services.payment_record_cash(
            cashier=till, client_id=site.client_id, amount=D(100), currency="CDF"
        )
    assert refused.value.status == 404
    assert not Payment.objects.exists()


def test_a_technician_cannot_take_cash(gombe):
    site, _invoices = site_with_invoices(agency=gombe)
    with pytest.raises(PermissionDenied):
        services.payment_record_cash(
            cashier=EmployeeFactory(role=Role.TECHNICIAN, agency=gombe),
            client_id=site.client_id,
            amount=D(100),
            currency="CDF",
        )


def test_the_till_closes_with_its_count_and_the_variance(gombe, till):
    todays_rate()
    site, _invoices = site_with_invoices(agency=gombe)
    services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=D(20000), currency="CDF"
    )
    services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=D(5), currency="USD"
    )

    with pytest.raises(ValidationError, match="dites pourquoi"):
        services.cash_session_close(cashier=till, counted_cdf=D(69000), counted_usd=D(25))
    assert CashSession.objects.get().closed_at is None

    closed = services.cash_session_close(
        cashier=till, counted_cdf=D(69000), counted_usd=D(25), note="Billet de 1000 déchiré"
    )

    assert (closed.expected_cdf, closed.expected_usd) == (D("70000.00"), D("25.00"))
    assert (closed.variance_cdf, closed.variance_usd) == (D("-1000.00"), D("0.00"))
    with pytest.raises(ApplicationError, match="caisse"):
        services.payment_record_cash(
            cashier=till, client_id=site.client_id, amount=D(100), currency="CDF"
        )


def test_one_open_till_per_cashier(gombe, till):
    with pytest.raises(ApplicationError, match="déjà ouverte"):
        services.cash_session_open(
            cashier=till, agency_id=gombe.pk, opening_cdf=D(0), opening_usd=D(0)
        )
    assert CashSession.objects.count() == 1


def test_a_bank_transfer_pays_once_per_reference(gombe):
    site, (invoice,) = site_with_invoices(agency=gombe)
    agent = EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe)

    services.payment_record_bank(
        actor=agent,
        client_id=site.client_id,
        amount=D(24940),
        currency="CDF",
        bank_reference="RAWBANK-778812",
    )
    with pytest.raises(ValidationError) as refused:
        services.payment_record_bank(
            actor=agent,
            client_id=site.client_id,
            amount=D(24940),
            currency="CDF",
            bank_reference="RAWBANK-778812",
        )

    assert refused.value.message_dict == {
        "bank_reference": ["Un virement de référence RAWBANK-778812 est déjà enregistré."]
    }
    assert Payment.objects.count() == 1
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


def test_a_reversed_payment_reopens_what_it_paid(gombe, till):
    site, invoices = site_with_invoices(agency=gombe, months=(SEPTEMBER, OCTOBER))
    payment = services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=D(60000), currency="CDF"
    )
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    with pytest.raises(PermissionDenied):
        services.payment_reverse(payment_id=payment.pk, reason="Erreur", actor=till)
    with pytest.raises(ValidationError):
        services.payment_reverse(payment_id=payment.pk, reason=" ", actor=manager)
    services.payment_reverse(payment_id=payment.pk, reason="Mauvais client", actor=manager)

    assert Payment.objects.get().status == Payment.Status.REVERSED
    assert statuses(invoices) == [Invoice.Status.ISSUED, Invoice.Status.ISSUED]
    assert client_balances(client_id=site.client_id) == {"CDF": D("49880.00")}
    with pytest.raises(ApplicationError, match="déjà annulé"):
        services.payment_reverse(payment_id=payment.pk, reason="Encore", actor=manager)


def test_credit_is_refunded_never_more_than_there_is(gombe, till):
    site, _invoices = site_with_invoices(agency=gombe)
    services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=D(30000), currency="CDF"
    )
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)
    services.cash_session_open(
        cashier=manager, agency_id=gombe.pk, opening_cdf=D(10000), opening_usd=D(0)
    )

    with pytest.raises(ValidationError) as refused:
        services.refund_record(
            actor=manager,
            client_id=site.client_id,
            amount=D(6000),
            currency="CDF",
            method="cash",
            reason="Trop perçu",
        )
    assert refused.value.messages == ["Le crédit du client est de 5\xa0060,00 CDF."]
    refund = services.refund_record(
        actor=manager,
        client_id=site.client_id,
        amount=D(5060),
        currency="CDF",
        method="cash",
        reason="Trop perçu",
    )

    assert client_balances(client_id=site.client_id) == {"CDF": D("0.00")}
    assert Refund.objects.get() == refund
    assert services.cash_session_expected(refund.cash_session) == {
        "CDF": D("4940.00"),
        "USD": D("0.00"),
    }


def test_a_credit_note_after_payment_leaves_credit(gombe, till):
    site, (invoice,) = site_with_invoices(agency=gombe)
    services.payment_record_cash(
        cashier=till, client_id=site.client_id, amount=D(24940), currency="CDF"
    )

    credit_note_issue(invoice_id=invoice.pk, reason="Relevé erroné", actor=None)

    assert client_balances(client_id=site.client_id) == {"CDF": D("-24940.00")}


def test_receipt_numbers_are_gap_free_across_ways_of_paying(gombe, till):
    site, _invoices = site_with_invoices(agency=gombe, months=(SEPTEMBER, OCTOBER, NOVEMBER))
    for amount in (D(100), D(200)):
        services.payment_record_cash(
            cashier=till, client_id=site.client_id, amount=amount, currency="CDF"
        )
    with pytest.raises(ValidationError):
        services.payment_record_cash(
            cashier=till, client_id=site.client_id, amount=D(0), currency="CDF"
        )
    services.payment_record_bank(
        actor=EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe),
        client_id=site.client_id,
        amount=D(300),
        currency="CDF",
        bank_reference="TMB-1",
    )

    numbers = sorted(Payment.objects.values_list("receipt_number", flat=True))
    assert [int(n[-6:]) for n in numbers] == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_two_cashiers_paying_one_invoice_at_once_leave_a_right_balance():
    gombe = AgencyFactory(code="KIN-GOM")
    site, (invoice,) = site_with_invoices(agency=gombe)
    tills = []
    for _ in range(2):
        cashier = cashier_of(gombe)
        services.cash_session_open(
            cashier=cashier, agency_id=gombe.pk, opening_cdf=D(0), opening_usd=D(0)
        )
        tills.append(cashier)
    start = threading.Barrier(2)
    errors = []

    def pay(cashier):
        try:
            start.wait()
            services.payment_record_cash(
                cashier=cashier, client_id=site.client_id, amount=D(24940), currency="CDF"
            )
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=pay, args=(c,)) for c in tills]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    # One paid the invoice, the other's money is credit: never both on the invoice.
    assert invoices_open_amounts(invoice_ids=[invoice.pk]) == {invoice.pk: D("0.00")}
    assert client_balances(client_id=site.client_id) == {"CDF": D("-24940.00")}
    paid_on_invoice = AccountEntry.objects.filter(invoice=invoice, kind="payment")
    assert sum(e.amount for e in paid_on_invoice) == D("-24940.00")
