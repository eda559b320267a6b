"""Invoice, credit note and statement documents: what the records print as, and sending them.

The renderers (``documents``) take plain dataclasses; this module fills them from the
records, stores the PDFs in private storage and hands issued invoices to the notification
service. Delivery runs after the issuing transaction (Celery), and is idempotent: a PDF is
rendered once unless staff ask for it again (``*_pdf_regenerate``, audited), and each
invoice's notice has its own idempotency key. An invoice's PDF is the invoice as issued:
drawn again, it shows the same amounts (``invoice_document``).
What a crash or a lost task leaves undelivered is caught up by ``invoices_backlog_deliver``
(beat, every 15 minutes; ``manage.py deliver_invoices``).
"""

import datetime as dt
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.fields.files import FieldFile
from django.utils import translation
from django.utils.translation import gettext as _

from mwolo.accounts.models import User
from mwolo.agencies.models import Agency, OpeningHours
from mwolo.agencies.selectors import agency_opening_days
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.pdf import Company, local_date
from mwolo.core.permissions import visible_to
from mwolo.crm.models import Client, Site
from mwolo.notifications.events import EventKey
from mwolo.notifications.models import Notification
from mwolo.notifications.services import Attachment, notification_send

from . import documents
from .models import CreditNote, ExchangeRate, Invoice, InvoiceLine
from .selectors import RATE_VALIDITY, Statement, client_balances, invoices_open_amounts

logger = logging.getLogger(__name__)

_LINE_KINDS = {
    InvoiceLine.Kind.FIXED: documents.LineKind.FIXED_CHARGE,
    InvoiceLine.Kind.ENERGY: documents.LineKind.ENERGY,
    InvoiceLine.Kind.SOCIAL: documents.LineKind.SOCIAL,
    InvoiceLine.Kind.ADJUSTMENT: documents.LineKind.ADJUSTMENT,
}


def company() -> Company:
    """The issuer printed on every document (``MWOLO_COMPANY`` in the settings)."""
    values = settings.MWOLO_COMPANY
    return Company(**{**values, "address_lines": tuple(values["address_lines"])})


def payment_options() -> tuple[documents.PaymentOption, ...]:
    """How clients may pay, as printed on invoices (``MWOLO_PAYMENT_OPTIONS``)."""
    return tuple(
        documents.PaymentOption(
            method=documents.PaymentMethod(method), account=account, detail=detail
        )
        for method, account, detail in settings.MWOLO_PAYMENT_OPTIONS
    )


def _address(place: Client | Site | Agency) -> tuple[str, ...]:
    """The street line, then the commune and the city (once when they share a name)."""
    names = [place.commune.name if place.commune else "", place.territory.name]
    places = ", ".join(dict.fromkeys(name for name in names if name))
    return tuple(line for line in (place.address_line, places) if line)


def client_info(client: Client) -> documents.ClientInfo:
    return documents.ClientInfo(
        name=client.display_name,
        number=client.number,
        address_lines=_address(client),
        phone=str(client.phone or ""),
        email=client.email,
    )


def _hours(agency: Agency) -> str:
    names = dict(OpeningHours.Weekday.choices)
    parts = []
    for days in agency_opening_days(agency):
        if days.is_closed:
            continue
        span = str(names[days.first])[:3]
        if not days.is_single_day:
            span += f"–{str(names[days.last])[:3]}"
        slots = ", ".join(f"{opens:%H:%M}–{closes:%H:%M}" for opens, closes in days.slots)
        parts.append(f"{span} {slots}")
    return " · ".join(parts)


def agency_info(agency: Agency) -> documents.AgencyInfo:
    return documents.AgencyInfo(
        name=agency.name,
        address_lines=_address(agency),
        phone=str(agency.phone or ""),
        opening_hours=_hours(agency),
    )


def _rate(on: dt.date) -> documents.ExchangeRate | None:
    rate = ExchangeRate.objects.filter(day__lte=on, day__gt=on - RATE_VALIDITY).first()
    return documents.ExchangeRate(cdf_per_usd=rate.cdf_per_usd, on=rate.day) if rate else None


