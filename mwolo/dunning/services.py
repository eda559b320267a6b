"""Everything dunning changes: the daily pass, reconnections, promises, exemptions, overrides.

The ladder (see ``docs/dunning.md``): each overdue invoice walks its policy's steps in
order — reminders, the final notice, the disconnection — one step a day at most, each
step only on or after its day (counted from the due date) and at least its gap after the
previous step of that invoice (a day at least, whatever the policy says). So an invoice
found 20 days late gets the first reminder today and the disconnection only days after its
final notice, never at once, and running a day again takes no second step.

- ``dunning_run``: the daily pass, in bulk (a fixed number of queries per chunk of
  clients, each chunk one transaction). Running it twice for a day does nothing twice:
  a step is a ``Reminder`` row, unique per invoice and step, written in the same
  transaction as its message.
- ``_Context.cut_until``: the one rule of when a meter may go off for dunning (the day's
  allowed window), carried by the commands as their deadline.
- ``overdue_cleared_check``: reconnects what dunning cut once nothing is overdue;
  ``overdue_cleared_on_commit`` queues it after a payment or a credit note commits, and
  each pass runs it for every client cut.
- ``promise_to_pay_record``, ``dunning_exemption_grant`` / ``_end``,
  ``disconnection_reconnect``: what staff do, each with a reason, kept on the record.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from mwolo.accounts.models import User
from mwolo.agencies.models import Agency
from mwolo.billing.models import AccountEntry, Currency, Invoice
from mwolo.billing.pricing import round_money
from mwolo.core import clock
from mwolo.core.bulk import among, rows_insert
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import visible_to
from mwolo.crm.models import Client, Site
from mwolo.metering.models import Meter, MeterCommand, PaymentMode, Relay
from mwolo.metering.services import meters_relay_request
from mwolo.notifications.services import Notice, notifications_send_bulk

from .models import (
    CHANNELS_OF_STEP,
    Action,
    Disconnection,
    DisconnectionMeter,
    DunningExemption,
    DunningPolicy,
    DunningStep,
    PromiseToPay,
    PublicHoliday,
    Reminder,
)
from .selectors import (
    NOT_STARTED,
    OverdueInvoice,
    Policies,
    invoices_overdue,
    open_disconnections,
)

CHUNK_SIZE = 5000  # clients per transaction: a few seconds of work
RUN_TIME = dt.time(9, 0)  # when beat runs the pass in each zone; a past day runs "at" it
HOLIDAYS_AHEAD = 120  # days of holidays read to date a final notice's disconnection
OVERRIDE_PERMISSION = "dunning.override"


# --- Policies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSpec:
    position: int
    days_after_due: int
    action: str
    min_days_after_previous: int = 1


def policy_steps_check(steps: Sequence[StepSpec]) -> None:
    """A ladder that can be walked: steps in order of position, their days not going
    back, each at least a day after the previous one, one final notice at most and a
    disconnection only right after it, last.

    Raises ``ValidationError`` naming what is wrong.
    """
    if not steps:
        raise ValidationError(_("A policy needs at least one step."))
    ordered = sorted(steps, key=lambda step: step.position)
    if len({step.position for step in ordered}) != len(ordered):
        raise ValidationError(_("Two steps have the same position."))
    for step in ordered:
        if step.min_days_after_previous < 1:
            raise ValidationError(
                _("Step %(position)d: at least 1 day after the previous step.")
                % {"position": step.position}
            )
    for before, after in pairwise(ordered):
        if after.days_after_due < before.days_after_due:
            raise ValidationError(
                _("Step %(position)d comes before step %(previous)d in days: put them in order.")
                % {"position": after.position, "previous": before.position}
            )
    actions = [step.action for step in ordered]
    if actions.count(Action.FINAL_NOTICE) > 1 or actions.count(Action.DISCONNECT) > 1:
        raise ValidationError(_("A policy has at most one final notice and one disconnection."))
    if Action.DISCONNECT in actions:
        at = actions.index(Action.DISCONNECT)
        if at != len(actions) - 1 or at == 0 or actions[at - 1] != Action.FINAL_NOTICE:
            raise ValidationError(
                _("The disconnection is the last step, right after the final notice.")
            )
    if Action.FINAL_NOTICE in actions and Action.DISCONNECT not in actions:
        raise ValidationError(_("A final notice announces a disconnection: add it after."))


# --- The pass ------------------------------------------------------------------------------


@dataclass
class DunningReport:
    as_of: dt.date
    invoices: int = 0  # overdue invoices looked at
    reminders: int = 0
    final_notices: int = 0
    disconnections: int = 0  # sites cut (new episodes)
    joined: int = 0  # disconnection steps of sites already cut
    waiting_quiet_day: int = 0  # cuts due but not now (weekend, holiday, hour, day named)
    waiting_no_meter: int = 0  # disconnections due at a site with no meter dunning may cut
    exempt: int = 0  # final notices or disconnections an exemption holds back
    paused: int = 0  # invoices under a promise to pay or a hold
    below_minimum: int = 0
    reconnections: int = 0
    cuts_resent: int = 0  # meters of sites cut, still on, sent a disconnect command again
    promises_kept: int = 0
    promises_broken: int = 0
    messages: int = 0


@dataclass
class _Context:
    """What a pass reads once: the day, its moment per zone, policies, holidays."""

    as_of: dt.date
    zones: dict[int, str]  # agency id -> time zone
    moments: dict[str, dt.datetime]  # zone -> the moment the pass runs there
    policies: Policies
    holidays: set[dt.date]

    def policy(self, agency_id: int, category: str) -> DunningPolicy | None:
        return self.policies.for_invoice(agency_id, category)

    def moment(self, agency_id: int) -> dt.datetime:
        return self.moments[self.zones[agency_id]]

    def quiet(self, policy: DunningPolicy, day: dt.date) -> bool:
        return (policy.quiet_weekends and day.weekday() >= 5) or (
            policy.quiet_public_holidays and day in self.holidays
        )

    def cut_until(self, policy: DunningPolicy, agency_id: int) -> dt.datetime | None:
        """The end of the day's window for disconnections, if the pass runs inside it;
        None when nobody may be cut now.

        The one rule of when a meter goes off for dunning: on a day that is not quiet,
        before the policy's cut-off hour (the end of the day without one) in the agency's
        zone. The meters' commands carry this end as their deadline (see
        ``metering.services.meters_relay_request``), so the cut happens inside the window
        or waits for the next allowed day's pass.
        """
        if self.quiet(policy, self.as_of):
            return None
        zone = ZoneInfo(self.zones[agency_id])
        cutoff = policy.disconnection_cutoff
        if cutoff is None:
            end = dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        else:
            end = dt.datetime.combine(self.as_of, cutoff, tzinfo=zone)
        return end if self.moment(agency_id) < end else None

    def disconnection_date(self, policy: DunningPolicy, invoice: OverdueInvoice) -> dt.date:
        """The first day the disconnection may come after a final notice sent today."""
        steps = self.policies.steps(policy)
        cut = next(step for step in steps if step.action == Action.DISCONNECT)
        day = max(
            invoice.due_date + dt.timedelta(days=cut.days_after_due),
            self.as_of + dt.timedelta(days=max(cut.min_days_after_previous, 1)),
        )
        while self.quiet(policy, day):
            day += dt.timedelta(days=1)
        return day


def _moment(as_of: dt.date, zone: str, now: dt.datetime | None) -> dt.datetime:
    if now is not None:
        return now
    if as_of == clock.today(zone):
        return clock.now()
    return dt.datetime.combine(as_of, RUN_TIME, tzinfo=ZoneInfo(zone))


def _context(
    *, as_of: dt.date, agency_ids: Iterable[int] | None, now: dt.datetime | None
) -> _Context:
    agencies = Agency.objects.all()
    if agency_ids is not None:
        agencies = agencies.filter(pk__in=list(agency_ids))
    zones = dict(agencies.values_list("pk", "province__time_zone"))
    return _Context(
        as_of=as_of,
        zones=zones,
        moments={zone: _moment(as_of, zone, now) for zone in set(zones.values())},
        policies=Policies(),
        holidays=set(
            PublicHoliday.objects.filter(
                day__gte=as_of, day__lte=as_of + dt.timedelta(days=HOLIDAYS_AHEAD)
            ).values_list("day", flat=True)
        ),
    )


@dataclass
class _Shelter:
    """Who the ladder must spare today, for a set of clients."""

    promised_clients: set[int] = field(default_factory=set)  # every invoice covered
    promised_invoices: set[int] = field(default_factory=set)
    promise_of: dict[int, int] = field(default_factory=dict)  # client -> a promise id
    held_clients: set[int] = field(default_factory=set)
    held_sites: set[int] = field(default_factory=set)
    spared_clients: set[int] = field(default_factory=set)  # no disconnection
    spared_sites: set[int] = field(default_factory=set)

    def promised(self, invoice: OverdueInvoice) -> bool:
        return invoice.client_id in self.promised_clients or invoice.pk in self.promised_invoices

    def held(self, client_id: int, site_id: int) -> bool:
        return client_id in self.held_clients or site_id in self.held_sites

    def spared(self, client_id: int, site_id: int) -> bool:
        return (
            self.held(client_id, site_id)
            or client_id in self.spared_clients
            or site_id in self.spared_sites
        )


@dataclass(frozen=True)
class _Clients:
    """The clients a step works on: a range of ids (a chunk, or one client), or a query of
    ids. Filters, not lists: a list of thousands of ids costs more than the query."""

    lo: int = 0
    hi: int = 0
    query: QuerySet | None = None

    @classmethod
    def one(cls, client_id: int) -> "_Clients":
        return cls(lo=client_id, hi=client_id)

    def where(self, field: str = "client_id") -> Q:
        if self.query is not None:
            return Q(**{f"{field}__in": self.query})
        return Q(**{f"{field}__gte": self.lo, f"{field}__lte": self.hi})


def _lock_clients(clients: _Clients) -> None:
    """Lock the clients' rows, in id order: a payment's reconnection check and a pass
    working on the same client wait for each other, then see what the other did."""
    list(
        Client.objects.select_for_update()
        .filter(clients.where("pk"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _shelter(clients: _Clients, as_of: dt.date) -> _Shelter:
    shelter = _Shelter()
    for pk, client_id, invoice_id in PromiseToPay.objects.filter(
        clients.where(), status=PromiseToPay.Status.ACTIVE, promised_on__gte=as_of
    ).values_list("pk", "client_id", "invoice_id"):
        if invoice_id is None:
            shelter.promised_clients.add(client_id)
        else:
            shelter.promised_invoices.add(invoice_id)
        shelter.promise_of.setdefault(client_id, pk)
    for client_id, site_id, effect in (
        DunningExemption.objects.filter(clients.where(), starts_on__lte=as_of)
        .exclude(ends_on__lt=as_of)
        .values_list("client_id", "site_id", "effect")
    ):
        hold = effect == DunningExemption.Effect.HOLD
        if site_id is None:
            (shelter.held_clients if hold else shelter.spared_clients).add(client_id)
        else:
            (shelter.held_sites if hold else shelter.spared_sites).add(site_id)
    return shelter


def _above_minimum(context: _Context, invoice: OverdueInvoice) -> bool:
    policy = context.policy(invoice.agency_id, invoice.category)
    return policy is not None and invoice.open_amount > policy.minimum(invoice.currency)


def _overdue_totals(invoices: Iterable[OverdueInvoice]) -> dict[tuple[int, str], Decimal]:
    """What each client owes overdue, per currency."""
    totals: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        if invoice.open_amount > 0:
            totals[(invoice.client_id, invoice.currency)] += invoice.open_amount
    return totals


def _next_step(
    context: _Context, policy: DunningPolicy, invoice: OverdueInvoice
) -> DunningStep | None:
    """The step this invoice is due for today, if any (see the module docstring).

    The next step is the first of its policy's ladder, as it is today, ranked above the
    furthest step the invoice took (its n-th reminder, its final notice: ``Rank``), on
    whatever ladder it took it: a policy edited, or replaced, under an invoice goes on
    from there, never back, never taking a step twice.
    """
    ranks = context.policies.ranks
    steps = context.policies.steps(policy)
    reached = ranks.get(invoice.last_step_id, NOT_STARTED) if invoice.last_step_id else NOT_STARTED
    following = [step for step in steps if ranks[step.pk] > reached]
    if not following:
        return None
    step = following[0]
    if step.action == Action.DISCONNECT and not invoice.noticed:
        # Never cut without a final notice first (a ladder saved before it was checked).
        step = next(s for s in steps if s.action == Action.FINAL_NOTICE)
    if invoice.days_overdue(context.as_of) < step.days_after_due:
        return None
    # One step per invoice per day, whatever the policy says (a gap of 0 saved before it
    # was refused, a pass run twice): so a cut never comes on its final notice's day, and
    # running a day again, or an earlier day after a later one, takes nothing more.
    gap = dt.timedelta(days=max(step.min_days_after_previous, 1))
    if invoice.last_sent_on is not None and context.as_of < invoice.last_sent_on + gap:
        return None
    return step


def _remind_ordinal(context: _Context, step: DunningStep) -> int:
    """1 for the policy's first reminder, 2 for the second…"""
    return context.policies.ranks[step.pk][1]


