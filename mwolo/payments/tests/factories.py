"""Clients with issued invoices to pay, the staff who take the money, mobile-money
requests and the cases sent for review."""

import datetime as dt
from decimal import Decimal

import factory

from mwolo.accounts.models import User
from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.billing import services as billing
from mwolo.billing.models import ExchangeRate, Invoice
from mwolo.billing.tests.factories import local, metered_site, tariff
from mwolo.core import clock
from mwolo.core.permissions import Role
from mwolo.crm.models import Site
from mwolo.crm.tests.factories import ClientFactory
from mwolo.payments.models import PaymentIntent, PaymentReview

SEPTEMBER, OCTOBER, NOVEMBER = dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)


def site_with_invoices(*, agency=None, months=(OCTOBER,)) -> tuple[Site, list[Invoice]]:
    """A residential site with an issued invoice of 24 940 CDF (120 kWh) for each month,
    oldest due first (a tariff is created when there is none)."""
    if not billing.Tariff.objects.exists():
        tariff()
    readings = [(local("2026-08-31"), "980")]
    register = 980
    for month in months:
        register += 120
        last = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        readings.append((local(last.isoformat(), "20:00"), str(register)))
    site = metered_site(
        agency=agency, readings=readings, installed_at=local("2026-08-01"), register="900"
    )
    invoices = []
    for month in months:
        billing.invoices_draft(period=month, site_ids=[site.pk])
        draft = Invoice.objects.get(site=site, period=month)
        invoices.append(billing.invoice_issue(invoice_id=draft.pk, actor=None))
    # The due dates are one day apart, in month order, so the oldest is paid first.
    for offset, invoice in enumerate(invoices):
        Invoice.objects.filter(pk=invoice.pk).update(
            due_date=clock.today("Africa/Kinshasa") + dt.timedelta(days=offset)
        )
    return site, [Invoice.objects.get(pk=invoice.pk) for invoice in invoices]


def cashier_of(agency) -> User:
    return EmployeeFactory(role=Role.CASHIER, agency=agency)


def todays_rate(cdf_per_usd: str = "2800") -> ExchangeRate:
    return ExchangeRate.objects.create(day=clock.today(), cdf_per_usd=Decimal(cdf_per_usd))


D = Decimal


class PaymentIntentFactory(factory.django.DjangoModelFactory):
    """An M-Pesa request of 24 940 CDF on the client's account, pushed and pending."""

    class Meta:
        model = PaymentIntent

    client = factory.SubFactory(ClientFactory)
    purpose = PaymentIntent.Purpose.ACCOUNT
    provider = "mpesa"
    msisdn = "+243970000101"
    amount = D(24940)
    currency = "CDF"
    provider_reference = factory.Sequence(lambda n: f"ws_CO_T{n:012d}")
    pushed_at = factory.LazyFunction(clock.now)
    expires_at = factory.LazyFunction(lambda: clock.now() + dt.timedelta(minutes=30))


class PaymentReviewFactory(factory.django.DjangoModelFactory):
    """The operator says 20 000 CDF were paid for a request of 24 940 CDF."""

    class Meta:
        model = PaymentReview

    intent = factory.SubFactory(PaymentIntentFactory)
    reason = "montant 20000 au lieu de 24940.00"
    operator_transaction_id = factory.Sequence(lambda n: f"RKT{n:07d}")
    amount = D(20000)
    currency = "CDF"
    payer = "+243970000101"