def _period_end(period: dt.date) -> dt.date:
    following = dt.date(period.year + period.month // 12, period.month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


def _meter_info(invoice: Invoice) -> documents.MeterInfo | None:
    if invoice.meter is None or invoice.previous_reading_kwh is None:
        return None
    zone = invoice.agency.time_zone
    previous_at = invoice.previous_reading_at or clock.now()
    current = invoice.current_reading_kwh
    estimated = current is None
    if current is None:  # printed as the index the estimate amounts to
        current = invoice.previous_reading_kwh + invoice.consumption_kwh
    current_on = (
        _period_end(invoice.period)
        if estimated or invoice.current_reading_at is None
        else local_date(invoice.current_reading_at, zone)
    )
    return documents.MeterInfo(
        serial=invoice.meter.serial,
        previous_reading_kwh=invoice.previous_reading_kwh,
        previous_reading_date=local_date(previous_at, zone),
        current_reading_kwh=current,
        current_reading_date=current_on,
        consumption_kwh=invoice.consumption_kwh,
        estimated=invoice.estimated,
    )


def _lines(invoice: Invoice) -> tuple[documents.InvoiceLine, ...]:
    lines = tuple(
        documents.InvoiceLine(
            kind=_LINE_KINDS[InvoiceLine.Kind(line.kind)],
            amount=line.amount,
            kwh=line.quantity if line.kind != InvoiceLine.Kind.FIXED else None,
            unit_price=line.unit_price,
            band_from_kwh=line.band_from_kwh,
            band_to_kwh=line.band_to_kwh,
        )
        for line in invoice.lines.all()
    )
    # A month with no charge at all still prints what was used: nothing.
    return lines or (
        documents.InvoiceLine(kind=documents.LineKind.ENERGY, amount=Decimal(0), kwh=Decimal(0)),
    )


def _invoices(ids: Sequence[int]) -> list[Invoice]:
    return list(
        Invoice.objects.filter(pk__in=ids)
        .select_related(
            "client__commune",
            "client__territory",
            "site__commune",
            "site__territory",
            "agency__province",
            "agency__commune",
            "agency__territory",
            "meter",
            "tariff",
        )
        .prefetch_related(
            "lines",
            Prefetch(
                "agency__opening_hours",
                queryset=OpeningHours.objects.order_by("weekday", "opens_at"),
            ),
        )
    )


def invoice_document(invoice: Invoice) -> documents.InvoiceDocument:
    """What ``invoice`` prints: its lines, its readings and where the client stood when it
    was issued.

    The PDF is the invoice as issued, the same whenever it is drawn: its balances are
    those of the account entries booked up to the issue, never today's (what is owed now
    is the statement's, the API's and the admin's).
    """
    if invoice.status == Invoice.Status.DRAFT:
        raise ValueError("a draft has no document")
    issue_date = invoice.issue_date or clock.today()
    issued_at = invoice.issued_at or clock.now()
    open_amount = invoices_open_amounts(invoice_ids=[invoice.pk], until=issued_at)[invoice.pk]
    balance = client_balances(client_id=invoice.client_id, until=issued_at).get(
        invoice.currency, Decimal(0)
    )
    elsewhere = balance - open_amount  # what the client owes (or is owed) on other documents
    # Credit beyond what this invoice asks for stays the client's (on the statement): the
    # invoice prints what it uses, and asks for nothing rather than a negative amount.
    credit_used = min(-elsewhere, open_amount) if elsewhere < 0 < open_amount else None
    due = max(balance, Decimal("0.00"))
    return documents.InvoiceDocument(
        company=company(),
        number=invoice.number,
        issue_date=issue_date,
        due_date=invoice.due_date or issue_date,
        period_start=invoice.period,
        period_end=_period_end(invoice.period),
        client=client_info(invoice.client),
        site=documents.SiteInfo(
            reference=invoice.site.reference,
            address_lines=_address(invoice.site),
            category=invoice.site.category,
        ),
        agency=agency_info(invoice.agency),
        meter=_meter_info(invoice),
        lines=_lines(invoice),
        currency=invoice.currency,
        subtotal=invoice.subtotal,
        vat_rate=invoice.tariff.vat_rate if invoice.tariff else Decimal(0),
        vat_amount=invoice.vat_amount,
        total=invoice.total,
        previous_balance=elsewhere if elsewhere > 0 else None,
        client_credit=credit_used,
        amount_paid=invoice.total - open_amount if open_amount != invoice.total else None,
        balance_due=due if due != invoice.total else None,
        exchange_rate=_rate(issue_date),
        payment_reference=invoice.number,
        payment_options=payment_options(),
        qr_payload=f"MWOLO:{invoice.number}:{invoice.total}:{invoice.currency}",
    )


def pdf_store(field: FieldFile, name: str, content: bytes) -> None:
    if field.name:
        field.storage.delete(field.name)
    field.save(name, ContentFile(content), save=False)


def invoice_pdf(*, invoice_id: int, regenerate: bool = False) -> FieldFile:
    """The stored PDF of an issued invoice, rendered now if it has none (or when asked)."""
    (invoice,) = _invoices([invoice_id])
    if not invoice.pdf or regenerate:
        language = invoice.client.preferred_language
        with translation.override(language):
            content = documents.render_invoice(invoice_document(invoice), language=language)
        pdf_store(invoice.pdf, f"{invoice.number}.pdf", content)
        Invoice.objects.filter(pk=invoice.pk).update(pdf=invoice.pdf.name)
    return invoice.pdf


def _regenerated(record: Invoice | CreditNote, *, actor: User, before: str, after: str) -> None:
    """The audit entry of a PDF drawn again: who, when, the file replaced and its successor."""
    LogEntry.objects.log_create(
        record,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        changes={"pdf": [before, after]},
        actor=actor,
    )


def invoice_pdf_regenerate(*, invoice_id: int, actor: User) -> FieldFile:
    """Draw an issued invoice's PDF again and store it in place of the old one; audited.

    The document is the invoice as issued (``invoice_document``): drawing it again changes
    only what does not come from its records (the layout or wording of a newer release,
    the client's language, the issuer's details in the settings), never its amounts. For
    staff who may issue invoices, on the invoices they see: raises ``PermissionDenied``,
    or ``ApplicationError`` (404) for an invoice they do not see or a draft.
    """
    if not actor.has_perm("billing.issue_invoice"):
        raise PermissionDenied
    invoice = visible_to(Invoice.objects.filter(pk=invoice_id), actor).first()
    if invoice is None:
        raise ApplicationError(_("This invoice does not exist."), status=404)
    if invoice.status == Invoice.Status.DRAFT:
        raise ApplicationError(_("A draft has no PDF: issue it first."), status=404)
    with transaction.atomic():
        stored = invoice_pdf(invoice_id=invoice.pk, regenerate=True)
        _regenerated(invoice, actor=actor, before=invoice.pdf.name or "", after=stored.name or "")
    return stored


def invoices_deliver(*, invoice_ids: Sequence[int]) -> int:
    """Set the clients' credit against the new invoices, render and store each issued
    invoice's PDF, then send the client their notice with it (the notification service
    picks email or SMS). Safe to run again: returns how many notices were new."""
    # Credit the clients have (overpayments) pays the new invoices (which print it as the
    # client's credit at issue).
    from mwolo.payments.services import client_credit_apply

    for client_id in set(
        Invoice.objects.filter(pk__in=invoice_ids).values_list("client_id", flat=True)
    ):
        client_credit_apply(client_id=client_id)
    sent = 0
    for invoice in _invoices(invoice_ids):
        if invoice.status == Invoice.Status.DRAFT:
            continue
        pdf = invoice_pdf(invoice_id=invoice.pk)
        with pdf.open("rb") as stored:
            content = stored.read()
        document = invoice_document(invoice)
        messages = notification_send(
            client=invoice.client,
            event="invoice_issued",
            context={
                "invoice_number": invoice.number,
                "period_start": document.period_start,
                "period_end": document.period_end,
                "amount_due": document.amount_due,
                "currency": invoice.currency,
                "due_date": document.due_date,
                "payment_reference": invoice.number,
            },
            attachments=[Attachment(filename=f"{invoice.number}.pdf", content=content)],
            related=invoice,
            idempotency_key=f"invoice_issued:{invoice.pk}",
        )
        sent += bool(messages)
    return sent


# An invoice issued this long ago whose delivery has not happened is presumed lost (the
# task normally runs seconds after the issue); older than the window, the notice is stale
# (its due date is near or past) and a person decides.
BACKLOG_GRACE = dt.timedelta(minutes=10)
BACKLOG_WINDOW = dt.timedelta(days=7)


def invoices_undelivered(*, as_of: dt.datetime) -> QuerySet[Invoice]:
    """Open invoices issued in the week before ``as_of`` (less ``BACKLOG_GRACE``) that have
    no stored PDF or no *invoice issued* notice recorded, oldest first: one query."""
    notices = Notification.objects.filter(
        event=EventKey.INVOICE_ISSUED,
        related_type=ContentType.objects.get_for_model(Invoice),
        related_id=OuterRef("pk"),
    )
    return (
        Invoice.objects.filter(
            status__in=Invoice.OPEN,
            issued_at__lt=as_of - BACKLOG_GRACE,
            issued_at__gte=as_of - BACKLOG_WINDOW,
        )
        .filter(Q(pdf="") | ~Exists(notices))
        .order_by("issued_at", "pk")
    )


@dataclass
class BacklogReport:
    found: int = 0
    delivered: int = 0
    failed: int = 0


def invoices_backlog_deliver(
    *, as_of: dt.datetime | None = None, limit: int | None = None
) -> BacklogReport:
    """Deliver the invoices a crash or a lost task left without their PDF or their notice
    (``invoices_undelivered``), at most ``limit`` of them.

    Idempotent: a delivered invoice is no longer selected, and each notice has its own
    idempotency key, so running twice sends nothing twice. One invoice's failure (a broken
    template, say) is logged and counted; the others are still delivered.
    """
    ids = list(
        invoices_undelivered(as_of=as_of or clock.now()).values_list("pk", flat=True)[:limit]
    )
    report = BacklogReport(found=len(ids))
    for invoice_id in ids:
        try:
            invoices_deliver(invoice_ids=[invoice_id])
        except Exception:  # one bad invoice must not hold the whole backlog back
            logger.exception("invoice %s could not be delivered", invoice_id)
            report.failed += 1
        else:
            report.delivered += 1
    return report


def credit_note_document(note: CreditNote) -> documents.CreditNoteDocument:
    invoice = note.invoice
    vat_rate = invoice.tariff.vat_rate if invoice.tariff else Decimal(0)
    with translation.override(note.client.preferred_language):
        label = _("Credit on invoice %s") % invoice.number
    return documents.CreditNoteDocument(
        company=company(),
        number=note.number,
        issue_date=note.issue_date,
        invoice_number=invoice.number,
        invoice_date=invoice.issue_date or note.issue_date,
        reason=note.reason,
        client=client_info(note.client),
        lines=(
            documents.InvoiceLine(
                kind=documents.LineKind.ADJUSTMENT, amount=note.subtotal, description=label
            ),
        ),
        currency=note.currency,
        subtotal=note.subtotal,
        vat_rate=vat_rate,
        vat_amount=note.vat_amount,
        total=note.total,
        agency=agency_info(note.agency),
    )


def credit_note_pdf(*, credit_note_id: int, regenerate: bool = False) -> FieldFile:
    """The stored PDF of a credit note, rendered now if it has none (or when asked)."""
    note = CreditNote.objects.select_related(
        "invoice__tariff",
        "client__commune",
        "client__territory",
        "agency__commune",
        "agency__territory",
    ).get(pk=credit_note_id)
    if not note.pdf or regenerate:
        language = note.client.preferred_language
        with translation.override(language):
            content = documents.render_credit_note(credit_note_document(note), language=language)
        pdf_store(note.pdf, f"{note.number}.pdf", content)
        CreditNote.objects.filter(pk=note.pk).update(pdf=note.pdf.name)
    return note.pdf


def credit_note_pdf_regenerate(*, credit_note_id: int, actor: User) -> FieldFile:
    """Draw a credit note's PDF again and store it in place of the old one; audited. As
    for invoices (``invoice_pdf_regenerate``), its amounts never change; for staff who may
    issue credit notes, on those they see (else ``PermissionDenied``, or
    ``ApplicationError`` 404)."""
    if not actor.has_perm("billing.add_creditnote"):
        raise PermissionDenied
    note = visible_to(CreditNote.objects.filter(pk=credit_note_id), actor).first()
    if note is None:
        raise ApplicationError(_("This credit note does not exist."), status=404)
    with transaction.atomic():
        stored = credit_note_pdf(credit_note_id=note.pk, regenerate=True)
        _regenerated(note, actor=actor, before=note.pdf.name or "", after=stored.name or "")
    return stored


def credit_note_deliver(*, credit_note_id: int) -> None:
    credit_note_pdf(credit_note_id=credit_note_id)


def statement_pdf(*, statement: Statement) -> io.BytesIO:
    """A statement of account as a PDF (rendered on request, never stored)."""
    client = statement.client
    zone = client.agency.time_zone
    with translation.override(client.preferred_language):
        agency = agency_info(client.agency)
    document = documents.StatementDocument(
        company=company(),
        client=client_info(client),
        period_start=statement.start,
        period_end=statement.end,
        issue_date=clock.today(zone),
        currency=statement.currency,
        opening_balance=statement.opening,
        entries=tuple(
            documents.StatementEntry(
                date=local_date(line.booked_at, zone),
                kind=documents.EntryKind(line.kind),
                reference=line.reference,
                debit=line.debit,
                credit=line.credit,
            )
            for line in statement.lines
        ),
        agency=agency,
    )
    with translation.override(client.preferred_language):
        content = documents.render_statement(document, language=client.preferred_language)
    return io.BytesIO(content)