@dataclass
class _Cut:
    """A site to disconnect today: the invoices whose ladder got there, or an episode a
    broken promise had ended."""

    site_id: int
    site_reference: str
    client_id: int
    agency_id: int
    currency: str
    invoice_id: int  # the first invoice whose ladder got there, or the resumed episode's
    until: dt.datetime  # the end of the day's window for disconnections
    invoices: list[tuple[OverdueInvoice, DunningStep]] = field(default_factory=list)
    resumes: int | None = None


def _chunk_run(context: _Context, clients: _Clients, report: DunningReport) -> None:
    """One transaction: the ladder of every overdue invoice of these clients."""
    _lock_clients(clients)
    as_of = context.as_of
    invoices = invoices_overdue(
        as_of=as_of, where=clients.where() & Q(agency_id__in=list(context.zones))
    )
    shelter = _shelter(clients, as_of)
    cut_sites = open_disconnections(where=clients.where())
    totals = _overdue_totals(invoices)
    now = clock.now()
    reminders: list[tuple] = []  # values of Reminder rows, disconnection filled later
    notices: list[Notice] = []
    cuts: dict[int, _Cut] = {}
    for invoice in invoices:
        report.invoices += 1
        policy = context.policy(invoice.agency_id, invoice.category)
        if policy is None:
            continue
        if invoice.open_amount <= policy.minimum(invoice.currency):
            report.below_minimum += 1
            continue
        if shelter.promised(invoice) or shelter.held(invoice.client_id, invoice.site_id):
            report.paused += 1
            continue
        step = _next_step(context, policy, invoice)
        if step is None:
            continue
        if step.action != Action.REMIND and shelter.spared(invoice.client_id, invoice.site_id):
            report.exempt += 1
            continue
        if step.action == Action.DISCONNECT:
            # Inside the day's window, and never before the day the final notice named
            # (the policy may have moved the cut earlier since).
            until = context.cut_until(policy, invoice.agency_id)
            if until is None or as_of < (invoice.cut_announced_on or as_of):
                report.waiting_quiet_day += 1
                continue
            if invoice.site_id in cut_sites:
                reminders.append(
                    _reminder_row(invoice, step, as_of, now, cut_sites[invoice.site_id])
                )
                report.joined += 1
                continue
            cut = cuts.setdefault(
                invoice.site_id,
                _Cut(
                    site_id=invoice.site_id,
                    site_reference=invoice.site_reference,
                    client_id=invoice.client_id,
                    agency_id=invoice.agency_id,
                    currency=invoice.currency,
                    invoice_id=invoice.pk,
                    until=until,
                ),
            )
            cut.invoices.append((invoice, step))
            continue
        if step.action == Action.REMIND:
            reminders.append(_reminder_row(invoice, step, as_of, now, None))
            report.reminders += 1
            context_values: dict[str, object] = {
                "invoice_number": invoice.number,
                "amount_due": invoice.open_amount,
                "currency": invoice.currency,
                "due_date": invoice.due_date,
                "days_overdue": invoice.days_overdue(as_of),
                "step": _remind_ordinal(context, step),
            }
        else:
            cut_on = context.disconnection_date(policy, invoice)
            reminders.append(
                _reminder_row(invoice, step, as_of, now, None, cut_announced_on=cut_on)
            )
            report.final_notices += 1
            context_values = {
                "invoice_number": invoice.number,
                "amount_due": invoice.open_amount,
                "currency": invoice.currency,
                "disconnection_date": cut_on,
            }
        notices.append(
            Notice(
                client_id=invoice.client_id,
                event=step.event,
                context=context_values,
                idempotency_key=f"dunning:{invoice.pk}:{step.pk}",
                related=(Invoice, invoice.pk),
                channels=CHANNELS_OF_STEP[step.channel],
            )
        )
    _resumed_cuts(context, clients, invoices, shelter, cut_sites, cuts)
    notices.extend(_cuts_make(context, clients, cuts, totals, reminders, now, report))
    rows_insert(
        Reminder,
        (
            "invoice_id",
            "step_id",
            "sent_on",
            "created_at",
            "days_overdue",
            "amount_due",
            "currency",
            "disconnection_id",
            "cut_announced_on",
        ),
        reminders,
    )
    report.messages += len(notifications_send_bulk(notices=notices))


