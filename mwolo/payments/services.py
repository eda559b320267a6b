"""What happens when a client pays: every way money comes in, and what it pays.

Each public function is one transaction (the calls to an operator's API are made outside
any transaction: a slow operator must never hold a lock). Recording money:

- locks the client's row first, then their open invoices in id order, so two payments of
  one client (a cashier and a callback at the same moment) queue instead of both paying
  the same invoice;
- writes account entries (``billing.AccountEntry``): one per invoice paid, oldest due
  first (or the chosen invoice first), and one for what is left as the client's credit,
  used by their next invoices (``client_credit_apply``);
- takes the receipt number (``REC-<year>-<n>``, gap-free) in the same transaction;
- after commit, tells dunning the overdue balance may be cleared (it reconnects if so) and
  sends the receipt: two tasks of their own, each retried, so a receipt that cannot be
  sent never keeps a paying client in the dark.

An operator's transaction id pays once: a unique constraint, not a check in Python.
"""

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError

from mwolo.accounts.models import User
from mwolo.billing.models import AccountEntry, Currency, Invoice
from mwolo.billing.pricing import round_money
from mwolo.billing.selectors import amount_in, invoices_open_amounts
from mwolo.billing.services import invoices_status_refresh
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.numbering import formatted_number
from mwolo.core.permissions import can_act_for_agency, visible_to
from mwolo.core.phones import drc_mobile_e164
from mwolo.crm.models import Client
from mwolo.dunning.services import overdue_cleared_on_commit
from mwolo.integrations.payments.base import (
    CallbackEvent,
    CallbackRejected,
    ErrorCode,
    PaymentStatus,
    ProviderError,
    PushRequest,
    StatusResult,
    provider_for,
)
from mwolo.metering.models import Meter, MeterCommand, PaymentMode

from . import tasks
from .models import (
    MOBILE_METHODS,
    CashSession,
    Method,
    Payment,
    PaymentIntent,
    PaymentReview,
    Refund,
    WebhookCall,
)

logger = logging.getLogger("mwolo.payments")

# A push nobody answered is asked about until then, and expires after.
INTENT_LIFETIME = dt.timedelta(minutes=30)
# Longer than any push waits for its reply: a push not sent by then never will be.
PUSH_GRACE = dt.timedelta(minutes=5)
# Operators that take whole units only (a cent would be refused after the prompt).
WHOLE_UNITS_ONLY = {"mpesa", "orange"}
OPEN = (Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID)


class AlreadyRecordedError(ApplicationError):
    """An operator's transaction id (a bank's reference) that pays once came again."""


