"""Reads of billing: the tariff of a day, exchange rates, balances, statements, and what
an invoice's status and overdue flag follow from."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import visible_to
from mwolo.crm.models import Client
from mwolo.geo.models import TimeZone

from .models import AccountEntry, Currency, ExchangeRate, Invoice, Tariff
from .pricing import Band, round_money

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from mwolo.accounts.models import User

RATE_VALIDITY = dt.timedelta(days=7)  # an older rate is too far from the market


def tariff_in_force(*, category: str, on: dt.date) -> Tariff:
    """The tariff of a site category on a day, with its bands; an error names what is missing."""
    tariff = (
        Tariff.objects.filter(category=category, valid_from__lte=on)
        .exclude(valid_to__lt=on)
        .prefetch_related("bands")
        .first()
    )
    if tariff is None:
        raise ApplicationError(
            _("No tariff for the category “%(category)s” on %(day)s.")
            % {"category": category, "day": on.isoformat()}
        )
    return tariff


def tariff_bands(tariff: Tariff) -> list[Band]:
    return [(band.up_to_kwh, band.price_per_kwh) for band in tariff.bands.all()]


def amount_in(*, amount: Decimal, currency: str, target: str, on: dt.date) -> Decimal:
    """``amount`` of ``currency`` in ``target`` at the rate of ``on`` (the latest known), exact."""
    if currency == target:
        return amount
    rate = ExchangeRate.objects.filter(day__lte=on, day__gt=on - RATE_VALIDITY).first()
    if rate is None:
        raise ApplicationError(
            _("No exchange rate in the week up to %s: enter the BCC rate.") % on.isoformat()
        )
    per_usd = rate.cdf_per_usd
    return amount * per_usd if currency == Currency.USD else amount / per_usd


# --- Accounts ------------------------------------------------------------------------------


def _booked_until(entries: QuerySet[AccountEntry], until: dt.datetime | None) -> QuerySet:
    return entries if until is None else entries.filter(booked_at__lte=until)


def client_balances(*, client_id: int, until: dt.datetime | None = None) -> dict[str, Decimal]:
    """What a client owes, per currency (negative: credit in their favour), from entries
    (those booked up to ``until`` when given: the account as it stood then)."""
    # Sums to the cent: SQLite hands a sum of decimals back with ten places.
    return {
        row["currency"]: round_money(row["balance"])
        for row in _booked_until(AccountEntry.objects.filter(client_id=client_id), until)
        .values("currency")
        .annotate(balance=Sum("amount"))
        .order_by("currency")
    }


def invoices_open_amounts(
    *, invoice_ids: Iterable[int], until: dt.datetime | None = None
) -> dict[int, Decimal]:
    """What is left to pay on each invoice: its total less its credit notes and payments
    (those booked up to ``until`` when given)."""
    ids = list(invoice_ids)
    settled: dict[int, Decimal] = defaultdict(Decimal)
    for invoice_id, amount in (
        _booked_until(AccountEntry.objects.filter(invoice_id__in=ids), until)
        .exclude(kind=AccountEntry.Kind.INVOICE)
        .values("invoice_id")
        .annotate(amount=Sum("amount"))
        .values_list("invoice_id", "amount")
    ):
        settled[invoice_id] = -round_money(amount)
    return {
        invoice_id: total - settled[invoice_id]
        for invoice_id, total in Invoice.objects.filter(pk__in=ids).values_list("pk", "total")
    }


def invoice_status(*, total: Decimal, credited: Decimal, paid: Decimal) -> str:
    """The status of an issued invoice from what was taken off it: the one rule.

    ``credited`` is the sum of its credit notes, ``paid`` what payments (less their
    reversals) put on it. Credit notes that took back all of it cancel it; otherwise it
    is paid once the payments cover what the credit notes left, partially paid once
    something was paid, and issued before that (a credit note alone pays nothing).
    """
    if credited > 0 and credited >= total:
        return Invoice.Status.CANCELLED
    owed = total - credited
    if paid >= owed:
        return Invoice.Status.PAID
    if paid > 0:
        return Invoice.Status.PARTIALLY_PAID
    return Invoice.Status.ISSUED


def invoices_statuses(*, invoice_ids: Iterable[int]) -> dict[int, str]:
    """The status each issued invoice among ``invoice_ids`` should have (``invoice_status``)
    from its account entries; drafts are left out. Two queries."""
    ids = list(invoice_ids)
    credit_note = Q(kind=AccountEntry.Kind.CREDIT_NOTE)
    taken = {
        invoice_id: (-(credited or Decimal(0)), -(paid or Decimal(0)))
        for invoice_id, credited, paid in AccountEntry.objects.filter(invoice_id__in=ids)
        .exclude(kind=AccountEntry.Kind.INVOICE)
        .order_by()
        .values("invoice_id")
        .annotate(
            credited=Sum("amount", filter=credit_note), paid=Sum("amount", filter=~credit_note)
        )
        .values_list("invoice_id", "credited", "paid")
    }
    return {
        pk: invoice_status(total=total, credited=credited, paid=paid)
        for pk, total in Invoice.objects.filter(pk__in=ids)
        .exclude(status=Invoice.Status.DRAFT)
        .values_list("pk", "total")
        for credited, paid in [taken.get(pk, (Decimal(0), Decimal(0)))]
    }


def invoices_overdue_condition(*, at: dt.datetime | None = None) -> Q:
    """Overdue invoices: open (issued or partially paid) and due before the day it is at
    ``at`` (now by default) in their agency's time zone.

    The one definition, for filters and annotations (``invoices_with_overdue``). Except for
    the hour a day when Lubumbashi is a day ahead of Kinshasa, every zone has the same day
    and the condition needs no join to the agency's province.
    """
    moment = at or clock.now()
    zones_by_day: dict[dt.date, list[str]] = defaultdict(list)
    for zone in TimeZone.values:
        zones_by_day[moment.astimezone(ZoneInfo(zone)).date()].append(zone)
    if len(zones_by_day) == 1:
        (today,) = zones_by_day
        due = Q(due_date__lt=today)
    else:
        due = reduce(
            or_,
            (
                Q(agency__province__time_zone__in=zones, due_date__lt=today)
                for today, zones in zones_by_day.items()
            ),
        )
    return Q(status__in=Invoice.OPEN) & due


def invoices_with_overdue(
    invoices: QuerySet[Invoice], *, at: dt.datetime | None = None
) -> QuerySet[Invoice]:
    """``invoices`` with ``overdue`` (a boolean, ``invoices_overdue_condition``) on each:
    computed by the database in the same query, to filter, sort and show."""
    return invoices.annotate(
        overdue=ExpressionWrapper(invoices_overdue_condition(at=at), output_field=BooleanField())
    )


@dataclass(frozen=True)
class StatementLine:
    booked_at: dt.datetime
    kind: str
    reference: str
    debit: Decimal
    credit: Decimal
    balance: Decimal


@dataclass(frozen=True)
class Statement:
    client: Client
    currency: str
    start: dt.date
    end: dt.date
    opening: Decimal
    lines: list[StatementLine]

    @property
    def closing(self) -> Decimal:
        return self.lines[-1].balance if self.lines else self.opening


def client_statement(*, client: Client, currency: str, start: dt.date, end: dt.date) -> Statement:
    """A client's account in one currency from ``start`` to ``end`` (days in their agency's
    zone, both included): the balance before, every entry with the running balance."""
    if end < start:
        raise ValidationError({"end": _("The end of the statement comes before its start.")})
    zone = ZoneInfo(client.agency.time_zone)
    since = dt.datetime.combine(start, dt.time(), tzinfo=zone)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    entries = AccountEntry.objects.filter(client=client, currency=currency)
    opening = entries.filter(booked_at__lt=since).aggregate(total=Sum("amount"))["total"]
    balance = round_money(opening or Decimal(0))
    lines = []
    for entry in entries.filter(booked_at__gte=since, booked_at__lt=until).order_by(
        "booked_at", "pk"
    ):
        balance += entry.amount
        lines.append(
            StatementLine(
                booked_at=entry.booked_at,
                kind=entry.kind,
                reference=entry.reference,
                debit=entry.amount if entry.amount > 0 else Decimal(0),
                credit=-entry.amount if entry.amount < 0 else Decimal(0),
                balance=balance,
            )
        )
    return Statement(
        client=client,
        currency=currency,
        start=start,
        end=end,
        opening=opening or Decimal(0),
        lines=lines,
    )


def invoices_visible(user: "User | AnonymousUser") -> QuerySet[Invoice]:
    """The invoices ``user`` may see: drafts only for those who may issue them."""
    invoices = visible_to(Invoice.objects.all(), user)
    if not user.has_perm("billing.issue_invoice"):
        invoices = invoices.exclude(status=Invoice.Status.DRAFT)
    return invoices


def tariffs_published(*, today: dt.date | None = None) -> QuerySet[Tariff]:
    """Tariffs in force today and those announced for later, with their bands."""
    today = today or clock.today("Africa/Kinshasa")
    return (
        Tariff.objects.exclude(valid_to__lt=today)
        .prefetch_related("bands")
        .order_by("category", "valid_from")
    )
