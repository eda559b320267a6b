"""Everything that changes billing: tariffs, drafts, issue, credit notes, billing runs.

Each public function is one transaction. The life of an invoice: a billing run drafts it
(``invoices_draft``), a person reviews it when it is flagged (``invoice_review``), it is
issued with its number (``invoices_issue``), then paid (payments) or cancelled by a credit
note (``credit_note_issue``). What a client owes is the sum of their ``AccountEntry`` rows.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.utils.formats import date_format, number_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from mwolo.accounts.models import User
from mwolo.agencies.models import Agency
from mwolo.core import clock
from mwolo.core.bulk import ids_reserve, numbers_assign, rows_insert
from mwolo.core.exceptions import ApplicationError
from mwolo.core.numbering import formatted_number, sequence_reserve
from mwolo.core.permissions import can_act_for_agency, sees_all_agencies, visible_to
from mwolo.crm.models import Site
from mwolo.metering.models import MeterInstallation, PaymentMode
from mwolo.metering.selectors import Consumption, meters_consumption, meters_daily_average

from . import tasks
from .models import (
    AccountEntry,
    Anomaly,
    BillingRun,
    CreditNote,
    Invoice,
    InvoiceLine,
    Tariff,
    TariffBand,
)
from .pricing import (
    KWH,
    Band,
    PricedLine,
    Segment,
    Terms,
    consumption_split,
    month_price,
    round_money,
)
from .selectors import invoices_statuses, tariff_bands


def bands_check(bands: Sequence[Band]) -> None:
    """Bands rise strictly, each has a price, and the last one takes everything above."""
    if not bands:
        raise ValidationError(_("A tariff needs at least one consumption band."))
    limits = [up_to for up_to, _price in bands]
    if limits[-1] is not None:
        raise ValidationError(_("The last band must have no upper limit."))
    if None in limits[:-1]:
        raise ValidationError(_("Only the last band may have no upper limit."))
    bounded = [limit for limit in limits[:-1] if limit is not None]
    if any(low >= high for low, high in pairwise(bounded)):
        raise ValidationError(_("Band limits must rise from one band to the next."))
    if any(price <= 0 for _up_to, price in bands):
        raise ValidationError(_("Every band needs a price above zero."))


def social_tranche_check(
    bands: Sequence[Band], *, ceiling_kwh: Decimal | None, price_per_kwh: Decimal | None
) -> None:
    """A month billed at the social price never costs more than the bands would charge:
    the social price is at most the price of every band that starts below the ceiling."""
    if ceiling_kwh is None or price_per_kwh is None:
        return
    reached: list[Decimal] = []
    start = Decimal(0)
    for up_to, price in bands:
        if start >= ceiling_kwh:
            break
        reached.append(price)
        start = ceiling_kwh if up_to is None else up_to
    if reached and price_per_kwh > min(reached):
        raise ValidationError(
            _(
                "The social price cannot be above the price of a band below the social "
                "ceiling (%(price)s per kWh)."
            )
            % {"price": number_format(min(reached), force_grouping=True)}
        )


def _tariff_category_lock(category: str) -> None:
    """Hold, until the transaction ends, the right to save a tariff of ``category``: the
    overlap check reads the category's tariffs, and without the lock two transactions could
    each pass it before either has committed. A transaction-scoped advisory lock, as there
    is no row per category to lock (an exclusion constraint would need btree_gist).
    SQLite's transactions take the write lock when they begin: nothing to do there."""
    if not connection.in_atomic_block:
        raise RuntimeError("a tariff's overlap is checked inside the transaction that saves it")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"billing.tariff:{category}"]
            )


def tariff_overlap_check(tariff: Tariff) -> None:
    """One tariff per site category on any day. Must run in the transaction that saves the
    tariff: it locks the category until that transaction ends (``_tariff_category_lock``)."""
    _tariff_category_lock(tariff.category)
    others = Tariff.objects.filter(category=tariff.category).exclude(pk=tariff.pk)
    if tariff.valid_to is not None:
        others = others.filter(valid_from__lte=tariff.valid_to)
    clash = others.exclude(valid_to__lt=tariff.valid_from).first()
    if clash is not None:
        raise ValidationError(
            {
                "valid_from": _("These dates overlap the tariff %(code)s of the same category.")
                % {"code": clash.code}
            }
        )


@transaction.atomic
def tariff_save(*, tariff: Tariff, bands: Sequence[Band], actor: User | None) -> Tariff:
    """Create or replace a tariff with its bands (``(up_to_kwh or None, price)``, in order)."""
    bands_check(bands)
    tariff.full_clean()
    social_tranche_check(
        bands,
        ceiling_kwh=tariff.social_ceiling_kwh,
        price_per_kwh=tariff.social_price_per_kwh,
    )
    tariff_overlap_check(tariff)
    tariff.save()
    tariff.bands.all().delete()
    TariffBand.objects.bulk_create(
        TariffBand(tariff=tariff, up_to_kwh=up_to, price_per_kwh=Decimal(price))
        for up_to, price in bands
    )
    return tariff


# --- Periods -------------------------------------------------------------------------------


def period_bounds(period: dt.date, zone: str) -> tuple[dt.datetime, dt.datetime]:
    """The month starting on ``period`` as two moments: its first and the next month's
    first midnight in the agency's time zone."""
    tz = ZoneInfo(zone)
    following = _next_month(period)
    return (
        dt.datetime(period.year, period.month, 1, tzinfo=tz),
        dt.datetime(following.year, following.month, 1, tzinfo=tz),
    )


