"""From readings to the PDF in the client's mailbox: real files, read back as text."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.billing import delivery, selectors, services
from mwolo.billing.models import AccountEntry, ExchangeRate, Invoice
from mwolo.billing.tests.factories import (
    OCTOBER,
    local,
    metered_site,
    pdf_qr_modules,
    pdf_text,
    tariff,
)
from mwolo.core import clock
from mwolo.core.pdf import qr_matrix
from mwolo.core.permissions import Role
from mwolo.crm.models import Channel, PartyKind
from mwolo.notifications.models import Notification
from mwolo.payments import services as payments

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def thérèse():
    tariff()
    ExchangeRate.objects.create(day=clock.today(), cdf_per_usd=Decimal("2850"))
    site = metered_site(readings=[(local("2026-09-30"), "1100"), (local("2026-10-31"), "1220")])
    client = site.client
    client.kind = PartyKind.PERSON
    client.first_name, client.last_name, client.middle_name = "Thérèse", "Kabasele", "Mbuyi"
    client.email = "therese.kabasele@demo.mwolo.cd"
    client.preferred_channel = Channel.EMAIL
    client.save()
    return site


def test_an_issued_invoice_reaches_the_client_as_a_pdf_by_email(
    thérèse, tmp_path, smtp_sink, django_capture_on_commit_callbacks
):
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])
    draft = Invoice.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        invoice = services.invoice_issue(invoice_id=draft.pk, actor=None)

    invoice.refresh_from_db()
    assert invoice.number in invoice.pdf.name
    assert invoice.pdf.name.endswith(".pdf")
    with invoice.pdf.open("rb") as stored:
        text = pdf_text(stored.read(), tmp_path)
    for expected in (
        invoice.number,
        "Kabasele Mbuyi Thérèse" if "Kabasele Mbuyi Thérèse" in text else "Thérèse Kabasele Mbuyi",
        "octobre 2026",
        "24 940,00 CDF",
        "3 440,00",
        "21 500,00",
        "TVA",
        "120",
    ):
        assert expected in text, expected

    (mail,) = smtp_sink.messages()
    assert mail["To"] == "therese.kabasele@demo.mwolo.cd"
    assert invoice.number in mail["Subject"]
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == f"{invoice.number}.pdf"
    assert attachment.get_payload(decode=True).startswith(b"%PDF")
    # Its notice is recorded once, and sending again sends nothing more.
    delivery.invoices_deliver(invoice_ids=[invoice.pk])
    assert Notification.objects.filter(event="invoice_issued", channel="email").count() == 1


SMS_SUMMARY = {
    "fr": (
        "Votre facture {number} – Mwolo Energy",
        "Mwolo Energy: facture {number} de 24 940,00 CDF à payer avant le {due}. "
        "Réf. de paiement: {number}",
    ),
    "en": (
        "Your invoice {number} – Mwolo Energy",
        "Mwolo Energy: invoice {number} for 24,940.00 CDF is due by {due}. "
        "Payment reference: {number}",
    ),
}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_client_who_reads_email_also_gets_the_invoice_summary_by_sms(
    thérèse, language, smtp_sink, sms_gateway, django_capture_on_commit_callbacks
):
    """The email carries the PDF; the SMS says what to pay, by when and with which
    reference, in the client's language, to the client's phone."""
    client = thérèse.client
    client.phone = "+243812345678"
    client.preferred_language = language
    client.save()
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])

    with django_capture_on_commit_callbacks(execute=True):
        invoice = services.invoice_issue(invoice_id=Invoice.objects.get().pk, actor=None)

    invoice.refresh_from_db()
    subject, summary = SMS_SUMMARY[language]
    expected = summary.format(number=invoice.number, due=f"{invoice.due_date:%d/%m/%Y}")
    assert invoice.due_date == invoice.issue_date + dt.timedelta(days=15)
    sent = {
        message.channel: message
        for message in Notification.objects.filter(event="invoice_issued", related_id=invoice.pk)
    }
    assert set(sent) == {"email", "sms"}
    sms = sent["sms"]
    assert (sms.recipient, sms.language, sms.body) == ("+243812345678", language, expected)
    assert sms.status == Notification.Status.SENT
    assert not sms.attachments.exists()
    assert [(text.to, text.message) for text in sms_gateway.messages] == [
        ("+243812345678", expected)
    ]
    (mail,) = smtp_sink.messages()
    assert mail["To"] == "therese.kabasele@demo.mwolo.cd"
    assert " ".join(str(mail["Subject"]).split()) == subject.format(number=invoice.number)
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == f"{invoice.number}.pdf"
    with invoice.pdf.open("rb") as stored:
        assert attachment.get_payload(decode=True) == stored.read()


def test_the_qr_code_of_the_invoice_the_client_received_carries_its_reference_and_amount(
    thérèse, django_capture_on_commit_callbacks
):
    """The stored PDF's QR code is ``MWOLO:<number>:<total>:<currency>``.

    No QR decoder is a dependency: the symbol drawn in the stored file must be, module for
    module, the one segno makes of that payload (``test_documents`` checks that what is
    drawn is what a reader's pixels show). A cent more is another symbol.
    """
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])

    with django_capture_on_commit_callbacks(execute=True):
        invoice = services.invoice_issue(invoice_id=Invoice.objects.get().pk, actor=None)

    invoice.refresh_from_db()
    with invoice.pdf.open("rb") as stored:
        drawn = pdf_qr_modules(stored.read())
    assert drawn == [list(row) for row in qr_matrix(f"MWOLO:{invoice.number}:24940.00:CDF")]
    assert drawn != [list(row) for row in qr_matrix(f"MWOLO:{invoice.number}:24940.01:CDF")]


def test_amounts_in_the_notice_are_to_the_cent_whatever_the_database_sums(
    thérèse, django_capture_on_commit_callbacks
):
    # Credit left by an earlier payment: the amount due is a sum of account entries.
    AccountEntry.objects.create(
        client=thérèse.client,
        currency="CDF",
        kind=AccountEntry.Kind.PAYMENT,
        reference="REC-2026-000001",
        booked_at=clock.now(),
        amount=Decimal("-1000.10"),
    )
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])

    with django_capture_on_commit_callbacks(execute=True):
        invoice = services.invoice_issue(invoice_id=Invoice.objects.get().pk, actor=None)

    assert str(selectors.client_balances(client_id=invoice.client_id)["CDF"]) == "23939.90"
    notice = Notification.objects.get(event="invoice_issued", channel="email")
    assert "23 939,90 CDF" in notice.body


def test_an_english_client_gets_an_english_invoice(thérèse, tmp_path):
    client = thérèse.client
    client.preferred_language = "en"
    client.save()
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])
    invoice = services.invoice_issue(invoice_id=Invoice.objects.get().pk, actor=None)

    text = pdf_text(delivery.invoice_pdf(invoice_id=invoice.pk).open("rb").read(), tmp_path)

    assert "October 2026" in text
    assert "24,940.00 CDF" in text
    assert "Invoice" in text or "INVOICE" in text


def test_an_estimated_invoice_says_so(tmp_path):
    tariff()
    site = metered_site(
        readings=[(local("2026-08-31", "09:00"), "1900"), (local("2026-09-30", "09:00"), "2800")]
    )
    services.invoices_draft(period=OCTOBER, site_ids=[site.pk])
    draft = Invoice.objects.get()
    from mwolo.accounts.tests.factories import EmployeeFactory
    from mwolo.core.permissions import Role

    services.invoice_review(
        invoice_id=draft.pk,
        actor=EmployeeFactory(role=Role.BILLING_AGENT, agency=site.agency),
        note="Compteur inaccessible",
    )
    invoice = services.invoice_issue(invoice_id=draft.pk, actor=None)

    text = pdf_text(delivery.invoice_pdf(invoice_id=invoice.pk).open("rb").read(), tmp_path)

    assert "estimé" in text.lower()
    assert "930" in text


def test_a_credit_note_prints_what_it_credits(thérèse, tmp_path):
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])
    invoice = services.invoice_issue(invoice_id=Invoice.objects.get().pk, actor=None)
    note = services.credit_note_issue(
        invoice_id=invoice.pk, reason="Relevé erroné, index corrigé", actor=None
    )

    text = pdf_text(delivery.credit_note_pdf(credit_note_id=note.pk).open("rb").read(), tmp_path)

    for expected in (note.number, invoice.number, "Relevé erroné, index corrigé", "24 940,00"):
        assert expected in text, expected


def test_the_invoice_pdf_is_the_invoice_as_issued_however_often_it_is_drawn(thérèse, tmp_path):
    """The stored PDF is the legal document: drawn again after a credit note and a
    payment, it shows the amounts of the issue; the statement shows what is owed now."""
    other = metered_site(
        agency=thérèse.agency,
        readings=[(local("2026-09-30"), "1100"), (local("2026-10-31"), "1150")],
    )
    other.client = thérèse.client
    other.save()
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk, other.pk])
    earlier = services.invoice_issue(invoice_id=Invoice.objects.get(site=other).pk, actor=None)
    assert earlier.total == D("8700.00")
    invoice = services.invoice_issue(invoice_id=Invoice.objects.get(site=thérèse).pk, actor=None)
    first = pdf_text(delivery.invoice_pdf(invoice_id=invoice.pk).open("rb").read(), tmp_path)
    services.credit_note_issue(
        invoice_id=invoice.pk, reason="Geste", actor=None, amount=Decimal("4940")
    )
    cashier = EmployeeFactory(role=Role.CASHIER, agency=thérèse.agency)
    payments.cash_session_open(
        cashier=cashier, agency_id=thérèse.agency_id, opening_cdf=D(0), opening_usd=D(0)
    )
    payments.payment_record_cash(
        cashier=cashier, client_id=thérèse.client_id, amount=D(10000), currency="CDF"
    )
    agent = EmployeeFactory(role=Role.BILLING_AGENT, agency=thérèse.agency)

    again = delivery.invoice_pdf_regenerate(invoice_id=invoice.pk, actor=agent)

    text = pdf_text(again.open("rb").read(), tmp_path)
    assert text == first
    words = " ".join(text.split())
    for expected in (
        "Total TTC 24 940,00 CDF",
        "Solde antérieur 8 700,00 CDF",  # the earlier invoice, unpaid at the issue
        "NET À PAYER 33 640,00 CDF",
    ):
        assert expected in words, expected
    assert "Déjà payé" not in words
    entry = LogEntry.objects.get_for_object(invoice).get()
    assert (entry.actor, entry.action) == (agent, LogEntry.Action.UPDATE)
    # What is owed today is the statement's: 33 640 less the credit note and the payment.
    today = clock.today("Africa/Kinshasa")
    statement = selectors.client_statement(
        client=thérèse.client, currency="CDF", start=today, end=today
    )
    now = " ".join(pdf_text(delivery.statement_pdf(statement=statement).read(), tmp_path).split())
    assert "18 700,00" in now
