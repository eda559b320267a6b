"""From readings to the PDF in the client's mailbox: real files, read back as text."""

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from mwolo.billing import delivery, services
from mwolo.billing.models import ExchangeRate, Invoice
from mwolo.billing.tests.factories import OCTOBER, local, metered_site, tariff
from mwolo.core import clock
from mwolo.crm.models import Channel, PartyKind
from mwolo.notifications.models import Notification

pytestmark = pytest.mark.django_db


def text_of(pdf: bytes, folder: Path) -> str:
    path = folder / "document.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


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
        text = text_of(stored.read(), tmp_path)
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


def test_an_english_client_gets_an_english_invoice(thérèse, tmp_path):
    client = thérèse.client
    client.preferred_language = "en"
    client.save()
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])
    invoice = services.invoice_issue(invoice_id=Invoice.objects.get().pk, actor=None)

    text = text_of(delivery.invoice_pdf(invoice_id=invoice.pk).open("rb").read(), tmp_path)

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

    text = text_of(delivery.invoice_pdf(invoice_id=invoice.pk).open("rb").read(), tmp_path)

    assert "estimé" in text.lower()
    assert "930" in text


def test_a_credit_note_prints_what_it_credits(thérèse, tmp_path):
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])
    invoice = services.invoice_issue(invoice_id=Invoice.objects.get().pk, actor=None)
    note = services.credit_note_issue(
        invoice_id=invoice.pk, reason="Relevé erroné, index corrigé", actor=None
    )

    text = text_of(delivery.credit_note_pdf(credit_note_id=note.pk).open("rb").read(), tmp_path)

    for expected in (note.number, invoice.number, "Relevé erroné, index corrigé", "24 940,00"):
        assert expected in text, expected


def test_a_regenerated_pdf_shows_the_payments_since(thérèse, tmp_path):
    services.invoices_draft(period=OCTOBER, site_ids=[thérèse.pk])
    invoice = services.invoice_issue(invoice_id=Invoice.objects.get().pk, actor=None)
    first = delivery.invoice_pdf(invoice_id=invoice.pk).name
    services.credit_note_issue(
        invoice_id=invoice.pk, reason="Geste", actor=None, amount=Decimal("4940")
    )

    again = delivery.invoice_pdf(invoice_id=invoice.pk, regenerate=True)

    assert again.name.endswith(".pdf")
    assert not again.storage.exists(first) or again.name == first
    assert "20 000,00" in text_of(again.open("rb").read(), tmp_path)