def _next_month(period: dt.date) -> dt.date:
    return dt.date(period.year + period.month // 12, period.month % 12 + 1, 1)


def _first_of(month: dt.date) -> str:
    """ "1er février 2027" in French, "1 February 2027" in English."""
    text = date_format(month, "j F Y")
    return "1er" + text[1:] if get_language() == "fr" else text


def period_check(period: dt.date, *, today: dt.date | None = None) -> None:
    """A month may be billed once it is over (in the easternmost zone it is over last)."""
    if period.day != 1:
        raise ValidationError({"period": _("A billing period starts on the first of a month.")})
    today = today or clock.today("Africa/Kinshasa")
    if _next_month(period) > today:
        raise ValidationError(
            {
                "period": _("%(month)s is not over yet: it can be billed from %(day)s.")
                % {
                    "month": date_format(period, "F Y"),
                    "day": _first_of(_next_month(period)),
                }
            }
        )


# --- Drafting ------------------------------------------------------------------------------

# How far back the average consumption used for an estimate is measured.
ESTIMATE_HISTORY = dt.timedelta(days=90)


@dataclass
class DraftReport:
    drafted: int = 0
    flagged: int = 0
    kept: int = 0  # issued invoices, or drafts a person reviewed: left as they are
    issued: int = 0  # when drafting issues the ready drafts (see ``invoices_draft``)
    held: int = 0  # drafts with anomalies nobody reviewed yet, left unissued

    def __add__(self, other: "DraftReport") -> "DraftReport":
        return DraftReport(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class _Window:
    """One meter's time at a site within the month."""

    installation_id: int
    meter_id: int
    start: dt.datetime
    end: dt.datetime


@dataclass
class _SiteMonth:
    site_id: int
    client_id: int
    agency_id: int
    category: str
    zone: ZoneInfo
    windows: list[_Window] = field(default_factory=list)
    consumption: dict[int, Consumption] = field(default_factory=dict)  # by installation id


def _terms(tariff: Tariff) -> Terms:
    return Terms(
        key=tariff.pk,
        bands=tariff_bands(tariff),
        fixed_monthly_charge=tariff.fixed_monthly_charge,
        vat_rate=tariff.vat_rate,
        social_ceiling_kwh=tariff.social_ceiling_kwh,
        social_price_per_kwh=tariff.social_price_per_kwh,
    )


def _segments(
    tariffs: Sequence[Tariff], first_day: dt.date, last_day: dt.date, period: dt.date
) -> list[tuple[Tariff, Decimal]] | None:
    """The tariffs in force on the days supplied, each with its share of the month; None
    when a day supplied has no tariff."""
    month_days = (_next_month(period) - period).days
    segments, covered = [], 0
    for tariff in sorted(tariffs, key=lambda t: t.valid_from):
        start = max(first_day, tariff.valid_from)
        end = min(last_day, tariff.valid_to or last_day)
        if start <= end:
            days = (end - start).days + 1
            covered += days
            segments.append((tariff, Decimal(days) / Decimal(month_days)))
    if covered != (last_day - first_day).days + 1:
        return None
    return segments


def _site_months(sites: QuerySet[Site], period: dt.date) -> list[_SiteMonth]:
    """The postpaid ``sites`` supplied during the month, with their meters' windows."""
    zones: dict[str, ZoneInfo] = {}
    by_id = {
        site_id: _SiteMonth(
            site_id=site_id,
            client_id=client_id,
            agency_id=site_agency_id,
            category=category,
            zone=zones.setdefault(zone, ZoneInfo(zone)),
        )
        for site_id, client_id, site_agency_id, category, zone in sites.values_list(
            "pk", "client_id", "agency_id", "category", "agency__province__time_zone"
        )
    }
    if not by_id:
        return []
    bounds = {name: period_bounds(period, name) for name in zones}
    earliest = min(start for start, _end in bounds.values())
    latest = max(end for _start, end in bounds.values())
    installations = (
        MeterInstallation.objects.filter(
            site__in=sites, meter__payment_mode=PaymentMode.POSTPAID, installed_at__lt=latest
        )
        .exclude(removed_at__lte=earliest)
        .order_by("installed_at")
        .values_list("pk", "site_id", "meter_id", "installed_at", "removed_at")
    )
    for installation_id, site_id, meter_id, installed_at, removed_at in installations:
        month = by_id[site_id]
        start, end = bounds[str(month.zone)]
        window_start = max(start, installed_at)
        window_end = min(end, removed_at or end)
        if window_start < window_end:
            month.windows.append(_Window(installation_id, meter_id, window_start, window_end))
    return [month for month in by_id.values() if month.windows]


# A window shared by more meters than this is measured for all the chunk's meters at once
# (their ids stay in the database); a rarer one, for its own meters.
SHARED_WINDOW = 100


def _measure(months: Sequence[_SiteMonth], meters: QuerySet) -> None:
    """Every window's consumption, one bulk query per distinct window: most meters share
    the month; meters installed or removed during it have windows of their own."""
    groups: dict[tuple[dt.datetime, dt.datetime], list[tuple[_SiteMonth, _Window]]] = {}
    for month in months:
        for window in month.windows:
            groups.setdefault((window.start, window.end), []).append((month, window))
    for (start, end), members in groups.items():
        ids = meters if len(members) > SHARED_WINDOW else {w.meter_id for _m, w in members}
        found = meters_consumption(meter_ids=ids, start=start, end=end)
        for month, window in members:
            month.consumption[window.installation_id] = found[window.meter_id]


def _read_in(used: Consumption, window: _Window) -> bool:
    """Whether the meter was read during its window (else its consumption is estimated)."""
    return used.end is not None and used.end.taken_at > window.start


def _estimated_before(
    sites: QuerySet[Site], period: dt.date
) -> dict[int, list[tuple[dt.date, Decimal]]]:
    """Earlier estimated invoices of each site: (period, kWh)."""
    found: dict[int, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for site_id, month, kwh in (
        Invoice.objects.filter(site__in=sites, estimated=True, period__lt=period)
        .exclude(status=Invoice.Status.CANCELLED)
        .values_list("site_id", "period", "consumption_kwh")
    ):
        found[site_id].append((month, kwh))
    return found


# What an invoice row holds: its id, the fields of an issue (see ``_written``), then what
# ``_draft`` gives, in this order (see ``rows_insert``).
INVOICE_FIELDS = (
    "id",
    "created_at",
    "updated_at",
    "number",
    "status",
    "issued_at",
    "issued_by_id",
    "issue_date",
    "due_date",
    "run_id",
    "client_id",
    "site_id",
    "agency_id",
    "period",
    "currency",
    "tariff_id",
    "meter_id",
    "previous_reading_kwh",
    "previous_reading_at",
    "current_reading_kwh",
    "current_reading_at",
    "consumption_kwh",
    "estimated",
    "estimates_deducted_kwh",
    "anomalies",
    "review_note",
    "subtotal",
    "vat_amount",
    "total",
    "pdf",
)
LINE_FIELDS = (
    "invoice_id",
    "position",
    "kind",
    "tariff_id",
    "band_from_kwh",
    "band_to_kwh",
    "quantity",
    "unit_price",
    "amount",
    "vat_rate",
)


@dataclass
class _Priced:
    invoice: tuple  # the values of INVOICE_FIELDS from ``run_id`` on
    lines: list[PricedLine]
    flagged: bool
    client_id: int
    currency: str
    total: Decimal
    zone: str
    terms_days: int | None  # the tariff's payment terms


def _draft(
    month: _SiteMonth,
    *,
    period: dt.date,
    tariffs: Sequence[Tariff],
    terms: dict[int, Terms],
    rates: dict[int, Decimal],
    estimates: list[tuple[dt.date, Decimal]],
    run_id: int | None,
) -> _Priced:
    """One site's draft for the month: the invoice row and its priced lines."""
    anomalies: set[str] = set()
    measured, estimated_kwh, suspicious = Decimal(0), Decimal(0), 0
    earliest_reading: dt.datetime | None = None
    for window in month.windows:
        used = month.consumption[window.installation_id]
        suspicious += used.suspicious
        if used.kwh is not None and _read_in(used, window):
            measured += used.kwh
            if used.start is not None and (
                earliest_reading is None or used.start.taken_at < earliest_reading
            ):
                earliest_reading = used.start.taken_at
            continue
        anomalies.add(Anomaly.ESTIMATED)
        rate = rates.get(window.meter_id)
        if rate is None:
            anomalies.add(Anomaly.NO_HISTORY)
            continue
        days = Decimal((window.end - window.start).total_seconds()) / Decimal(86400)
        estimated_kwh += (rate * days).quantize(KWH, rounding=ROUND_HALF_UP)
    if suspicious:
        anomalies.add(Anomaly.SUSPICIOUS)
    # Months billed on an estimate since the reading this measure starts from were billed
    # already: the measure pays only what they did not.
    deducted = Decimal(0)
    if earliest_reading is not None:
        for month_start, kwh in estimates:
            if period_bounds(month_start, str(month.zone))[0] >= earliest_reading:
                deducted += kwh
    if deducted > measured:
        anomalies.add(Anomaly.OVER_ESTIMATED)
        deducted = measured
    kwh = measured - deducted + estimated_kwh

    last = month.windows[-1]
    end_used = month.consumption[last.installation_id]
    first_day = month.windows[0].start.astimezone(month.zone).date()
    last_day = (last.end - dt.timedelta(microseconds=1)).astimezone(month.zone).date()
    in_force = [
        tariff
        for tariff in tariffs
        if tariff.category == month.category
        and tariff.valid_from <= last_day
        and (tariff.valid_to is None or tariff.valid_to >= first_day)
    ]
    shares = _segments(in_force, first_day, last_day, period)
    lines: list[PricedLine] = []
    subtotal = vat = Decimal(0)
    tariff = None
    if shares is None or len({t.currency for t in in_force}) != 1:
        anomalies.add(Anomaly.NO_TARIFF)
    else:
        tariff = shares[-1][0]
        parts = consumption_split(kwh, [share for _tariff, share in shares])
        priced = month_price(
            [
                Segment(terms=terms[t.pk], share=share, kwh=part)
                for (t, share), part in zip(shares, parts, strict=True)
            ]
        )
        lines, subtotal, vat = priced.lines, priced.subtotal, priced.vat
    start_read = end_used.start
    end_read = end_used.end if _read_in(end_used, last) else None
    row = (
        run_id,
        month.client_id,
        month.site_id,
        month.agency_id,
        period,
        tariff.currency if tariff else "",
        tariff.pk if tariff else None,
        last.meter_id,
        start_read.energy_kwh if start_read else None,
        start_read.taken_at if start_read else None,
        end_read.energy_kwh if end_read else None,
        end_read.taken_at if end_read else None,
        kwh,
        Anomaly.ESTIMATED in anomalies,
        deducted,
        sorted(anomalies),
        "",
        subtotal,
        vat,
        subtotal + vat,
        "",
    )
    return _Priced(
        invoice=row,
        lines=lines,
        flagged=bool(anomalies),
        client_id=month.client_id,
        currency=tariff.currency if tariff else "",
        total=subtotal + vat,
        zone=str(month.zone),
        terms_days=tariff.payment_terms_days if tariff else None,
    )


@transaction.atomic
def invoices_draft(
    *,
    period: dt.date,
    site_ids: Sequence[int] | QuerySet[Site],
    run: BillingRun | None = None,
    agency_id: int | None = None,
    issue: bool = False,
    actor: User | None = None,
) -> DraftReport:
    """Draft the month's invoice of each postpaid site among ``site_ids``: one transaction.

    Consumption comes from ``metering.selectors.meters_consumption`` for each meter's time
    at the site. A meter with no reading in the month is estimated from its average of the
    previous 90 days, and a later real reading pays only what the estimates did not. Drafts
    that need a person (``Anomaly``) are drafted anyway and kept from being issued.

    With ``issue``, the ready drafts are written issued (numbers, dates, account entries,
    as ``invoices_issue`` gives them, by ``actor``), and so are drafts of these sites a
    person reviewed earlier: a run that issues as it drafts writes each invoice once.

    Idempotent: a site that has an issued invoice for the month, or a draft a person
    reviewed, is left alone; other drafts are drafted again from today's readings. The
    unique constraint on site and month makes a concurrent second draft fail, never exist.
    Rows are written in bulk (``core.bulk``): everything is checked here first.
    """
    period_check(period)
    if issue and actor is not None and not actor.has_perm("billing.issue_invoice"):
        raise PermissionDenied
    # ``site_ids`` may be a queryset of the sites: a chunk's thousands stay in the database
    # (used as it is: every query below nests it, once).
    sites = site_ids if isinstance(site_ids, QuerySet) else Site.objects.filter(pk__in=site_ids)
    if agency_id is not None:
        sites = sites.filter(agency_id=agency_id)
    months = _site_months(sites, period)
    report = DraftReport()
    if not months:
        return report
    existing = Invoice.objects.filter(site__in=sites, period=period).exclude(
        status=Invoice.Status.CANCELLED
    )
    kept = set(
        existing.filter(~Q(status=Invoice.Status.DRAFT) | Q(reviewed_at__isnull=False)).values_list(
            "site_id", flat=True
        )
    )
    reviewed = (
        list(
            existing.filter(status=Invoice.Status.DRAFT, reviewed_at__isnull=False).values_list(
                "pk", flat=True
            )
        )
        if issue and kept
        else []
    )
    stale = existing.filter(status=Invoice.Status.DRAFT, reviewed_at__isnull=True)
    InvoiceLine.objects.filter(invoice__in=stale).delete()
    stale.delete()
    months = [month for month in months if month.site_id not in kept]
    report.kept = len(kept)
    if months:
        drafts = _drafts_price(months, sites=sites, period=period, run=run)
        report.drafted = len(drafts)
        report.flagged = sum(1 for draft in drafts.values() if draft.flagged)
        report.held = report.flagged if issue else 0
        report.issued += _drafts_write(drafts, issue=issue, actor=actor)
    if reviewed:  # last, like every use of the invoice counter
        report.issued += invoices_issue(invoice_ids=reviewed, actor=actor).issued
    return report


def _drafts_price(
    months: list[_SiteMonth], *, sites: QuerySet[Site], period: dt.date, run: BillingRun | None
) -> dict[int, _Priced]:
    """Each site's month measured and priced, by site id."""
    _measure(
        months,
        MeterInstallation.objects.filter(
            site__in=sites, meter__payment_mode=PaymentMode.POSTPAID
        ).values("meter_id"),
    )
    missing = {
        window.meter_id
        for month in months
        for window in month.windows
        if not _read_in(month.consumption[window.installation_id], window)
    }
    rates: dict[int, Decimal] = {}
    if missing:
        earliest = min(window.start for month in months for window in month.windows)
        rates = meters_daily_average(meter_ids=missing, before=earliest, span=ESTIMATE_HISTORY)
    tariffs = list(
        Tariff.objects.filter(valid_from__lt=_next_month(period))
        .exclude(valid_to__lt=period)
        .prefetch_related("bands")
    )
    terms = {tariff.pk: _terms(tariff) for tariff in tariffs}
    estimates = _estimated_before(sites, period)
    return {
        month.site_id: _draft(
            month,
            period=period,
            tariffs=tariffs,
            terms=terms,
            rates=rates,
            estimates=estimates.get(month.site_id, []),
            run_id=run.pk if run else None,
        )
        for month in months
    }


def _drafts_write(drafts: dict[int, _Priced], *, issue: bool, actor: User | None) -> int:
    """Write the drafts, the ready ones issued when ``issue``; returns how many were."""
    # The invoices' ids are known first, so their lines are written before the numbers are
    # taken: the counter is held for the invoice and entry rows only (and the commit).
    ids = dict(zip(drafts, ids_reserve(Invoice, len(drafts)), strict=True))
    rows_insert(
        InvoiceLine,
        LINE_FIELDS,
        (
            (
                ids[site_id],
                position,
                line.kind,
                line.terms_key,
                line.band_from_kwh,
                line.band_to_kwh,
                line.quantity,
                line.unit_price,
                line.amount,
                line.vat_rate,
            )
            for site_id, draft in drafts.items()
            for position, line in enumerate(draft.lines, start=1)
        ),
    )
    issues = (
        _issues(
            [
                (site_id, draft.zone, draft.terms_days)
                for site_id, draft in drafts.items()
                if not draft.flagged
            ]
        )
        if issue
        else {}
    )
    now = clock.now()
    issued_by = actor.pk if actor else None
    rows_insert(
        Invoice,
        INVOICE_FIELDS,
        (
            (ids[site_id], *_written(now, issues.get(site_id), issued_by), *draft.invoice)
            for site_id, draft in drafts.items()
        ),
    )
    if issues:
        _book(
            now,
            [
                (ids[site_id], draft.client_id, draft.currency, draft.total, issued.number)
                for site_id, issued in issues.items()
                for draft in [drafts[site_id]]
            ],
        )
    return len(issues)


# --- Review and issue ----------------------------------------------------------------------

INVOICE_PREFIX = "FAC"
DEFAULT_TERMS_DAYS = 15  # a ready draft always has its tariff's terms
CREDIT_NOTE_PREFIX = "AV"


def _draft_for(invoice_id: int, actor: User | None) -> Invoice:
    queryset = Invoice.objects.select_for_update()
    if actor is not None:
        queryset = visible_to(queryset, actor)
    invoice = queryset.filter(pk=invoice_id).first()
    if invoice is None:
        raise ApplicationError(_("This invoice does not exist."), status=404)
    if invoice.status != Invoice.Status.DRAFT:
        raise ApplicationError(_("Invoice %s is issued already.") % invoice.number)
    return invoice


@transaction.atomic
def invoice_review(*, invoice_id: int, actor: User, note: str) -> Invoice:
    """A person accepts a flagged draft as it is (an estimate, say): it may then be issued.

    Drafting again after new readings arrived is ``invoice_redraft``; a draft with no
    tariff cannot be accepted: there is nothing to bill yet.
    """
    if not actor.has_perm("billing.review_invoice"):
        raise PermissionDenied
    invoice = _draft_for(invoice_id, actor)
    if not note.strip():
        raise ValidationError({"note": _("Say what you checked.")})
    if Anomaly.NO_TARIFF in invoice.anomalies:
        raise ValidationError(
            {"note": _("There is no tariff for this site's category: add one, then draft again.")}
        )
    invoice.reviewed_by = actor
    invoice.reviewed_at = clock.now()
    invoice.review_note = note.strip()[:300]
    invoice.save(update_fields=["reviewed_by", "reviewed_at", "review_note", "updated_at"])
    return invoice


@transaction.atomic
def invoice_redraft(*, invoice_id: int, actor: User | None) -> Invoice:
    """Draft a site's month again from today's readings and tariffs (a review is undone)."""
    invoice = _draft_for(invoice_id, actor)
    site_id, period, run = invoice.site_id, invoice.period, invoice.run
    InvoiceLine.objects.filter(invoice=invoice).delete()
    invoice.delete()
    invoices_draft(period=period, site_ids=[site_id], run=run)
    redrafted = Invoice.objects.filter(
        site_id=site_id, period=period, status=Invoice.Status.DRAFT
    ).first()
    if redrafted is None:
        raise ApplicationError(_("This site has nothing to bill for the month any more."))
    return redrafted


@dataclass
class IssueReport:
    issued: int = 0
    held: int = 0  # drafts with anomalies nobody reviewed yet
    numbers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Issue:
    """What issuing gives an invoice: its number (``prefix`` and counter value) and dates."""

    prefix: str
    value: int
    issue_date: dt.date
    due_date: dt.date

    @property
    def number(self) -> str:
        return f"{self.prefix}{self.value:06d}"


def _issues(
    invoices: Sequence[tuple[int, str, int | None]],
) -> dict[int, _Issue]:
    """Numbers and dates for ``invoices`` issued now: (key, agency time zone, payment
    terms in days), numbered in the order given.

    The numbers (``FAC-<year>-<n>``, gap-free per year of issue) are taken from the
    counter, which stays locked until the caller's transaction ends: call this as late as
    possible, and a failure gives them all back.
    """
    today = {zone: clock.today(zone) for zone in {zone for _key, zone, _terms in invoices}}
    groups: dict[tuple[dt.date, dt.date], list[int]] = defaultdict(list)
    for key, zone, terms in invoices:
        issued_on = today[zone]
        groups[(issued_on, issued_on + dt.timedelta(days=terms or DEFAULT_TERMS_DAYS))].append(key)
    issues: dict[int, _Issue] = {}
    # Each year's numbers in one counter update (a run's invoices share a handful of dates).
    by_year: dict[int, list[tuple[int, dt.date, dt.date]]] = defaultdict(list)
    for (issue_date, due_date), keys in sorted(groups.items()):
        by_year[issue_date.year].extend((key, issue_date, due_date) for key in keys)
    for year, numbered in by_year.items():
        first = sequence_reserve(key=f"invoice-{year}", count=len(numbered))
        for offset, (key, issue_date, due_date) in enumerate(numbered):
            issues[key] = _Issue(f"{INVOICE_PREFIX}-{year}-", first + offset, issue_date, due_date)
    return issues


def _written(now: dt.datetime, issue: _Issue | None, issued_by: int | None) -> tuple:
    """The first values of an invoice row (INVOICE_FIELDS): a draft's, or an issued one's."""
    if issue is None:
        return (now, now, "", Invoice.Status.DRAFT.value, None, None, None, None)
    return (
        now,
        now,
        issue.number,
        Invoice.Status.ISSUED.value,
        now,
        issued_by,
        issue.issue_date,
        issue.due_date,
    )


def _book(now: dt.datetime, invoices: Sequence[tuple[int, int, str, Decimal, str]]) -> None:
    """The account entries of issued invoices (id, client, currency, total, number), and
    their PDFs and notices once the transaction commits."""
    rows_insert(
        AccountEntry,
        ("client_id", "currency", "kind", "reference", "booked_at", "amount", "invoice_id"),
        (
            (client_id, currency, AccountEntry.Kind.INVOICE.value, number, now, total, pk)
            for pk, client_id, currency, total, number in invoices
        ),
    )
    issued_ids = [row[0] for row in invoices]
    transaction.on_commit(lambda: tasks.invoices_deliver.delay(issued_ids))


@transaction.atomic
def invoices_issue(*, invoice_ids: Sequence[int], actor: User | None) -> IssueReport:
    """Issue the ready drafts among ``invoice_ids``: numbers, dates, account entries.

    One transaction: the numbers (``FAC-<year>-<n>``, gap-free per year of issue, given in
    id order) are taken from the counter in that transaction, so a failure gives them all
    back. Drafts with an unreviewed anomaly are held, not issued. Issuing twice issues
    nothing twice (only drafts are issued). The PDFs and the clients' notices follow after
    commit.
    """
    if actor is not None and not actor.has_perm("billing.issue_invoice"):
        raise PermissionDenied
    queryset = Invoice.objects.select_for_update(of=("self",)).filter(
        pk__in=invoice_ids, status=Invoice.Status.DRAFT
    )
    if actor is not None:
        queryset = visible_to(queryset, actor)
    drafts = list(
        queryset.order_by("pk").values_list(
            "pk",
            "client_id",
            "currency",
            "total",
            "anomalies",
            "reviewed_at",
            "agency__province__time_zone",
            "tariff__payment_terms_days",
        )
    )
    ready = [row for row in drafts if not row[4] or row[5] is not None]
    report = IssueReport(held=len(drafts) - len(ready))
    if not ready:
        return report
    now = clock.now()
    issues = _issues([(pk, zone, terms) for pk, *_rest, zone, terms in ready])
    # Invoices issued on the same day with the same terms share their dates: one UPDATE
    # each (a run has a handful), which also numbers them, in id order as ``_issues`` did.
    groups: dict[tuple[dt.date, dt.date], list[int]] = defaultdict(list)
    for pk, issue in issues.items():
        groups[(issue.issue_date, issue.due_date)].append(pk)
    for (issue_date, due_date), ids in groups.items():
        numbers_assign(
            model=Invoice,
            ids=ids,
            prefix=issues[ids[0]].prefix,
            first=issues[ids[0]].value,
            also={
                "status": Invoice.Status.ISSUED.value,
                "issued_at": now,
                "issued_by_id": actor.pk if actor else None,
                "issue_date": issue_date,
                "due_date": due_date,
                "updated_at": now,
            },
        )
    _book(
        now,
        [
            (pk, client_id, currency, total, issues[pk].number)
            for pk, client_id, currency, total, *_rest in ready
        ],
    )
    report.issued = len(ready)
    report.numbers = [issues[row[0]].number for row in ready]
    return report


def invoice_issue(*, invoice_id: int, actor: User | None) -> Invoice:
    """Issue one draft (see ``invoices_issue``); a held draft says why."""
    report = invoices_issue(invoice_ids=[invoice_id], actor=actor)
    invoice = Invoice.objects.get(pk=invoice_id)
    if not report.issued:
        if invoice.status != Invoice.Status.DRAFT:
            raise ApplicationError(_("Invoice %s is issued already.") % invoice.number)
        labels = ", ".join(str(Anomaly(code).label) for code in invoice.anomalies)
        raise ApplicationError(_("This draft needs a review before it is issued: %s.") % labels)
    return invoice


# --- Status ----------------------------------------------------------------------------------


@transaction.atomic(savepoint=False)
def invoices_status_refresh(*, invoice_ids: Iterable[int]) -> None:
    """Set each issued invoice's status from what is left to pay on it (the one rule,
    ``selectors.invoice_status``): after anything that books a credit note, a payment or
    its reversal on an invoice, in the same transaction. Drafts are left alone, and a
    cancelled invoice stays cancelled."""
    ids = list(invoice_ids)
    if not ids:
        return
    by_status: dict[str, list[int]] = defaultdict(list)
    for pk, status in invoices_statuses(invoice_ids=ids).items():
        by_status[status].append(pk)
    now = clock.now()
    for status, pks in by_status.items():
        Invoice.objects.filter(pk__in=pks).exclude(
            status__in=(status, Invoice.Status.DRAFT, Invoice.Status.CANCELLED)
        ).update(status=status, updated_at=now)


# --- Credit notes --------------------------------------------------------------------------


@transaction.atomic
def credit_note_issue(
    *, invoice_id: int, reason: str, actor: User | None, amount: Decimal | None = None
) -> CreditNote:
    """Take back ``amount`` (VAT included; all that is left when None) of an issued invoice.

    The only way to cancel an invoice: a credit note for everything not yet credited
    cancels it, and the site's month may then be drafted again; after a partial one, the
    status follows what is left to pay (``invoices_status_refresh``). The credit note gets its
    own gap-free number (``AV-<year>-<n>``) and an account entry in the same transaction;
    what the client had paid on the invoice stays on their account as credit.
    """
    if actor is not None and not actor.has_perm("billing.add_creditnote"):
        raise PermissionDenied
    if not reason.strip():
        raise ValidationError({"reason": _("Say why this invoice is credited.")})
    queryset = Invoice.objects.select_for_update().select_related("agency__province")
    if actor is not None:
        queryset = visible_to(queryset, actor)
    invoice = queryset.filter(pk=invoice_id).first()
    if invoice is None:
        raise ApplicationError(_("This invoice does not exist."), status=404)
    if invoice.status == Invoice.Status.DRAFT:
        raise ApplicationError(_("A draft is not credited: draft it again or leave it."))
    if invoice.status == Invoice.Status.CANCELLED:
        raise ApplicationError(_("Invoice %s is cancelled already.") % invoice.number)
    credited = invoice.credit_notes.aggregate(total=Sum("total"))["total"] or Decimal(0)
    creditable = invoice.total - credited
    if amount is None:
        amount = creditable
    if not amount.is_finite() or amount <= 0:
        raise ValidationError({"amount": _("Enter an amount above zero.")})
    amount = round_money(amount)
    if amount > creditable:
        raise ValidationError(
            {
                "amount": _("At most %(amount)s %(currency)s of this invoice can be credited.")
                % {
                    "amount": number_format(creditable, 2, force_grouping=True),
                    "currency": invoice.currency,
                }
            }
        )
    vat = round_money(amount * invoice.vat_amount / invoice.total) if invoice.total else Decimal(0)
    now = clock.now()
    issue_date = clock.today(invoice.agency.time_zone)
    year = issue_date.year
    note = CreditNote.objects.create(
        number=formatted_number(prefix=f"{CREDIT_NOTE_PREFIX}-{year}", key=f"credit-note-{year}"),
        invoice=invoice,
        client_id=invoice.client_id,
        agency_id=invoice.agency_id,
        currency=invoice.currency,
        reason=reason.strip()[:300],
        subtotal=amount - vat,
        vat_amount=vat,
        total=amount,
        issued_at=now,
        issue_date=issue_date,
        issued_by=actor,
    )
    AccountEntry.objects.create(
        client_id=invoice.client_id,
        currency=invoice.currency,
        kind=AccountEntry.Kind.CREDIT_NOTE,
        reference=note.number,
        booked_at=now,
        amount=-amount,
        invoice=invoice,
        credit_note=note,
    )
    # Cancelled when all is credited, else issued, partially paid or paid: the one rule.
    invoices_status_refresh(invoice_ids=[invoice.pk])
    transaction.on_commit(lambda: tasks.credit_note_document.delay(note.pk))
    from mwolo.dunning.services import overdue_cleared_on_commit  # dunning imports billing

    overdue_cleared_on_commit(client_id=invoice.client_id)
    return note


# --- Billing runs --------------------------------------------------------------------------

CHUNK_SIZE = 5000  # sites per task: a few seconds of work, one transaction


def _site_chunks(agency_id: int | None, chunk_size: int) -> list[list[int]]:
    """Ranges ``[first id, last id]`` of the candidate sites, ``chunk_size`` sites each."""
    sites = Site.objects.filter(meters__payment_mode=PaymentMode.POSTPAID) | Site.objects.filter(
        installations__meter__payment_mode=PaymentMode.POSTPAID
    )
    if agency_id is not None:
        sites = sites.filter(agency_id=agency_id)
    ids = sorted(set(sites.values_list("pk", flat=True)))
    return [
        [ids[i], ids[min(i + chunk_size, len(ids)) - 1]] for i in range(0, len(ids), chunk_size)
    ]


@transaction.atomic
def billing_run_start(
    *,
    period: dt.date,
    agency_id: int | None,
    actor: User | None,
    issue: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> BillingRun:
    """Open (or re-open) the run of a month, for one agency or all, and cut it in chunks.

    Starting the same run again re-drafts it from today's readings, keeping what is
    issued: that is how a run interrupted by a crash is finished. The chunks are then
    drafted by ``billing_run_draft_chunk``, in parallel tasks or one after the other; with
    ``issue``, each chunk issues its ready drafts as it writes them.
    """
    if actor is not None and not actor.has_perm("billing.add_billingrun"):
        raise PermissionDenied
    if issue and actor is not None and not actor.has_perm("billing.issue_invoice"):
        raise PermissionDenied
    period_check(period)
    if actor is not None and agency_id is None and not sees_all_agencies(actor):
        raise ValidationError({"agency": _("Choose your agency.")})
    if actor is not None and agency_id is not None and not can_act_for_agency(actor, agency_id):
        raise ValidationError({"agency": _("You cannot bill for this agency.")})
    agency = Agency.objects.filter(pk=agency_id).first() if agency_id is not None else None
    if agency_id is not None and agency is None:
        raise ValidationError({"agency": _("This agency does not exist.")})
    run, _created = BillingRun.objects.select_for_update().get_or_create(
        period=period, agency=agency, defaults={"created_by": actor}
    )
    run.status = BillingRun.Status.DRAFTING
    run.chunks = _site_chunks(agency_id, chunk_size)
    run.chunks_drafted = []
    run.issue_when_drafted = issue
    run.drafted_at = None
    run.save()
    return run


@transaction.atomic
def billing_run_draft_chunk(*, run_id: int, index: int) -> DraftReport:
    """Draft one chunk of a run (one transaction); the last chunk done closes the drafting.

    A run started with ``issue`` issues the chunk's ready drafts in the same transaction
    (see ``invoices_draft``), by the person who started it; its last chunk closes it.
    Re-running a chunk drafts it again (see ``invoices_draft``), so a task retried after
    a crash is harmless.
    """
    run = BillingRun.objects.select_related("created_by").get(pk=run_id)
    first, last = run.chunks[index]
    report = invoices_draft(
        period=run.period,
        site_ids=Site.objects.filter(pk__gte=first, pk__lte=last),
        run=run,
        agency_id=run.agency_id,
        issue=run.issue_when_drafted,
        actor=run.created_by,
    )
    # Parallel chunks only wait for each other's bookkeeping (and, issuing, for the
    # invoice counter that ``invoices_draft`` holds until this transaction ends).
    locked = BillingRun.objects.select_for_update().get(pk=run_id)
    locked.chunks_drafted = sorted({*locked.chunks_drafted, index})
    if locked.status == BillingRun.Status.DRAFTING and len(locked.chunks_drafted) == len(
        locked.chunks
    ):
        locked.drafted_at = clock.now()
        if locked.issue_when_drafted:
            locked.status = BillingRun.Status.ISSUED
            locked.issued_at = locked.drafted_at
        else:
            locked.status = BillingRun.Status.DRAFTED
    locked.save(update_fields=["chunks_drafted", "status", "drafted_at", "issued_at", "updated_at"])
    return report


def _run_drafts(run: BillingRun, index: int | None = None) -> QuerySet[Invoice]:
    drafts = Invoice.objects.filter(period=run.period, status=Invoice.Status.DRAFT)
    if run.agency_id is not None:
        drafts = drafts.filter(agency_id=run.agency_id)
    if index is not None:
        first, last = run.chunks[index]
        drafts = drafts.filter(site_id__gte=first, site_id__lte=last)
    return drafts


@transaction.atomic
def billing_run_issue_chunk(*, run_id: int, index: int, actor: User | None) -> IssueReport:
    """Issue the ready drafts of one chunk of a drafted run (see ``invoices_issue``)."""
    run = BillingRun.objects.get(pk=run_id)
    if run.status == BillingRun.Status.DRAFTING:
        raise ApplicationError(_("This run is still drafting: issue it once it is drafted."))
    ids = list(_run_drafts(run, index).values_list("pk", flat=True))
    report = invoices_issue(invoice_ids=ids, actor=actor) if ids else IssueReport()
    # Locked after the invoice counter, as a chunk that issues as it drafts does.
    locked = BillingRun.objects.select_for_update().get(pk=run_id)
    if locked.status == BillingRun.Status.DRAFTING:
        return report  # started again meanwhile: its chunks close it
    if not _run_drafts(locked).filter(Q(anomalies=[]) | Q(reviewed_at__isnull=False)).exists():
        locked.status = BillingRun.Status.ISSUED
        locked.issued_at = clock.now()
    elif locked.status == BillingRun.Status.DRAFTED:
        locked.status = BillingRun.Status.ISSUING
    locked.save(update_fields=["status", "issued_at", "updated_at"])
    return report


def billing_run_launch(
    *, period: dt.date, agency_id: int | None, actor: User | None, issue: bool = False
) -> BillingRun:
    """Start a run (``billing_run_start``) and hand its chunks to the Celery workers."""
    with transaction.atomic():
        run = billing_run_start(period=period, agency_id=agency_id, actor=actor, issue=issue)
        chunks = len(run.chunks)
        transaction.on_commit(
            lambda: [tasks.billing_run_draft_chunk.delay(run.pk, index) for index in range(chunks)]
        )
    return run


def billing_run_issue(*, run_id: int, actor: User) -> BillingRun:
    """Issue the ready drafts of a drafted run, one Celery task per chunk."""
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run_id)
        if not actor.has_perm("billing.issue_invoice"):
            raise PermissionDenied
        if run.status == BillingRun.Status.DRAFTING:
            raise ApplicationError(_("This run is still drafting: issue it once it is drafted."))
        chunks = len(run.chunks)
        transaction.on_commit(
            lambda: [
                tasks.billing_run_issue_chunk.delay(run.pk, index, actor.pk)
                for index in range(chunks)
            ]
        )
    return run
