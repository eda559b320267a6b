"""Overdue invoices as billing makes them, and the dunning records around them."""

import datetime as dt

from mwolo.agencies.models import Agency
from mwolo.billing import services as billing
from mwolo.billing.models import Invoice
from mwolo.billing.tests.factories import OCTOBER, local, metered_site
from mwolo.core import clock
from mwolo.crm.models import Site, SiteCategory
from mwolo.dunning.models import Disconnection, PublicHoliday, Reminder
from mwolo.metering.models import Meter

# Due dates that fall on Mondays, so the ladder's days are easy to follow: D+3 Thursday,
# D+7 Monday, D+12 Saturday (final notice), D+14 Monday (disconnection).
DUE = dt.date(2027, 2, 1)
NOVEMBER = dt.date(2026, 11, 1)
READINGS = [
    (local("2026-09-30"), "1100"),
    (local("2026-10-31"), "1220"),
    (local("2026-11-30"), "1340"),
]


def day(offset: int, due: dt.date = DUE) -> dt.date:
    """The day ``offset`` days after ``due``."""
    return due + dt.timedelta(days=offset)


def first_day_to_cut(day: dt.date) -> dt.date:
    """``day``, or the next day that is neither a weekend nor a public holiday."""
    holidays = set(PublicHoliday.objects.values_list("day", flat=True))
    while day.weekday() >= 5 or day in holidays:
        day += dt.timedelta(days=1)
    return day


def monday_to_come() -> dt.date:
    """The next Monday from today on in Kinshasa: a due date for what staff grant, whose
    days may not be past by the real clock."""
    today = clock.today("Africa/Kinshasa")
    return today + dt.timedelta(days=-today.weekday() % 7)


def billed_site(
    *, agency: Agency | None = None, category: str = SiteCategory.RESIDENTIAL, **client: object
) -> Site:
    site = metered_site(agency=agency, readings=READINGS, category=category)
    if client:
        type(site.client).objects.filter(pk=site.client_id).update(**client)
        site.client.refresh_from_db()
    return site


def overdue_invoice(
    *,
    site: Site | None = None,
    due: dt.date = DUE,
    period: dt.date = OCTOBER,
    agency: Agency | None = None,
    category: str = SiteCategory.RESIDENTIAL,
) -> Invoice:
    """An issued invoice of 24 940 CDF for ``site``'s month (a new site by default), due
    on ``due`` (billing sets it from the issue date: tests choose it)."""
    site = site or billed_site(agency=agency, category=category)
    billing.invoices_draft(period=period, site_ids=[site.pk])
    draft = Invoice.objects.get(site=site, period=period)
    invoice = billing.invoice_issue(invoice_id=draft.pk, actor=None)
    Invoice.objects.filter(pk=invoice.pk).update(due_date=due)
    invoice.refresh_from_db()
    return invoice


def steps_taken(invoice: Invoice) -> list[tuple[int, str]]:
    """(days after due, action) of every step taken for ``invoice``, in order."""
    return [
        ((reminder.sent_on - invoice.due_date).days, reminder.step.action)
        for reminder in Reminder.objects.filter(invoice=invoice)
        .select_related("step")
        .order_by("sent_on", "pk")
    ]


def site_meter(site: Site) -> Meter:
    return Meter.objects.get(site=site)


def open_episode(site: Site) -> Disconnection | None:
    return Disconnection.objects.filter(site=site, closed_at=None).first()