def _reminder_row(
    invoice: OverdueInvoice,
    step: DunningStep,
    as_of: dt.date,
    now: dt.datetime,
    disconnection_id: int | None,
    *,
    cut_announced_on: dt.date | None = None,
) -> tuple:
    return (
        invoice.pk,
        step.pk,
        as_of,
        now,
        invoice.days_overdue(as_of),
        invoice.open_amount,
        invoice.currency,
        disconnection_id,
        cut_announced_on,
    )


def _resumed_cuts(
    context: _Context,
    clients: _Clients,
    invoices: Sequence[OverdueInvoice],
    shelter: _Shelter,
    cut_sites: dict[int, int],
    cuts: dict[int, _Cut],
) -> None:
    """Sites that a promise reconnected, cut again now that the promise is broken — unless
    the client no longer owes anything overdue, is sheltered, or the site was cut since."""
    pending = list(
        Disconnection.objects.filter(
            clients.where(),
            closed_reason=Disconnection.ClosedReason.PROMISE,
            promise__status=PromiseToPay.Status.BROKEN,
            resumed_by__isnull=True,
        ).values_list(
            "pk",
            "site_id",
            "site__reference",
            "site__category",
            "client_id",
            "agency_id",
            "invoice_id",
            "currency",
        )
    )
    if not pending:
        return
    latest = dict(
        Disconnection.objects.filter(among("site_id", {row[1] for row in pending}))
        .values("site_id")
        .annotate(last=Max("pk"))
        .values_list("site_id", "last")
    )
    owing = {
        invoice.client_id
        for invoice in invoices
        if _above_minimum(context, invoice) and not shelter.promised(invoice)
    }
    for pk, site_id, reference, category, client_id, agency_id, invoice_id, currency in pending:
        policy = context.policy(agency_id, category)
        if (
            policy is None
            or latest[site_id] != pk
            or site_id in cut_sites
            or site_id in cuts
            or client_id not in owing
            or shelter.spared(client_id, site_id)
        ):
            continue
        until = context.cut_until(policy, agency_id)
        if until is None:
            continue
        cuts[site_id] = _Cut(
            site_id=site_id,
            site_reference=reference,
            client_id=client_id,
            agency_id=agency_id,
            currency=currency,
            invoice_id=invoice_id,
            until=until,
            resumes=pk,
        )