def _money(value: object, field_name: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValidationError({field_name: _("Enter an amount above zero.")})
    if value != round_money(value):
        raise ValidationError({field_name: _("An amount has at most two decimals.")})
    return value


def _currency(value: str) -> str:
    if value not in Currency.values:
        raise ValidationError({"currency": _("Choose CDF or USD.")})
    return value


# --- What is owed, and allocation ----------------------------------------------------------


def account_currency(*, client_id: int) -> str:
    """The currency of a client's account: that of their newest invoice (CDF before any)."""
    newest = (
        Invoice.objects.filter(client_id=client_id)
        .exclude(status=Invoice.Status.DRAFT)
        .order_by("-issue_date", "-pk")
        .values_list("currency", flat=True)
        .first()
    )
    return newest or Currency.CDF


def _lock_client(client_id: int) -> Client:
    return Client.objects.select_for_update().get(pk=client_id)


def _open_invoices(client_id: int, currency: str, first: int | None) -> dict[int, str]:
    """The client's unpaid invoices in ``currency``, locked, in the order they are paid
    (``first``, a chosen invoice, then oldest due): id → number."""
    rows = list(
        Invoice.objects.select_for_update()
        .filter(client_id=client_id, currency=currency, status__in=OPEN)
        .order_by("pk")
        .values_list("pk", "due_date", "number")
    )
    rows.sort(key=lambda row: (row[0] != first, row[1] or dt.date.max, row[0]))
    return {pk: number for pk, _due, number in rows}


@dataclass(frozen=True)
class _Share:
    """What a payment puts on one invoice; ``settles`` when it is all that was left."""

    invoice_id: int
    number: str
    amount: Decimal
    settles: bool


def _allocation(
    client_id: int, amount: Decimal, currency: str, *, first: int | None
) -> tuple[list[_Share], Decimal]:
    """How ``amount`` pays the client's open invoices (locked, oldest due first, or
    ``first``), and what is left."""
    numbers = _open_invoices(client_id, currency, first)
    if not numbers:
        return [], amount
    left = invoices_open_amounts(invoice_ids=numbers)
    shares = []
    for invoice_id, number in numbers.items():
        if amount <= 0:
            break
        share = min(amount, left[invoice_id])
        if share <= 0:
            continue
        shares.append(_Share(invoice_id, number, share, settles=share == left[invoice_id]))
        amount -= share
    return shares, amount


def _book(payment: Payment, currency: str, shares: list[_Share], *, to_credit: Decimal) -> None:
    """The payment's entries: one per invoice share, and ``to_credit`` kept as the client's
    credit (taken from it when negative). The invoices' statuses follow from the shares,
    without reading them again."""
    now = clock.now()
    entries = [
        AccountEntry(
            client_id=payment.client_id,
            currency=currency,
            kind=AccountEntry.Kind.PAYMENT,
            reference=f"{payment.receipt_number} → {share.number}"[:30],
            booked_at=now,
            amount=-share.amount,
            invoice_id=share.invoice_id,
            payment=payment,
        )
        for share in shares
    ]
    if to_credit:
        entries.append(
            AccountEntry(
                client_id=payment.client_id,
                currency=currency,
                kind=AccountEntry.Kind.PAYMENT,
                reference=payment.receipt_number,
                booked_at=now,
                amount=-to_credit,
                payment=payment,
            )
        )
    AccountEntry.objects.bulk_create(entries)
    for status, settles in ((Invoice.Status.PAID, True), (Invoice.Status.PARTIALLY_PAID, False)):
        paid = [share.invoice_id for share in shares if share.settles is settles]
        if paid:
            Invoice.objects.filter(pk__in=paid).update(status=status, updated_at=now)


def _unallocated(client_id: int, currency: str) -> list[tuple[int, Decimal]]:
    """Payments of the client with credit not yet set against an invoice: (id, amount)."""
    return [
        (payment_id, -total)
        for payment_id, total in AccountEntry.objects.filter(
            client_id=client_id,
            currency=currency,
            payment__isnull=False,
            payment__status=Payment.Status.RECORDED,
            invoice__isnull=True,
        )
        .values("payment_id")
        .annotate(total=Sum("amount"))
        .order_by("payment_id")
        .values_list("payment_id", "total")
        if total < 0
    ]


@transaction.atomic
def client_credit_apply(*, client_id: int) -> int:
    """Set the client's credit (overpayments) against their unpaid invoices, oldest first:
    each move is a pair of entries of the payment that left the credit. Returns how many
    invoices were paid from it; idempotent."""
    _lock_client(client_id)
    paid: set[int] = set()
    for currency in Currency.values:
        credits = _unallocated(client_id, currency)
        if not credits:
            continue
        for payment_id, available in credits:
            shares, rest = _allocation(client_id, available, currency, first=None)
            if not shares:
                break
            payment = Payment.objects.get(pk=payment_id)
            _book(payment, currency, shares, to_credit=rest - available)
            paid.update(share.invoice_id for share in shares)
    return len(paid)


def _receipt_number() -> str:
    year = clock.today("Africa/Kinshasa").year
    return formatted_number(prefix=f"REC-{year}", key=f"receipt-{year}")


def _record(
    *,
    client: Client,
    method: str,
    amount: Decimal,
    currency: str,
    invoice_id: int | None,
    actor: User | None,
    operator_transaction_id: str = "",
    payer: str = "",
    intent: PaymentIntent | None = None,
    cash_session: CashSession | None = None,
    book: bool = True,
) -> Payment:
    """A payment and its entries, in the caller's transaction (the client is locked)."""
    if invoice_id is not None:
        target = Invoice.objects.values_list("currency", flat=True).get(pk=invoice_id)
    else:
        target = account_currency(client_id=client.pk)
    today = clock.today(client.agency.time_zone)
    credited = round_money(amount_in(amount=amount, currency=currency, target=target, on=today))
    shares, rest = (
        _allocation(client.pk, credited, target, first=invoice_id) if book else ([], Decimal(0))
    )
    rate = None
    if currency != target:
        rate = (credited / amount if currency == Currency.USD else (amount / credited)).quantize(
            Decimal("0.0001")
        )
    # From the receipt counter to the commit every other payment waits: only the numbered
    # writes follow it, everything read or locked is behind us.
    payment = Payment(
        receipt_number=_receipt_number(),
        client=client,
        method=method,
        amount=amount,
        currency=currency,
        credited=credited if book else Decimal(0),
        account_currency=target,
        exchange_rate=rate,
        operator_transaction_id=operator_transaction_id,
        payer=payer,
        intent=intent,
        cash_session=cash_session,
        received_at=clock.now(),
        recorded_by=actor,
    )
    try:
        # No savepoint: the error leaves the caller's transaction, which rolls back whole.
        payment.save()
    except IntegrityError as clash:
        raise AlreadyRecordedError(
            _("This transaction (%s) was recorded already.") % operator_transaction_id,
            status=409,
        ) from clash
    if book:
        _book(payment, target, shares, to_credit=rest)
    # Reconnection first, and on its own: it must not wait for, nor depend on, the receipt.
    overdue_cleared_on_commit(client_id=client.pk, source=MeterCommand.Source.PAYMENT)
    payment_id = payment.pk

    def receipt_deliver_queue() -> None:  # robust hooks are logged by their name
        tasks.receipt_deliver_task.delay(payment_id)

    transaction.on_commit(receipt_deliver_queue, robust=True)
    return payment


# --- Cash and bank -------------------------------------------------------------------------


def _visible_client(client_id: int, actor: User) -> Client:
    client = (
        visible_to(Client.objects.select_related("agency__province"), actor)
        .filter(pk=client_id)
        .first()
    )
    if client is None:
        raise ApplicationError(_("This client does not exist."), status=404)
    return client


def _chosen_invoice(invoice_id: int | None, client: Client) -> int | None:
    if invoice_id is None:
        return None
    status = (
        Invoice.objects.filter(pk=invoice_id, client=client)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        raise ValidationError({"invoice": _("This invoice is not this client's.")})
    if status not in OPEN:
        raise ValidationError({"invoice": _("This invoice has nothing left to pay.")})
    return invoice_id


@transaction.atomic
def cash_session_open(
    *, cashier: User, agency_id: int, opening_cdf: Decimal, opening_usd: Decimal
) -> CashSession:
    """Open the cashier's till at an agency they work for, with the float counted in."""
    if not cashier.has_perm("payments.add_cashsession"):
        raise PermissionDenied
    if not can_act_for_agency(cashier, agency_id):
        raise ValidationError({"agency": _("You do not work at this agency.")})
    for name, value in (("opening_cdf", opening_cdf), ("opening_usd", opening_usd)):
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise ValidationError({name: _("Enter the float counted, zero or more.")})
    if CashSession.objects.filter(cashier=cashier, closed_at__isnull=True).exists():
        raise ApplicationError(_("Your till is open already: close it first."), status=409)
    return CashSession.objects.create(
        cashier=cashier,
        agency_id=agency_id,
        opened_at=clock.now(),
        opening_cdf=round_money(opening_cdf),
        opening_usd=round_money(opening_usd),
    )


def _open_session(cashier: User) -> CashSession:
    session = (
        CashSession.objects.select_for_update()
        .filter(cashier=cashier, closed_at__isnull=True)
        .first()
    )
    if session is None:
        raise ApplicationError(_("Open your till before taking cash."))
    return session


@transaction.atomic
def payment_record_cash(
    *,
    cashier: User,
    client_id: int,
    amount: Decimal,
    currency: str,
    invoice_id: int | None = None,
) -> Payment:
    """Cash handed to the cashier: into their open till, converted at the day's rate when
    the account is in the other currency. Atomic; raises before writing on bad input."""
    if not cashier.has_perm("payments.add_payment"):
        raise PermissionDenied
    amount, currency = _money(amount, "amount"), _currency(currency)
    session = _open_session(cashier)
    client = _visible_client(client_id, cashier)
    if client.agency_id != session.agency_id and not can_act_for_agency(cashier, client.agency_id):
        raise ValidationError({"client": _("This client is not served by your agency.")})
    _lock_client(client.pk)
    return _record(
        client=client,
        method=Method.CASH,
        amount=amount,
        currency=currency,
        invoice_id=_chosen_invoice(invoice_id, client),
        actor=cashier,
        cash_session=session,
    )


@transaction.atomic
def payment_record_bank(
    *,
    actor: User,
    client_id: int,
    amount: Decimal,
    currency: str,
    bank_reference: str,
    invoice_id: int | None = None,
) -> Payment:
    """A bank transfer a billing agent saw on the statement; its reference pays once (a
    second time is a field error on ``bank_reference``). Atomic; raises before writing:
    ``PermissionDenied`` for a role that does not record transfers, ``ApplicationError``
    (404) for a client outside the actor's agencies, ``ValidationError`` on bad input."""
    if not actor.has_perm("payments.add_payment") or not actor.has_perm("billing.add_creditnote"):
        raise PermissionDenied
    amount, currency = _money(amount, "amount"), _currency(currency)
    bank_reference = bank_reference.strip()
    if not bank_reference:
        raise ValidationError({"bank_reference": _("Enter the bank's reference of the transfer.")})
    client = _visible_client(client_id, actor)
    _lock_client(client.pk)
    try:
        return _record(
            client=client,
            method=Method.BANK,
            amount=amount,
            currency=currency,
            invoice_id=_chosen_invoice(invoice_id, client),
            actor=actor,
            operator_transaction_id=bank_reference[:100],
        )
    except AlreadyRecordedError as clash:  # the unique constraint said so: nothing is written
        raise ValidationError(
            {
                "bank_reference": _("A transfer with the reference %s is recorded already.")
                % bank_reference
            }
        ) from clash


@dataclass(frozen=True)
class TillCount:
    expected: dict[str, Decimal]
    counted: dict[str, Decimal]

    @property
    def variance(self) -> dict[str, Decimal]:
        return {c: self.counted[c] - self.expected[c] for c in self.expected}


def cash_session_expected(session: CashSession) -> dict[str, Decimal]:
    """What the till should hold: the float, plus cash taken, less cash refunded."""
    expected: dict[str, Decimal] = {"CDF": session.opening_cdf, "USD": session.opening_usd}
    for currency, total in (
        session.payments.filter(status=Payment.Status.RECORDED)
        .values("currency")
        .annotate(total=Sum("amount"))
        .values_list("currency", "total")
    ):
        expected[currency] += total
    for currency, total in (
        session.refunds.values("currency")
        .annotate(total=Sum("amount"))
        .values_list("currency", "total")
    ):
        expected[currency] -= total
    return expected


@transaction.atomic
def cash_session_close(
    *, cashier: User, counted_cdf: Decimal, counted_usd: Decimal, note: str = ""
) -> CashSession:
    """Close the cashier's till with what they counted; the variance is kept and shown."""
    session = _open_session(cashier)
    for name, value in (("counted_cdf", counted_cdf), ("counted_usd", counted_usd)):
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise ValidationError({name: _("Enter what you counted, zero or more.")})
    expected = cash_session_expected(session)
    session.counted_cdf, session.counted_usd = round_money(counted_cdf), round_money(counted_usd)
    session.expected_cdf, session.expected_usd = expected["CDF"], expected["USD"]
    variances = [session.variance_cdf, session.variance_usd]
    if any(variances) and not note.strip():
        raise ValidationError(
            {"note": _("The count differs from what the till should hold: say why.")}
        )
    session.closed_at = clock.now()
    session.closing_note = note.strip()[:300]
    session.save()
    return session


# --- Reversal and refunds ------------------------------------------------------------------


@transaction.atomic
def payment_reverse(*, payment_id: int, reason: str, actor: User) -> Payment:
    """Undo a payment recorded by mistake (a cheque bounced, the wrong client): every entry
    it wrote is written back, the invoices it paid are open again. Audited."""
    if not actor.has_perm("payments.reverse_payment"):
        raise PermissionDenied
    if not reason.strip():
        raise ValidationError({"reason": _("Say why this payment is reversed.")})
    payment = visible_to(Payment.objects.select_for_update(), actor).filter(pk=payment_id).first()
    if payment is None:
        raise ApplicationError(_("This payment does not exist."), status=404)
    if payment.status == Payment.Status.REVERSED:
        raise ApplicationError(_("Receipt %s is reversed already.") % payment.receipt_number)
    _lock_client(payment.client_id)
    now = clock.now()
    totals = (
        AccountEntry.objects.filter(payment=payment)
        .values("invoice_id", "currency")
        .annotate(total=Sum("amount"))
    )
    AccountEntry.objects.bulk_create(
        AccountEntry(
            client_id=payment.client_id,
            currency=row["currency"],
            kind=AccountEntry.Kind.REVERSAL,
            reference=payment.receipt_number,
            booked_at=now,
            amount=-row["total"],
            invoice_id=row["invoice_id"],
            payment=payment,
        )
        for row in totals
        if row["total"]
    )
    payment.status = Payment.Status.REVERSED
    payment.reversed_at, payment.reversed_by = now, actor
    payment.reversal_reason = reason.strip()[:300]
    payment.save()
    invoices_status_refresh(invoice_ids=[row["invoice_id"] for row in totals if row["invoice_id"]])
    return payment


@dataclass(frozen=True)
class RefundPlan:
    """A refund as it would be recorded: the client's credit in its currency and, for
    cash, the actor's open till and what it should hold in that currency."""

    client: Client
    amount: Decimal
    currency: str
    method: str
    reason: str
    credit: Decimal
    cash_session: CashSession | None
    till_holds: Decimal | None


def _refund_plan(
    *,
    actor: User,
    client_id: int,
    amount: Decimal,
    currency: str,
    method: str,
    reason: str,
    lock: bool,
) -> RefundPlan:
    if not actor.has_perm("payments.add_refund"):
        raise PermissionDenied
    amount, currency = _money(amount, "amount"), _currency(currency)
    if method not in Method.values:
        raise ValidationError({"method": _("Choose how the money is given back.")})
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the money is given back.")})
    client = _visible_client(client_id, actor)
    if lock:
        _lock_client(client.pk)
    balance = AccountEntry.objects.filter(client=client, currency=currency).aggregate(
        total=Sum("amount")
    )["total"] or Decimal(0)
    credit = max(-balance, Decimal(0))
    if credit < amount:
        raise ValidationError(
            {
                "amount": _("The client's credit is %(credit)s %(currency)s.")
                % {"credit": number_format(credit, 2, force_grouping=True), "currency": currency}
            }
        )
    session, holds = None, None
    if method == Method.CASH:
        tills = CashSession.objects.filter(cashier=actor, closed_at__isnull=True)
        session = (tills.select_for_update() if lock else tills).first()
        if session is None:
            raise ValidationError({"method": _("Open your till before giving cash back.")})
        holds = cash_session_expected(session)[currency]
        if holds < amount:
            raise ValidationError(
                {
                    "amount": _("Your till holds %(held)s %(currency)s: not enough.")
                    % {
                        "held": number_format(max(holds, Decimal(0)), 2, force_grouping=True),
                        "currency": currency,
                    }
                }
            )
    return RefundPlan(
        client=client,
        amount=amount,
        currency=currency,
        method=method,
        reason=reason.strip()[:300],
        credit=credit,
        cash_session=session,
        till_holds=holds,
    )


def refund_check(
    *, actor: User, client_id: int, amount: Decimal, currency: str, method: str, reason: str
) -> RefundPlan:
    """What ``refund_record`` would do, checked the same way, nothing written: for a
    confirmation page. Raises what ``refund_record`` raises."""
    return _refund_plan(
        actor=actor,
        client_id=client_id,
        amount=amount,
        currency=currency,
        method=method,
        reason=reason,
        lock=False,
    )


@transaction.atomic
def refund_record(
    *, actor: User, client_id: int, amount: Decimal, currency: str, method: str, reason: str
) -> Refund:
    """Give back part of a client's credit, never more than they have: cash from the
    actor's open till (never more than it should hold), or another way (a transfer).
    Written as entries that raise the balance back, taken from the payments that left
    the credit, oldest first. Atomic; audited (the refund); raises before writing:
    ``PermissionDenied`` without ``payments.add_refund``, ``ApplicationError`` (404) for a
    client outside the actor's agencies, ``ValidationError`` on bad input, beyond the
    credit, without an open till or beyond what it holds."""
    plan = _refund_plan(
        actor=actor,
        client_id=client_id,
        amount=amount,
        currency=currency,
        method=method,
        reason=reason,
        lock=True,
    )
    client, amount, currency = plan.client, plan.amount, plan.currency
    refund = Refund.objects.create(
        client=client,
        method=plan.method,
        amount=amount,
        currency=currency,
        reason=plan.reason,
        cash_session=plan.cash_session,
        refunded_by=actor,
    )
    # The credit given back comes off the payments that left it, oldest first.
    left = amount
    now = clock.now()
    entries = []
    for payment_id, available in _unallocated(client.pk, currency):
        take = min(left, available)
        entries.append(
            AccountEntry(
                client_id=client.pk,
                currency=currency,
                kind=AccountEntry.Kind.REFUND,
                reference=f"RMB-{refund.pk}",
                booked_at=now,
                amount=take,
                payment_id=payment_id,
                refund=refund,
            )
        )
        left -= take
        if left <= 0:
            break
    if left > 0:  # credit from credit notes rather than payments
        entries.append(
            AccountEntry(
                client_id=client.pk,
                currency=currency,
                kind=AccountEntry.Kind.REFUND,
                reference=f"RMB-{refund.pk}",
                booked_at=now,
                amount=left,
                refund=refund,
            )
        )
    AccountEntry.objects.bulk_create(entries)
    return refund


# --- Mobile money --------------------------------------------------------------------------


def webhook_url(provider: str, intent: PaymentIntent) -> str:
    """Where the operator calls back for this intent (see docs/payments.md)."""
    base = settings.MWOLO_PUBLIC_URL.rstrip("/")
    if provider in ("mpesa", "vodacom"):
        secret = settings.MOBILE_MONEY[provider]["callback_secret"]
        path = reverse("payment-webhook-secret", args=[provider, secret])
    elif provider == "orange":
        path = reverse("payment-webhook-secret", args=[provider, intent.reference])
    else:
        path = reverse("payment-webhook", args=[provider])
    return base + path


@transaction.atomic
def payment_intent_create(
    *,
    client_id: int,
    provider: str,
    msisdn: str,
    amount: Decimal,
    currency: str,
    actor: User,
    invoice_id: int | None = None,
    meter_id: int | None = None,
) -> PaymentIntent:
    """A client (or staff on their behalf) asks to pay by mobile money: the push to the
    phone is sent by a task after commit. Pays ``invoice_id`` first, or buys prepaid
    credit for ``meter_id``, or else the account (oldest invoice first)."""
    if not actor.has_perm("payments.add_paymentintent"):
        raise PermissionDenied
    client = _visible_client(client_id, actor)
    if provider not in [m.value for m in MOBILE_METHODS]:
        raise ValidationError(
            {"provider": _("Choose M-Pesa, Vodacom M-Pesa, Airtel Money or Orange Money.")}
        )
    if provider not in settings.MOBILE_MONEY_OPERATORS:
        raise ValidationError({"provider": _("%s is not offered.") % Method(provider).label})
    amount, currency = _money(amount, "amount"), _currency(currency)
    if provider in WHOLE_UNITS_ONLY and amount != amount.to_integral_value():
        raise ValidationError(
            {"amount": _("%s takes whole amounts only (no cents).") % Method(provider).label}
        )
    try:
        number = drc_mobile_e164(msisdn)
    except ValidationError as error:
        raise ValidationError({"msisdn": error.messages}) from error
    purpose = PaymentIntent.Purpose.ACCOUNT
    if invoice_id is not None and meter_id is not None:
        raise ValidationError({"meter": _("Pay an invoice or buy credit, not both at once.")})
    if invoice_id is not None:
        _chosen_invoice(invoice_id, client)
        purpose = PaymentIntent.Purpose.INVOICE
    if meter_id is not None:
        meter = Meter.objects.filter(
            pk=meter_id, site__client=client, payment_mode=PaymentMode.PREPAID
        ).first()
        if meter is None:
            raise ValidationError({"meter": _("This is not one of the client's prepaid meters.")})
        purpose = PaymentIntent.Purpose.PREPAID
    else:
        # Refused now rather than once the client has paid: the day's rate must exist.
        target = (
            Invoice.objects.values_list("currency", flat=True).get(pk=invoice_id)
            if invoice_id is not None
            else account_currency(client_id=client.pk)
        )
        try:
            amount_in(
                amount=amount,
                currency=currency,
                target=target,
                on=clock.today(client.agency.time_zone),
            )
        except ApplicationError as no_rate:
            raise ValidationError({"currency": no_rate.message}) from no_rate
    intent = PaymentIntent.objects.create(
        client=client,
        purpose=purpose,
        invoice_id=invoice_id,
        meter_id=meter_id,
        provider=provider,
        msisdn=number,
        amount=amount,
        currency=currency,
        expires_at=clock.now() + INTENT_LIFETIME,
        created_by=actor,
    )
    transaction.on_commit(lambda: tasks.payment_intent_push.delay(intent.pk))
    return intent


def payment_intent_push(*, intent_id: int) -> PaymentIntent:
    """Send the push for a new intent (an operator call, outside any transaction), then
    keep what the operator answered. A push that failed on the way stays pending: the
    reconciliation asks the operator about it before it expires."""
    intent = PaymentIntent.objects.select_related("client", "invoice").get(pk=intent_id)
    if intent.pushed_at is not None or intent.status != PaymentStatus.PENDING:
        return intent
    description = (
        _("Invoice %s") % intent.invoice.number if intent.invoice else _("Electricity Mwolo")
    )
    status_url = settings.MWOLO_PUBLIC_URL.rstrip("/") + reverse(
        "web:payment_status", args=[intent.reference]
    )
    request = PushRequest(
        reference=intent.reference,
        amount=intent.amount,
        currency=intent.currency,
        msisdn=intent.msisdn.as_e164,
        description=description,
        callback_url=webhook_url(intent.provider, intent),
        return_url=status_url,
        cancel_url=status_url,
        language=intent.client.preferred_language,
    )
    provider = provider_for(intent.provider)
    try:
        result = provider.push(request)
    except ProviderError as error:
        changes: dict[str, Any] = {"push_error": str(error)[:300], "pushed_at": clock.now()}
        # The prompt may have gone out (a lost reply), or did (a second push of the same
        # reference): an operator that knows our reference is asked where it stands.
        if provider.reference_is_ours and (error.retryable or error.code == ErrorCode.DUPLICATE):
            changes.update(
                provider_reference=intent.reference,
                provider_extra=provider.status_extra(currency=intent.currency),
            )
        elif not error.retryable:
            changes.update(status=PaymentStatus.FAILED, message=str(error)[:300])
        PaymentIntent.objects.filter(pk=intent.pk, pushed_at__isnull=True).update(**changes)
        intent.refresh_from_db()
        return intent
    PaymentIntent.objects.filter(pk=intent.pk, pushed_at__isnull=True).update(
        provider_reference=result.provider_reference,
        provider_extra=result.extra,
        pushed_at=clock.now(),
        message=result.message[:300],
    )
    if result.status.is_final:
        return payment_intent_check(intent_id=intent.pk)
    intent.refresh_from_db()
    return intent


def _digits(number: str | None) -> str:
    return "".join(ch for ch in (number or "") if ch.isdigit())[-9:]


@dataclass
class _Settlement:
    outcome: str
    detail: str = ""
    payment: Payment | None = None


# The intent has a case in the review queue nobody has decided yet.
_IN_REVIEW = Exists(PaymentReview.objects.filter(intent=OuterRef("pk"), resolved_at=None))


def _locked_intent(intent_id: int) -> PaymentIntent:
    """The intent and its client, both locked in one statement (intent first, as always),
    with what settling reads of them: the busiest path of a payment day, so not whole rows
    (a field left out is still read, by one more query)."""
    return (
        PaymentIntent.objects.select_for_update(of=("self", "client"))
        .annotate(in_review=_IN_REVIEW)
        .select_related("client__agency__province", "invoice")
        .only(
            "client",
            "purpose",
            "invoice__status",
            "meter",
            "provider",
            "msisdn",
            "amount",
            "currency",
            "status",
            "provider_reference",
            "client__agency__province__time_zone",
        )
        .get(pk=intent_id)
    )


def _claimed(
    intent: PaymentIntent, answer: StatusResult, event: CallbackEvent | None
) -> tuple[str, Decimal | None, str | None, str | None]:
    """What the operator says was paid: transaction id, amount, currency and payer, from
    its status answer first, then from the callback."""
    transaction_id = (
        answer.transaction_id
        or (event.transaction_id if event else None)
        or intent.provider_reference  # Daraja's status query names no receipt
    )
    amount = answer.amount if answer.amount is not None else (event.amount if event else None)
    currency = answer.currency or (event.currency if event else None)
    payer = answer.payer or (event.payer if event else None)
    return transaction_id, amount, currency, payer


def _settle_or_review(
    intent_id: int, answer: StatusResult, event: CallbackEvent | None
) -> _Settlement:
    """``_settle``; money the operator took that cannot be recorded as it is (no exchange
    rate for its currency, a transaction id another request was paid with) goes to a
    person instead (``PaymentReview``), never lost."""
    try:
        return _settle(intent_id, answer, event)
    except ApplicationError as refused:
        intent = PaymentIntent.objects.get(pk=intent_id)
        transaction_id, amount, currency, payer = _claimed(intent, answer, event)
        PaymentReview.objects.get_or_create(
            intent=intent,
            operator_transaction_id=transaction_id[:100],
            defaults={
                "reason": refused.message[:300],
                "amount": amount if amount is not None else intent.amount,
                "currency": currency or intent.currency,
                "payer": (payer or "")[:40],
            },
        )
        logger.warning("payment %s sent for review: %s", intent.reference, refused.message)
        return _Settlement(WebhookCall.Outcome.REVIEW, refused.message[:300])


@transaction.atomic
def _settle(intent_id: int, answer: StatusResult, event: CallbackEvent | None) -> _Settlement:
    """What the operator's status query says, applied once to the intent (locked)."""
    intent = _locked_intent(intent_id)
    if intent.status == PaymentStatus.SUCCEEDED:
        return _Settlement(WebhookCall.Outcome.DUPLICATE, _("paid already"))
    if intent.in_review:  # type: ignore[attr-defined]  # annotated by _locked_intent
        # A person decides what was paid, not the next status query.
        return _Settlement(WebhookCall.Outcome.REVIEW, _("awaiting a person's decision"))
    if answer.status == PaymentStatus.PENDING:
        PaymentIntent.objects.filter(pk=intent.pk).update(checked_at=clock.now())
        return _Settlement(WebhookCall.Outcome.PENDING)
    if answer.status != PaymentStatus.SUCCEEDED:
        PaymentIntent.objects.filter(pk=intent.pk).update(
            status=answer.status, message=answer.message[:300], checked_at=clock.now()
        )
        return _Settlement(WebhookCall.Outcome.FAILED, str(PaymentStatus(answer.status).label))
    transaction_id, amount, currency, payer = _claimed(intent, answer, event)
    problems = []
    if amount is not None and amount != intent.amount:
        problems.append(
            _("amount %(got)s instead of %(want)s") % {"got": amount, "want": intent.amount}
        )
    if currency is not None and currency != intent.currency:
        problems.append(
            _("currency %(got)s instead of %(want)s") % {"got": currency, "want": intent.currency}
        )
    # Orange's customer types any number on its page; the others pay from the phone pushed.
    if payer and intent.provider != "orange" and _digits(payer) != _digits(str(intent.msisdn)):
        problems.append(_("paid from %s") % payer)
    if problems:
        PaymentReview.objects.get_or_create(
            intent=intent,
            operator_transaction_id=transaction_id[:100],
            defaults={
                "reason": "; ".join(problems)[:300],
                "amount": amount,
                "currency": currency or "",
                "payer": (payer or "")[:40],
            },
        )
        return _Settlement(WebhookCall.Outcome.REVIEW, "; ".join(problems)[:300])
    payment = _pay(intent, transaction_id=transaction_id, payer=payer or intent.msisdn.as_e164)
    return _Settlement(WebhookCall.Outcome.SETTLED, payment=payment)


def _pay(intent: PaymentIntent, *, transaction_id: str, payer: str) -> Payment:
    """The intent (from ``_locked_intent``) is paid: the payment, its entries, the prepaid
    token if it bought one."""
    from mwolo.metering.services import prepaid_token_for_amount

    client = intent.client
    prepaid = intent.purpose == PaymentIntent.Purpose.PREPAID
    # Before the receipt number is taken (see _record).
    PaymentIntent.objects.filter(pk=intent.pk).update(
        status=PaymentStatus.SUCCEEDED, checked_at=clock.now()
    )
    payment = _record(
        client=client,
        method=intent.provider,
        amount=intent.amount,
        currency=intent.currency,
        invoice_id=intent.invoice_id if intent.invoice and intent.invoice.status in OPEN else None,
        actor=None,
        operator_transaction_id=transaction_id[:100],
        payer=payer[:40],
        intent=intent,
        book=not prepaid,
    )
    if prepaid and intent.meter_id is not None:
        try:
            with transaction.atomic():
                sale = prepaid_token_for_amount(
                    meter_id=intent.meter_id,
                    amount=intent.amount,
                    currency=intent.currency,
                    actor=None,
                )
        except (ValidationError, ApplicationError) as refused:
            # The operator has taken the money: it stays on the account as credit, and a
            # person sells the token by hand (or refunds).
            payment.credited = round_money(
                amount_in(
                    amount=payment.amount,
                    currency=payment.currency,
                    target=payment.account_currency,
                    on=clock.today(client.agency.time_zone),
                )
            )
            Payment.objects.filter(pk=payment.pk).update(credited=payment.credited)
            shares, rest = _allocation(
                client.pk, payment.credited, payment.account_currency, first=None
            )
            _book(payment, payment.account_currency, shares, to_credit=rest)
            PaymentReview.objects.create(
                intent=intent,
                operator_transaction_id=transaction_id[:100],
                reason=(
                    _("Paid, but no token could be sold: %s")
                    % "; ".join(getattr(refused, "messages", [str(refused)]))
                )[:300],
                amount=intent.amount,
                currency=intent.currency,
                payer=payer[:40],
            )
            sale = None
        if sale is not None:
            Payment.objects.filter(pk=payment.pk).update(token=sale.token)
        if (
            sale is not None and sale.change > 0
        ):  # what the token could not use stays on the account
            AccountEntry.objects.create(
                client_id=client.pk,
                currency=sale.currency,
                kind=AccountEntry.Kind.PAYMENT,
                reference=payment.receipt_number,
                booked_at=clock.now(),
                amount=-sale.change,
                payment=payment,
            )
            Payment.objects.filter(pk=payment.pk).update(
                credited=sale.change, account_currency=sale.currency
            )
    return payment


def payment_intent_check(*, intent_id: int, event: CallbackEvent | None = None) -> PaymentIntent:
    """Ask the operator where the push stands (never trusting a callback alone) and apply
    it: paid (once), failed, or still pending. Idempotent."""
    intent = PaymentIntent.objects.get(pk=intent_id)
    if intent.status != PaymentStatus.PENDING or not intent.provider_reference:
        return intent
    try:
        answer = provider_for(intent.provider).query_status(
            provider_reference=intent.provider_reference, extra=intent.provider_extra
        )
    except ProviderError as error:
        logger.warning("status of %s unknown: %s", intent.reference, error)
        PaymentIntent.objects.filter(pk=intent.pk).update(checked_at=clock.now())
        return intent
    _settle_or_review(intent.pk, answer, event)
    intent.refresh_from_db()
    return intent


@dataclass
class WebhookAnswer:
    status: int
    content_type: str
    body: bytes


def _answer_json(status: int, payload: Mapping[str, Any]) -> WebhookAnswer:
    import json

    return WebhookAnswer(status, "application/json", json.dumps(payload).encode())


def webhook_receive(
    *,
    provider: str,
    path: str,
    path_secret: str | None,
    headers: Mapping[str, str],
    body: bytes,
    remote_address: str | None,
) -> WebhookAnswer:
    """A call to ``/api/payments/webhooks/<provider>/``: authenticated, matched to its
    intent and kept raw with what was done with it, whatever it is. Answers what the
    operator expects (or a 4xx with the reason).

    A callback for an intent still pending is then confirmed by the operator's status
    query and settled once by ``webhook_confirm``, in a worker: the answer to the operator
    never waits on the operator's own API, however slow it is that day. Should the task
    be lost, the reconciliation (``payment_intents_reconcile``) asks the operator too.
    """
    call = WebhookCall(
        provider=_storable(provider[:10]),
        path=_storable(path[:300]),
        remote_address=remote_address,
        headers={
            _storable(k): _storable(v) for k, v in headers.items() if k.lower() != "authorization"
        },
        body=_storable(body.decode("utf-8", errors="replace")),
    )
    claim: dict[str, str | None] | None = None
    try:
        answer, claim = _webhook_read(call, provider, path_secret, headers, body)
    finally:
        call.save()
    if claim is not None and call.intent_id is not None:
        call_id, intent_id = call.pk, call.intent_id
        transaction.on_commit(lambda: _confirm_later(call_id, intent_id, claim))
    return answer


def _storable(text: str) -> str:
    """``text`` as a database keeps it: PostgreSQL refuses NUL characters in text and JSON."""
    return text.replace("\x00", "\ufffd")


def _webhook_read(
    call: WebhookCall,
    provider: str,
    path_secret: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[WebhookAnswer, dict[str, str | None] | None]:
    """Authenticate and match a callback, setting the call's outcome; the claim to
    confirm with the operator, when there is one."""
    if provider not in settings.MOBILE_MONEY_OPERATORS:
        call.outcome, call.detail = WebhookCall.Outcome.REJECTED, "unknown operator"
        return _answer_json(404, {"detail": "unknown operator"}), None
    adapter = provider_for(provider)
    expected: dict[str, str] = {}
    secret = path_secret
    if provider == "orange":
        intent = PaymentIntent.objects.filter(
            provider="orange", reference=path_secret or ""
        ).first()
        if intent is None:
            call.outcome, call.detail = WebhookCall.Outcome.UNKNOWN, "no such request"
            return _answer_json(404, {"detail": "unknown reference"}), None
        expected = {
            "provider_reference": intent.provider_reference,
            "notif_token": str(intent.provider_extra.get("notif_token", "")),
        }
        secret = None
    try:
        event = adapter.parse_callback(
            headers=headers, body=body, path_secret=secret, expected=expected
        )
    except CallbackRejected as rejected:
        call.outcome = WebhookCall.Outcome.REJECTED
        call.detail = f"{rejected.reason}: {rejected.detail}"[:300]
        return _answer_json(rejected.http_status, {"detail": str(rejected.reason)}), None
    matching = Q(provider_reference=event.provider_reference)
    if adapter.reference_is_ours:  # its callback may come before the push's reply is kept
        matching |= Q(reference=event.provider_reference)
    intent = PaymentIntent.objects.filter(matching, provider=provider).only("status").first()
    if intent is None:
        call.outcome, call.detail = WebhookCall.Outcome.UNKNOWN, event.provider_reference[:300]
        return _answer_json(404, {"detail": "unknown reference"}), None
    call.intent = intent
    ack = adapter.acknowledge(event)
    answer = WebhookAnswer(ack.status, ack.content_type, ack.body)
    if intent.status == PaymentStatus.SUCCEEDED:
        call.outcome, call.detail = WebhookCall.Outcome.DUPLICATE, "paid already"
        return answer, None
    call.outcome = WebhookCall.Outcome.QUEUED
    claim = {
        "transaction_id": event.transaction_id,
        "amount": None if event.amount is None else str(event.amount),
        "currency": event.currency,
        "payer": event.payer,
    }
    return answer, claim


def _confirm_later(call_id: int, intent_id: int, claim: dict[str, str | None]) -> None:
    try:
        tasks.webhook_confirm.delay(call_id, intent_id, claim)
    except OperationalError as error:  # the broker is down: the reconciliation will ask
        logger.warning("callback %s not queued for confirmation: %s", call_id, error)


def webhook_confirm(*, call_id: int, intent_id: int, claim: Mapping[str, str | None]) -> str:
    """The second half of a callback (``webhook_receive``): the operator's status query
    says what happened, applied once to the intent; the call records the outcome.

    Idempotent: a payment is recorded once whatever runs it again (a retried task, the
    reconciliation, a copy of the callback). Returns the outcome.
    """
    intent = (
        PaymentIntent.objects.only(
            "status", "provider", "reference", "currency", "provider_reference", "provider_extra"
        )
        .filter(pk=intent_id)
        .first()
    )
    if intent is None:
        raise ApplicationError(_("This mobile money request does not exist."), status=404)
    provider = provider_for(intent.provider)
    reference, extra = intent.provider_reference, intent.provider_extra
    if not reference:  # matched by our own reference before the push's reply was kept
        reference, extra = intent.reference, provider.status_extra(currency=intent.currency)
    event = CallbackEvent(
        provider_reference=reference,
        status=PaymentStatus.PENDING,
        transaction_id=claim.get("transaction_id"),
        amount=None if claim.get("amount") is None else Decimal(str(claim["amount"])),
        currency=claim.get("currency"),
        payer=claim.get("payer"),
        raw={},
    )
    outcome: str = WebhookCall.Outcome.DUPLICATE
    detail = "paid already"
    if intent.status != PaymentStatus.SUCCEEDED:
        try:
            answer = provider.query_status(provider_reference=reference, extra=extra)
        except ProviderError as error:
            outcome, detail = WebhookCall.Outcome.PENDING, f"status unknown: {error}"
        else:
            settled = _settle_or_review(intent.pk, answer, event)
            outcome, detail = settled.outcome, settled.detail
    WebhookCall.objects.filter(pk=call_id).update(outcome=outcome, detail=detail[:300])
    return outcome


@dataclass
class ReconcileReport:
    checked: int = 0
    settled: int = 0
    failed: int = 0
    expired: int = 0
    pushed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def payment_intents_reconcile(*, as_of: dt.datetime | None = None) -> ReconcileReport:
    """Ask the operators about every intent still pending (a callback lost or late), and
    expire those past their lifetime that the operator does not call paid. Idempotent."""
    now = as_of or clock.now()
    report = ReconcileReport()
    pending = PaymentIntent.objects.filter(status=PaymentStatus.PENDING).order_by("pk")
    # A push still waiting for the operator's reply (Vodacom's waits for the PIN) is not
    # sent again: only one whose task never ran.
    for intent in pending.filter(pushed_at__isnull=True, created_at__lte=now - PUSH_GRACE):
        payment_intent_push(intent_id=intent.pk)
        report.pushed += 1
    asked = pending.filter(pushed_at__isnull=False).exclude(provider_reference="")
    for intent in asked.exclude(_IN_REVIEW):  # a person decides those
        checked = payment_intent_check(intent_id=intent.pk)
        report.checked += 1
        if checked.status == PaymentStatus.SUCCEEDED:
            report.settled += 1
        elif checked.status != PaymentStatus.PENDING:
            report.failed += 1
    expired = PaymentIntent.objects.filter(
        status=PaymentStatus.PENDING, expires_at__lte=now
    ).exclude(_IN_REVIEW)
    report.expired = expired.update(
        status=PaymentStatus.EXPIRED, message=_("No answer from the operator in time.")
    )
    return report


def payment_intent_retry(*, intent_id: int, actor: User) -> PaymentIntent:
    """A failed, cancelled or expired request tried again: a new intent, same details,
    pushed after commit. A paid or still pending request (in review too) is refused
    (``ApplicationError``), nothing written."""
    old = visible_to(PaymentIntent.objects.all(), actor).filter(pk=intent_id).first()
    if old is None:
        raise ApplicationError(_("This request does not exist."), status=404)
    if old.status == PaymentStatus.SUCCEEDED:
        raise ApplicationError(_("This request is paid: nothing to try again."))
    if old.status == PaymentStatus.PENDING:  # it may still be paid: never ask twice
        raise ApplicationError(
            _("This request is not settled yet: wait for its outcome before trying again.")
        )
    return payment_intent_create(
        client_id=old.client_id,
        provider=old.provider,
        msisdn=str(old.msisdn),
        amount=old.amount,
        currency=old.currency,
        actor=actor,
        invoice_id=old.invoice_id if old.invoice and old.invoice.status in OPEN else None,
        meter_id=old.meter_id,
    )


@transaction.atomic
def payment_review_resolve(
    *, review_id: int, accept: bool, note: str, actor: User
) -> PaymentReview:
    """A person settles a mismatch: ``accept`` records the amount the operator reports as
    the client's payment (with its receipt and account entries); otherwise nothing is
    recorded (the operator is asked to refund) and a request still pending is closed as
    failed, so the reconciliation never records it later. Atomic and audited (the review's
    change); a review is resolved once: a second resolution is refused, nothing written.

    Raises ``PermissionDenied`` without ``payments.change_paymentreview``,
    ``ValidationError`` on an empty note, ``ApplicationError`` (404) for a review outside
    the actor's agencies, and ``ApplicationError`` for one settled already or, when
    accepting, for a request paid meanwhile (by the reconciliation, or the payment kept as
    credit when a prepaid token could not be sold).
    """
    if not actor.has_perm("payments.change_paymentreview"):
        raise PermissionDenied
    if not note.strip():
        raise ValidationError({"note": _("Say what you checked.")})
    review = (
        visible_to(PaymentReview.objects.select_for_update(), actor).filter(pk=review_id).first()
    )
    if review is None:
        raise ApplicationError(_("This review does not exist."), status=404)
    if review.resolved_at:
        raise ApplicationError(_("This review is settled already."))
    intent = _locked_intent(review.intent_id)
    if accept:
        if review.amount is None:
            raise ValidationError(
                {"note": _("The operator reported no amount: nothing to record.")}
            )
        if intent.status == PaymentStatus.SUCCEEDED:
            raise ApplicationError(
                _(
                    "Request %s is paid already: record nothing here (and reverse that "
                    "payment if it must not stand)."
                )
                % intent.reference
            )
        intent.amount = review.amount
        intent.currency = review.currency or intent.currency
        intent.save(update_fields=["amount", "currency", "updated_at"])
        _pay(intent, transaction_id=review.operator_transaction_id, payer=review.payer)
    review.resolved_at, review.resolved_by = clock.now(), actor
    review.resolution = (_("Recorded: ") if accept else _("Not recorded: ")) + note.strip()[:250]
    review.save()
    if not accept and intent.status == PaymentStatus.PENDING:
        # The client reads this message (the note is for staff).
        PaymentIntent.objects.filter(pk=intent.pk).update(
            status=PaymentStatus.FAILED,
            message=_("Not recorded after checking: the operator gives the money back."),
            checked_at=clock.now(),
        )
    return review
