"""Receipts: the PDF of a payment, stored, and the client's notice.

Runs after the recording transaction (a Celery task of its own, retried; the reconnection
is another task, which never waits for this one); idempotent: the PDF is rendered once
unless asked again, the notice has its own idempotency key.
"""

from decimal import Decimal

from django.db.models import Sum
from django.db.models.fields.files import FieldFile
from django.utils import translation

from mwolo.billing import documents
from mwolo.billing.delivery import agency_info, client_info, company, pdf_store
from mwolo.billing.models import AccountEntry
from mwolo.billing.pricing import round_money
from mwolo.billing.selectors import client_balances
from mwolo.notifications.services import Attachment, notification_send

from .models import Method, Payment

_METHODS = {
    Method.CASH: documents.PaymentMethod.CASH,
    Method.BANK: documents.PaymentMethod.BANK,
    Method.MPESA: documents.PaymentMethod.MPESA,
    Method.VODACOM: documents.PaymentMethod.VODACOM,
    Method.AIRTEL: documents.PaymentMethod.AIRTEL,
    Method.ORANGE: documents.PaymentMethod.ORANGE,
}


def _payment(payment_id: int) -> Payment:
    return Payment.objects.select_related(
        "client__commune",
        "client__territory",
        "client__agency__province",
        "client__agency__commune",
        "client__agency__territory",
        "recorded_by",
        "token__meter",
    ).get(pk=payment_id)


def receipt_document(payment: Payment) -> documents.ReceiptDocument:
    """What a receipt prints, in the account's currency (the day's rate applied)."""
    client = payment.client
    allocations = [
        documents.Allocation(
            invoice_number=row["invoice__number"], amount=-round_money(row["total"])
        )
        for row in AccountEntry.objects.filter(
            payment=payment, invoice__isnull=False, kind=AccountEntry.Kind.PAYMENT
        )
        .values("invoice__number")
        .annotate(total=Sum("amount"))
        .order_by("invoice__number")
        if row["total"] < 0
    ]
    balance = client_balances(client_id=client.pk).get(payment.account_currency, Decimal(0))
    token = None
    if payment.token is not None:
        token = documents.PrepaidToken(
            digits=payment.token.token,
            kwh=Decimal(payment.token.energy_kwh),
            meter_serial=payment.token.meter.serial,
        )
    bought = payment.token is not None
    return documents.ReceiptDocument(
        company=company(),
        number=payment.receipt_number,
        issued_at=payment.received_at,
        time_zone=client.agency.time_zone,
        client=client_info(client),
        agency=agency_info(client.agency),
        amount=payment.amount if bought else payment.credited,
        currency=payment.currency if bought else payment.account_currency,
        method=_METHODS[Method(payment.method)],
        operator_transaction_id=payment.operator_transaction_id
        if payment.method != Method.CASH
        else "",
        payer_number=payment.payer,
        cashier_name=payment.recorded_by.get_full_name() or payment.recorded_by.username
        if payment.method == Method.CASH and payment.recorded_by
        else "",
        allocations=tuple(allocations),
        remaining_credit=-balance if balance < 0 else None,
        balance_after=balance if balance > 0 else Decimal(0),
        token=token,
    )


def receipt_pdf(
    *, payment_id: int, regenerate: bool = False, page: str = "a4"
) -> FieldFile | bytes:
    """The stored A4 receipt (rendered now if missing or asked), or the 80 mm ticket for
    the till's printer (rendered on request, never stored)."""
    payment = _payment(payment_id)
    language = payment.client.preferred_language
    if page == "ticket80":
        with translation.override(language):
            return documents.render_receipt(
                receipt_document(payment), language=language, page="ticket80"
            )
    if not payment.pdf or regenerate:
        with translation.override(language):
            content = documents.render_receipt(receipt_document(payment), language=language)
        pdf_store(payment.pdf, f"{payment.receipt_number}.pdf", content)
        Payment.objects.filter(pk=payment.pk).update(pdf=payment.pdf.name)
    return payment.pdf


def receipt_deliver(*, payment_id: int) -> None:
    """The receipt PDF to the client, by their channel (an SMS says the essentials)."""
    stored = receipt_pdf(payment_id=payment_id)
    assert isinstance(stored, FieldFile)  # noqa: S101 - the A4 receipt is stored
    payment = _payment(payment_id)
    with stored.open("rb") as file:
        content = file.read()
    document = receipt_document(payment)
    notification_send(
        client=payment.client,
        event="payment_receipt",
        context={
            "receipt_number": payment.receipt_number,
            "amount": document.amount,
            "currency": document.currency,
            "paid_at": payment.received_at,
            "method": str(Method(payment.method).label),
            # In cents like every amount the client reads: "0,00 CDF", not "0 CDF".
            "balance_due": round_money(document.balance_after or Decimal(0)),
        },
        attachments=[Attachment(filename=f"{payment.receipt_number}.pdf", content=content)],
        related=payment,
        idempotency_key=f"payment_receipt:{payment.pk}",
    )