def _cut_meters(site_ids: Collection[int]) -> dict[int, list[int]]:
    """The meters dunning may cut at each site: installed postpaid meters, except those a
    person turned off (a staff decision is never taken over, nor later undone, by us)."""
    meters: dict[int, list[int]] = defaultdict(list)
    for pk, site_id in (
        Meter.objects.filter(among("site_id", site_ids), payment_mode=PaymentMode.POSTPAID)
        .exclude(relay_wanted=Relay.OFF, relay_wanted_reason=Meter.RelayReason.STAFF)
        .order_by("pk")
        .values_list("pk", "site_id")
    ):
        meters[site_id].append(pk)
    return meters


def _meters_cut(
    windows: dict[tuple[dt.datetime, dt.datetime], list[int]], *, reason: str
) -> dict[int, MeterCommand | None]:
    """Switch these meters off for dunning, each group only until the end of its window
    (its deadline), decided at the moment the pass runs in its zone: one decision per
    window, the earliest first. Meter id -> its command (None: it reports off already)."""
    if len(windows) > 1:
        # All locked at once, in id order, as the head-end does: never one window's
        # meters held while waiting for another's.
        every = [meter for meter_ids in windows.values() for meter in meter_ids]
        list(
            Meter.objects.select_for_update()
            .filter(among("pk", every))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    commands: dict[int, MeterCommand | None] = {}
    for (until, at), meter_ids in sorted(windows.items()):
        commands |= meters_relay_request(
            meter_ids=meter_ids,
            wanted=Relay.OFF,
            why=Meter.RelayReason.DUNNING,
            source=MeterCommand.Source.DUNNING,
            reason=reason,
            deadline=until,
            at=at,
        )
    return commands


def _cuts_make(
    context: _Context,
    clients: _Clients,
    cuts: dict[int, _Cut],
    totals: dict[tuple[int, str], Decimal],
    reminders: list[tuple],
    now: dt.datetime,
    report: DunningReport,
) -> list[Notice]:
    """Open the day's disconnections: the meters' commands, the records, the messages."""
    if not cuts:
        return []
    meters = _cut_meters(cuts)
    report.waiting_no_meter += sum(
        len(cut.invoices) for cut in cuts.values() if not meters[cut.site_id]
    )
    ready = [cut for cut in cuts.values() if meters[cut.site_id]]
    if not ready:
        return []
    windows: dict[tuple[dt.datetime, dt.datetime], list[int]] = defaultdict(list)
    for cut in ready:
        windows[(cut.until, context.moment(cut.agency_id))].extend(meters[cut.site_id])
    commands = _meters_cut(windows, reason=_("Unpaid invoices"))
    amounts = {cut.site_id: totals.get((cut.client_id, cut.currency), Decimal(0)) for cut in ready}
    rows_insert(
        Disconnection,
        (
            "site_id",
            "client_id",
            "agency_id",
            "invoice_id",
            "opened_on",
            "opened_at",
            "amount_due",
            "currency",
            "resumes_id",
            "closed_reason",
            "close_note",
        ),
        (
            (
                cut.site_id,
                cut.client_id,
                cut.agency_id,
                cut.invoice_id,
                context.as_of,
                now,
                amounts[cut.site_id],
                cut.currency,
                cut.resumes,
                "",
                "",
            )
            for cut in ready
        ),
    )
    # The clients are locked: the episodes opened for them at this moment are these.
    opened = dict(
        Disconnection.objects.filter(clients.where(), opened_at=now, closed_at=None).values_list(
            "site_id", "pk"
        )
    )
    rows_insert(
        DisconnectionMeter,
        ("disconnection_id", "meter_id", "cut_command_id", "cut_commands"),
        (
            (
                opened[cut.site_id],
                meter,
                getattr(commands[meter], "pk", None),
                int(commands[meter] is not None),
            )
            for cut in ready
            for meter in meters[cut.site_id]
        ),
    )
    notices = []
    for cut in ready:
        report.disconnections += 1
        for invoice, step in cut.invoices:
            reminders.append(_reminder_row(invoice, step, context.as_of, now, opened[cut.site_id]))
        first = cut.invoices[0] if cut.invoices else None
        notices.append(
            Notice(
                client_id=cut.client_id,
                event="disconnection",
                context={
                    "site_reference": cut.site_reference,
                    "amount_due": amounts[cut.site_id],
                    "currency": cut.currency,
                },
                idempotency_key=(
                    f"dunning:{first[0].pk}:{first[1].pk}"
                    if first
                    else f"dunning:resume:{cut.resumes}"
                ),
                related=(Invoice, cut.invoice_id),
                channels=CHANNELS_OF_STEP[first[1].channel] if first else None,
            )
        )
    return notices


@transaction.atomic
def _promises_settle(context: _Context, report: DunningReport) -> None:
    """Promises whose day has passed: kept if the client paid the amount since it was
    made (or owes nothing overdue any more), broken otherwise."""
    due = list(
        PromiseToPay.objects.select_for_update()
        .filter(
            status=PromiseToPay.Status.ACTIVE,
            promised_on__lt=context.as_of,
            client__agency_id__in=list(context.zones),
        )
        .order_by("pk")
    )
    if not due:
        return
    client_ids = {promise.client_id for promise in due}
    paid: dict[tuple[int, str], list[tuple[dt.datetime, Decimal]]] = defaultdict(list)
    for client_id, currency, booked_at, amount in AccountEntry.objects.filter(
        among("client_id", client_ids),
        kind=AccountEntry.Kind.PAYMENT,
        booked_at__gte=min(promise.created_at for promise in due),
    ).values_list("client_id", "currency", "booked_at", "amount"):
        paid[(client_id, currency)].append((booked_at, -amount))
    owing = {
        invoice.client_id
        for invoice in invoices_overdue(as_of=context.as_of, where=among("client_id", client_ids))
        if _above_minimum(context, invoice)
    }
    kept: list[int] = []
    broken: list[int] = []
    for promise in due:
        since = sum(
            (
                amount
                for at, amount in paid[(promise.client_id, promise.currency)]
                if at >= promise.created_at
            ),
            Decimal(0),
        )
        (kept if since >= promise.amount or promise.client_id not in owing else broken).append(
            promise.pk
        )
    PromiseToPay.objects.filter(among("pk", kept)).update(
        status=PromiseToPay.Status.KEPT, settled_on=context.as_of, updated_at=clock.now()
    )
    PromiseToPay.objects.filter(among("pk", broken)).update(
        status=PromiseToPay.Status.BROKEN, settled_on=context.as_of, updated_at=clock.now()
    )
    report.promises_kept += len(kept)
    report.promises_broken += len(broken)


def dunning_run(
    *,
    as_of: dt.date,
    agency_id: int | None = None,
    time_zone: str | None = None,
    now: dt.datetime | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> DunningReport:
    """The day's dunning for every agency, one agency, or the agencies of one time zone.

    In order: promises whose day passed are settled; clients cut who owe nothing overdue
    any more (or are covered by a promise or an exemption) are reconnected, and the meters
    of the others that are not off yet are sent their disconnection again (inside today's
    window); then every overdue invoice takes the step it is due for. ``now`` is the
    moment the pass runs, for the cut-off hour (default: now if ``as_of`` is today in the
    agency's zone, else 09:00 that day). Chunks of ``chunk_size`` clients are one
    transaction each; a crash keeps the chunks done, and running again completes the day
    without sending anything twice.
    """
    agencies = Agency.objects.all()
    if agency_id is not None:
        agencies = agencies.filter(pk=agency_id)
    if time_zone is not None:
        agencies = agencies.filter(province__time_zone=time_zone)
    agency_ids = list(agencies.values_list("pk", flat=True))
    if agency_id is not None and not agency_ids:
        raise ApplicationError(_("This agency does not exist."), status=404)
    report = DunningReport(as_of=as_of)
    if not agency_ids:
        return report
    context = _context(as_of=as_of, agency_ids=agency_ids, now=now)
    _promises_settle(context, report)
    with transaction.atomic():
        report.reconnections += len(_reconnect_due(context, clients=None))
        report.cuts_resent += _cuts_resend(context)
    client_ids = list(
        Invoice.objects.filter(
            agency_id__in=agency_ids, status__in=Invoice.OPEN, due_date__lt=as_of
        )
        .order_by("client_id")
        .values_list("client_id", flat=True)
        .distinct()
    )
    for start in range(0, len(client_ids), chunk_size):
        chunk = client_ids[start : start + chunk_size]
        with transaction.atomic():
            # Every client of the range with an overdue invoice is in the chunk.
            _chunk_run(context, _Clients(lo=chunk[0], hi=chunk[-1]), report)
    return report


# --- Reconnection --------------------------------------------------------------------------


def _reconnect_due(
    context: _Context, *, clients: _Clients | None, source: str = MeterCommand.Source.DUNNING
) -> list[int]:
    """Reconnect the open disconnections (of ``clients``, or of the context's agencies)
    that should end: the client owes nothing overdue above the minimum, or only what a
    promise to pay covers, or the site is exempt now. Returns the episodes closed."""
    episodes = Disconnection.objects.filter(closed_at=None, agency_id__in=list(context.zones))
    if clients is None:
        clients = _Clients(query=episodes.values("client_id"))
    # Locked first, so that a pass cutting one of them meanwhile is seen once it commits.
    _lock_clients(clients)
    open_rows = list(episodes.filter(clients.where()).values_list("pk", "client_id", "site_id"))
    if not open_rows:
        return []
    shelter = _shelter(clients, context.as_of)
    owing_raw: set[int] = set()
    owing: set[int] = set()
    for invoice in invoices_overdue(as_of=context.as_of, where=clients.where()):
        if _above_minimum(context, invoice):
            owing_raw.add(invoice.client_id)
            if not shelter.promised(invoice):
                owing.add(invoice.client_id)
    closing: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for pk, client_id, site_id in open_rows:
        if shelter.spared(client_id, site_id):
            closing[(Disconnection.ClosedReason.EXEMPTION, None)].append(pk)
        elif client_id not in owing_raw:
            closing[(Disconnection.ClosedReason.CLEARED, None)].append(pk)
        elif client_id not in owing:
            closing[(Disconnection.ClosedReason.PROMISE, shelter.promise_of[client_id])].append(pk)
    now = clock.now()
    for (reason, promise_id), ids in closing.items():
        Disconnection.objects.filter(among("pk", ids), closed_at=None).update(
            closed_at=now, closed_reason=reason, promise_id=promise_id
        )
    closed = [pk for ids in closing.values() for pk in ids]
    _restore(closed, reason=_("Overdue balance settled"), source=source)
    return closed


def _cuts_resend(context: _Context) -> int:
    """Sites cut whose meters are not off yet and have no disconnect command under way:
    the last one ended with its day's window (the meter was away until after it) or
    failed. Each is sent a new one, until the end of today's window, if the pass runs
    inside it; otherwise it waits for the next allowed day. Returns how many were sent.

    Runs after ``_reconnect_due``, in its transaction: the clients with open
    disconnections are locked, so a payment's reconnection and this never cross. "Under
    way" is judged at the pass's moment in each zone, not by the clock: a catch-up pass
    for another day decides as that day's pass would have.
    """
    rows = sorted(
        (
            row
            for zone, moment in context.moments.items()
            for row in DisconnectionMeter.objects.filter(
                disconnection__closed_at=None,
                disconnection__agency_id__in=[
                    agency for agency, its_zone in context.zones.items() if its_zone == zone
                ],
                meter__relay_wanted=Relay.OFF,
                meter__relay_wanted_reason=Meter.RelayReason.DUNNING,
                meter__site_id=F("disconnection__site_id"),
            )
            .exclude(meter__relay_reported=Relay.OFF)
            .exclude(
                Exists(
                    MeterCommand.objects.filter(
                        meter_id=OuterRef("meter_id"),
                        status__in=MeterCommand.IN_FLIGHT,
                        action__in=MeterCommand.RELAY_ACTIONS,
                        expires_at__gt=moment,
                    )
                )
            )
            .annotate(
                episode_agency=F("disconnection__agency_id"),
                site_category=F("disconnection__site__category"),
            )
            .only("pk", "meter_id", "cut_command_id", "cut_commands")
        ),
        key=lambda row: row.meter_id,
    )
    windows: dict[tuple[dt.datetime, dt.datetime], list[int]] = defaultdict(list)
    for row in rows:
        policy = context.policy(row.episode_agency, row.site_category)
        until = context.cut_until(policy, row.episode_agency) if policy else None
        if until is not None:
            windows[(until, context.moment(row.episode_agency))].append(row.meter_id)
    if not windows:
        return 0
    commands = _meters_cut(
        windows, reason=_("Unpaid invoices: sent again, the last command did not cut the meter")
    )
    resent = []
    for row in rows:
        command = commands.get(row.meter_id)
        if command is not None and command.pk != row.cut_command_id:
            row.cut_command = command
            row.cut_commands += 1
            resent.append(row)
    DisconnectionMeter.objects.bulk_update(resent, ["cut_command", "cut_commands"], batch_size=1000)
    return len(resent)


def _restore(disconnection_ids: Sequence[int], *, reason: str, source: str) -> None:
    """Switch back on the meters these (just closed) disconnections cut, and tell the
    clients. Only meters still off for dunning at the same site are switched: one a person
    turned off since, or moved, stays as it is."""
    if not disconnection_ids:
        return
    rows = list(
        DisconnectionMeter.objects.filter(
            among("disconnection_id", disconnection_ids),
            meter__relay_wanted=Relay.OFF,
            meter__relay_wanted_reason=Meter.RelayReason.DUNNING,
            meter__site_id=F("disconnection__site_id"),
        ).order_by("meter_id")
    )
    if rows:
        commands = meters_relay_request(
            meter_ids=[row.meter_id for row in rows],
            wanted=Relay.ON,
            why=Meter.RelayReason.NORMAL,
            source=source,
            reason=reason,
        )
        for row in rows:
            row.restore_command = commands[row.meter_id]
        DisconnectionMeter.objects.bulk_update(rows, ["restore_command"], batch_size=1000)
    notifications_send_bulk(
        notices=[
            Notice(
                client_id=client_id,
                event="reconnection",
                context={"site_reference": reference},
                idempotency_key=f"dunning:reconnection:{pk}",
                related=(Disconnection, pk),
            )
            for pk, client_id, reference in Disconnection.objects.filter(
                among("pk", disconnection_ids)
            ).values_list("pk", "client_id", "site__reference")
        ]
    )


def overdue_cleared_on_commit(*, client_id: int, source: str = MeterCommand.Source.DUNNING) -> None:
    """After the caller's transaction commits, check whether the client still owes
    anything overdue, and reconnect what dunning cut if not (``overdue_cleared_check``).

    For everything that lowers what a client owes: payments call it, and so must credit
    notes. It runs as a Celery task of its own (``dunning.overdue_cleared_check``, retried
    on failure), so the reconnection never waits for, nor depends on, a receipt or another
    message of the caller; a rolled-back transaction queues nothing; a failure to queue is
    logged, never raised to a caller whose transaction has committed. A client dunning
    has not cut (most who pay) costs one query and queues nothing. The daily pass checks
    every open disconnection as well.
    """
    from .tasks import overdue_cleared_check_task

    if not Disconnection.objects.filter(client_id=client_id, closed_at=None).exists():
        return

    def overdue_cleared_check_queue() -> None:  # robust hooks are logged by their name
        overdue_cleared_check_task.delay(client_id, source)

    transaction.on_commit(overdue_cleared_check_queue, robust=True)


@transaction.atomic
def overdue_cleared_check(
    *, client_id: int, source: str = MeterCommand.Source.DUNNING
) -> list[Disconnection]:
    """Reconnect every site of the client that dunning cut, if nothing is overdue any more.

    "Nothing overdue": no issued or partly paid invoice past its due date with more left
    to pay than its policy's minimum, except invoices a promise to pay covers; a site or
    client exempt now is reconnected too. Each reconnected site's meters get a connect
    command (tracked on the disconnection) and the client a ``reconnection`` message.

    Idempotent and cheap when there is nothing to do (two queries): call it after anything
    that lowers what a client owes or shelters them — payments and credit notes do, on
    commit (``overdue_cleared_on_commit``), and so do promises and exemptions; the daily
    pass does the same for every client cut. Returns the disconnections it closed (empty
    when none).
    """
    zone = (
        Client.objects.select_for_update()
        .filter(pk=client_id)
        .values_list("agency__province__time_zone", flat=True)
        .first()
    )
    agency_ids = set(
        Disconnection.objects.filter(client_id=client_id, closed_at=None).values_list(
            "agency_id", flat=True
        )
    )
    if zone is None or not agency_ids:
        return []
    context = _context(as_of=clock.today(zone), agency_ids=agency_ids, now=None)
    closed = _reconnect_due(context, clients=_Clients.one(client_id), source=source)
    return list(Disconnection.objects.filter(pk__in=closed).order_by("pk"))


# --- What staff do -------------------------------------------------------------------------


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationError({"reason": _("Give the reason.")})
    return reason.strip()[:300]


@transaction.atomic
def disconnection_reconnect(*, disconnection_id: int, reason: str, actor: User) -> Disconnection:
    """Staff reconnect a site dunning cut, though the client still owes: the episode is
    closed with who, when and why (and in the audit trail), the meters switched on, the
    client told. The invoices' disconnection steps stay taken: only a later invoice's
    ladder (or a broken promise) cuts the site again."""
    if not actor.has_perm(OVERRIDE_PERMISSION):
        raise PermissionDenied
    reason = _reason(reason)
    episode = (
        visible_to(Disconnection.objects.select_for_update(), actor)
        .filter(pk=disconnection_id)
        .first()
    )
    if episode is None:
        raise ApplicationError(_("This disconnection does not exist."), status=404)
    if not episode.is_open:
        raise ApplicationError(_("This site is reconnected already."))
    episode.closed_at = clock.now()
    episode.closed_reason = Disconnection.ClosedReason.OVERRIDE
    episode.closed_by = actor
    episode.close_note = reason
    episode.full_clean()
    episode.save()
    _restore(
        [episode.pk],
        reason=_("Staff decision: %(reason)s (%(user)s)")
        % {
            "reason": reason,
            "user": actor.get_username(),
        },
        source=MeterCommand.Source.STAFF,
    )
    return episode


def _client_for(actor: User | None, client_id: int) -> Client:
    queryset = Client.objects.select_related("agency__province")
    if actor is not None:
        queryset = visible_to(queryset, actor)
    client = queryset.filter(pk=client_id).first()
    if client is None:
        raise ApplicationError(_("This client does not exist."), status=404)
    return client


def promise_to_pay_check(
    *,
    client_id: int,
    promised_on: dt.date,
    amount: Decimal,
    reason: str,
    actor: User | None,
    invoice_id: int | None = None,
    currency: str | None = None,
) -> PromiseToPay:
    """The promise ``promise_to_pay_record`` would record, checked and not saved.

    The currency is the invoice's (or ``currency`` for a promise on all invoices); the day
    runs from today to the policy's longest promise. Raises ``ValidationError`` on the
    field at fault, ``PermissionDenied``, or ``ApplicationError`` for an unknown client.
    """
    if actor is not None and not actor.has_perm("dunning.add_promisetopay"):
        raise PermissionDenied
    client = _client_for(actor, client_id)
    errors: dict[str, str] = {}
    invoice = None
    category = ""
    if invoice_id is not None:
        invoice = (
            Invoice.objects.select_related("site")
            .filter(pk=invoice_id, client_id=client.pk, status__in=Invoice.OPEN)
            .first()
        )
        if invoice is None:
            errors["invoice"] = _("Choose an unpaid invoice of this client.")
        else:
            currency, category = invoice.currency, invoice.site.category
    if currency is None or currency not in Currency.values:
        if "invoice" not in errors:
            errors["currency"] = _("Choose the currency of the promise.")
        currency = ""
    if not amount.is_finite() or amount <= 0:
        errors["amount"] = _("Enter an amount above zero.")
    today = clock.today(client.agency.time_zone)
    policy = Policies().for_invoice(invoice.agency_id if invoice else client.agency_id, category)
    longest = policy.promise_max_days if policy else 30
    if promised_on < today:
        errors["promised_on"] = _("The day is past.")
    elif promised_on > today + dt.timedelta(days=longest):
        errors["promised_on"] = _("A promise runs %(days)d days at most.") % {"days": longest}
    if not reason.strip():
        errors["reason"] = _("Give the reason.")
    if errors:
        raise ValidationError(errors)
    return PromiseToPay(
        client=client,
        invoice=invoice,
        promised_on=promised_on,
        amount=round_money(amount),
        currency=currency,
        reason=reason.strip()[:300],
        recorded_by=actor,
    )


@transaction.atomic
def promise_to_pay_record(
    *,
    client_id: int,
    promised_on: dt.date,
    amount: Decimal,
    reason: str,
    actor: User | None,
    invoice_id: int | None = None,
    currency: str | None = None,
) -> PromiseToPay:
    """Record a client's promise to pay ``amount`` by ``promised_on`` (one invoice, or all).

    Until that day the ladder waits for what it covers; the sites dunning cut are
    reconnected at once if the promise covers everything overdue. After that day the pass
    settles it: kept, or broken and the ladder resumes (see ``PromiseToPay``). Checked by
    ``promise_to_pay_check`` (its errors); nothing is written when it refuses.
    """
    _lock_clients(_Clients.one(client_id))
    promise = promise_to_pay_check(
        client_id=client_id,
        promised_on=promised_on,
        amount=amount,
        reason=reason,
        actor=actor,
        invoice_id=invoice_id,
        currency=currency,
    )
    promise.full_clean()
    promise.save()
    overdue_cleared_check(client_id=client_id, source=MeterCommand.Source.STAFF)
    return promise


def dunning_exemption_check(
    *,
    client_id: int,
    effect: str,
    reason: str,
    actor: User | None,
    site_id: int | None = None,
    starts_on: dt.date | None = None,
    ends_on: dt.date | None = None,
) -> DunningExemption:
    """The exemption ``dunning_exemption_grant`` would grant, checked and not saved.

    A hold needs its last day; the last day is not past nor before the first (today by
    default). Raises ``ValidationError`` on the field at fault.
    """
    if actor is not None and not actor.has_perm("dunning.add_dunningexemption"):
        raise PermissionDenied
    client = _client_for(actor, client_id)
    today = clock.today(client.agency.time_zone)
    errors: dict[str, str] = {}
    if site_id is not None and not Site.objects.filter(pk=site_id, client_id=client.pk).exists():
        errors["site"] = _("Choose a site of this client.")
    if effect not in DunningExemption.Effect.values:
        errors["effect"] = _("Choose what the exemption does.")
    starts_on = starts_on or today
    if ends_on is None and effect == DunningExemption.Effect.HOLD:
        errors["ends_on"] = _("A hold needs its last day.")
    elif ends_on is not None and ends_on < max(starts_on, today):
        errors["ends_on"] = _("The last day comes before the first, or is past.")
    if not reason.strip():
        errors["reason"] = _("Give the reason.")
    if errors:
        raise ValidationError(errors)
    return DunningExemption(
        client=client,
        site_id=site_id,
        effect=effect,
        reason=reason.strip()[:300],
        starts_on=starts_on,
        ends_on=ends_on,
        granted_by=actor,
    )


@transaction.atomic
def dunning_exemption_grant(
    *,
    client_id: int,
    effect: str,
    reason: str,
    actor: User | None,
    site_id: int | None = None,
    starts_on: dt.date | None = None,
    ends_on: dt.date | None = None,
) -> DunningExemption:
    """Spare a client (or one of their sites) from disconnection, or hold their ladder,
    with a reason kept with who granted it. In force today, it reconnects at once what
    dunning cut there. Checked by ``dunning_exemption_check``; nothing written if refused.
    """
    _lock_clients(_Clients.one(client_id))
    exemption = dunning_exemption_check(
        client_id=client_id,
        effect=effect,
        reason=reason,
        actor=actor,
        site_id=site_id,
        starts_on=starts_on,
        ends_on=ends_on,
    )
    exemption.full_clean()
    exemption.save()
    overdue_cleared_check(client_id=client_id, source=MeterCommand.Source.STAFF)
    return exemption


@transaction.atomic
def dunning_exemption_end(*, exemption_id: int, actor: User | None) -> DunningExemption:
    """End an exemption today (its last day): the ladder resumes tomorrow."""
    if actor is not None and not actor.has_perm("dunning.change_dunningexemption"):
        raise PermissionDenied
    queryset = DunningExemption.objects.select_for_update().select_related(
        "client__agency__province"
    )
    if actor is not None:
        queryset = visible_to(queryset, actor)
    exemption = queryset.filter(pk=exemption_id).first()
    if exemption is None:
        raise ApplicationError(_("This exemption does not exist."), status=404)
    today = clock.today(exemption.client.agency.time_zone)
    if exemption.ends_on is not None and exemption.ends_on < today:
        raise ApplicationError(_("This exemption has ended already."))
    exemption.ends_on = max(today, exemption.starts_on)
    exemption.save()
    return exemption
