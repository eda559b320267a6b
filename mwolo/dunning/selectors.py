"""Reads of dunning: overdue invoices in bulk, the policy of an invoice, command states."""

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from django.db.models import (
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from mwolo.billing.models import AccountEntry, Invoice
from mwolo.billing.pricing import round_money
from mwolo.core.permissions import visible_to
from mwolo.metering.models import Meter, MeterCommand, Relay

from .models import Action, Disconnection, DisconnectionMeter, DunningPolicy, DunningStep, Reminder

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from mwolo.accounts.models import User

_MONEY = DecimalField(max_digits=16, decimal_places=2)


@dataclass(frozen=True, slots=True)
class OverdueInvoice:
    pk: int
    number: str
    client_id: int
    site_id: int
    site_reference: str
    category: str
    agency_id: int
    currency: str
    due_date: dt.date
    open_amount: Decimal
    last_step_id: int | None  # the furthest step taken for it (any policy), or None
    last_sent_on: dt.date | None
    noticed: bool  # a final notice went out for it
    cut_announced_on: dt.date | None  # the day its final notice named for the cut

    def days_overdue(self, as_of: dt.date) -> int:
        return (as_of - self.due_date).days


def invoices_overdue(*, as_of: dt.date, where: Q) -> list[OverdueInvoice]:
    """Issued or partly paid invoices matching ``where`` whose due date (a day in their
    agency's zone) is before ``as_of``, with what is left to pay on each and how far their
    ladder went. One query, whatever the number of invoices.

    What is left is ``billing.selectors.invoices_open_amounts``'s rule — the total less the
    credit notes and payments booked on the invoice — computed in the database, so a chunk
    of invoices is never sent to it as a list of ids.
    """
    settled = (
        AccountEntry.objects.filter(invoice_id=OuterRef("pk"))
        .exclude(kind=AccountEntry.Kind.INVOICE)
        .order_by()
        .values("invoice_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    latest = Reminder.objects.filter(invoice_id=OuterRef("pk")).order_by("-sent_on", "-pk")
    rows = (
        Invoice.objects.filter(where, status__in=Invoice.OPEN, due_date__lt=as_of)
        .annotate(
            open_amount=F("total")
            + Coalesce(
                Subquery(settled, output_field=_MONEY), Value(Decimal(0)), output_field=_MONEY
            ),
            last_step_id=Subquery(latest.values("step_id")[:1]),
            last_sent_on=Subquery(latest.values("sent_on")[:1]),
            noticed=Exists(
                Reminder.objects.filter(invoice_id=OuterRef("pk"), step__action=Action.FINAL_NOTICE)
            ),
            cut_announced_on=Subquery(
                Reminder.objects.filter(invoice_id=OuterRef("pk"), cut_announced_on__isnull=False)
                .order_by("-cut_announced_on")
                .values("cut_announced_on")[:1]
            ),
        )
        .order_by("client_id", "due_date", "pk")
        .values_list(
            "pk",
            "number",
            "client_id",
            "site_id",
            "site__reference",
            "site__category",
            "agency_id",
            "currency",
            "due_date",
            "open_amount",
            "last_step_id",
            "last_sent_on",
            "noticed",
            "cut_announced_on",
        )
    )
    # Cents again: SQLite computes the sum in floating point (the amounts are exact cents).
    return [
        OverdueInvoice(
            pk=pk,
            number=number,
            client_id=client_id,
            site_id=site_id,
            site_reference=site_reference,
            category=category,
            agency_id=agency_id,
            currency=currency,
            due_date=cast(dt.date, due_date),  # due_date__lt excludes null
            open_amount=round_money(open_amount),
            last_step_id=last_step_id,
            last_sent_on=last_sent_on,
            noticed=noticed,
            cut_announced_on=cut_announced_on,
        )
        for (
            pk,
            number,
            client_id,
            site_id,
            site_reference,
            category,
            agency_id,
            currency,
            due_date,
            open_amount,
            last_step_id,
            last_sent_on,
            noticed,
            cut_announced_on,
        ) in rows
    ]


# How far a step takes an invoice, whatever its policy: its n-th reminder (1, n), its
# final notice (2, 0), its disconnection (3, 0). A valid ladder is in this order.
Rank = tuple[int, int]
NOT_STARTED: Rank = (0, 0)
_STAGE = {Action.REMIND: 1, Action.FINAL_NOTICE: 2, Action.DISCONNECT: 3}


class Policies:
    """The active policies and every step, read once for a pass."""

    def __init__(self) -> None:
        policies = list(DunningPolicy.objects.filter(is_active=True).prefetch_related("steps"))
        self.by_scope = {(policy.agency_id, policy.site_category): policy for policy in policies}
        self.ladders: dict[int, list[DunningStep]] = {
            policy.pk: sorted(policy.steps.all(), key=lambda step: step.position)
            for policy in policies
        }
        # Every step's rank, inactive policies' too: an invoice's last step may be one.
        self.ranks: dict[int, Rank] = {}
        reminders: Counter[int] = Counter()
        for pk, policy_id, action in DunningStep.objects.order_by(
            "policy_id", "position"
        ).values_list("pk", "policy_id", "action"):
            ordinal = 0
            if action == Action.REMIND:
                reminders[policy_id] += 1
                ordinal = reminders[policy_id]
            self.ranks[pk] = (_STAGE[Action(action)], ordinal)

    def for_invoice(self, agency_id: int, category: str) -> DunningPolicy | None:
        """The most specific active policy: agency and category, agency, category, default."""
        for scope in ((agency_id, category), (agency_id, ""), (None, category), (None, "")):
            policy = self.by_scope.get(scope)
            if policy is not None:
                return policy
        return None

    def steps(self, policy: DunningPolicy) -> list[DunningStep]:
        return self.ladders[policy.pk]


def open_disconnections(*, where: Q) -> dict[int, int]:
    """Site id -> its open disconnection's id, among the disconnections ``where`` says."""
    return dict(Disconnection.objects.filter(where, closed_at=None).values_list("site_id", "pk"))


# --- What staff read ------------------------------------------------------------------------


def command_state(command: MeterCommand | None) -> str:
    """A command's status for staff, or that none was needed."""
    if command is None:
        return "none"
    return command.status


def cut_waits(row: DisconnectionMeter) -> bool:
    """The meter of an open disconnection is not off, and its disconnect command ended
    without switching it (expired with its day's window, or refused): the next allowed
    day's pass sends another. Reads the row's disconnection, meter and command."""
    command = row.cut_command
    meter = row.meter
    return (
        row.disconnection.closed_at is None
        and command is not None
        and command.status not in MeterCommand.IN_FLIGHT
        and meter.relay_wanted == Relay.OFF
        and meter.relay_wanted_reason == Meter.RelayReason.DUNNING
        and meter.relay_reported != Relay.OFF
    )


def disconnection_meters(disconnection: Disconnection) -> list[DisconnectionMeter]:
    """Its meters with their commands (prefetched by the admin: no query per row)."""
    return list(disconnection.meters.all())


def reminders_visible(user: "User | AnonymousUser") -> QuerySet[Reminder]:
    """The reminders ``user`` may see (a client: their own), newest first."""
    return visible_to(Reminder.objects.all(), user).select_related(
        "invoice", "step", "disconnection"
    )
