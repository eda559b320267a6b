"""Billing's PDF documents, read back as a client reads them: text from pdftotext, pages and
page sizes from pypdf, the QR code from the drawn modules and the rendered pixels."""

import datetime as dt
import io
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from pypdf.generic import ContentStream
from reportlab.lib.units import mm

from mwolo.billing.documents import (
    AgencyInfo,
    Allocation,
    ClientInfo,
    CreditNoteDocument,
    EntryKind,
    ExchangeRate,
    InvoiceDocument,
    InvoiceLine,
    LineKind,
    MeterInfo,
    PaymentMethod,
    PaymentOption,
    PrepaidToken,
    ReceiptDocument,
    SiteInfo,
    StatementDocument,
    StatementEntry,
    render_credit_note,
    render_invoice,
    render_receipt,
    render_statement,
)
from mwolo.billing.tests.factories import pdf_qr_modules
from mwolo.core import pdf
from mwolo.core.pdf import Company

D = Decimal
COMPANY = Company(
    name="Mwolo Energy Systems",
    address_lines=("45, boulevard du 30 Juin, Gombe", "Kinshasa, République démocratique du Congo"),
    rccm="CD/KNG/RCCM/24-B-01234",
    national_id="01-93-N45678K",
    tax_number="A2412345B",
    phone="+243 81 555 0100",
    email="facturation@mwolo.cd",
)
THERESE = ClientInfo(
    name="Kabasele Mbuyi Thérèse",
    number="CL-0000123",
    address_lines=("17, avenue de l’Université", "Lemba, Kinshasa"),
    phone="+243 81 234 5678",
)
SMK = ClientInfo(
    name="Société Minière du Katanga",
    number="CL-0000456",
    address_lines=("220, avenue Mama Yemo", "Lubumbashi, Haut-Katanga"),
)
LIMETE = AgencyInfo(
    name="Agence Kinshasa-Limete",
    address_lines=("12, boulevard Lumumba, 1ère rue", "Limete, Kinshasa"),
    phone="+243825550102",
    opening_hours="Lun–ven 8 h–16 h, sam 8 h–12 h",
)
PAYLOAD = "MWOLO:FAC-2026-000123:123450.60:CDF"

# 2 500 + 6 000 + 37 500 + 59 400 + 1 022,93 = 106 422,93; VAT 17 027,67; 123 450,60.
LINES = (
    InvoiceLine(LineKind.FIXED_CHARGE, D("2500.00")),
    InvoiceLine(LineKind.SOCIAL, D("6000.00"), D(50), D(120), D(0), D(50)),
    InvoiceLine(LineKind.ENERGY, D("37500.00"), D(150), D(250), D(50), D(200)),
    InvoiceLine(LineKind.ENERGY, D("59400.00"), D(180), D(330), D(200), None),
    InvoiceLine(LineKind.ADJUSTMENT, D("1022.93"), description="relevé estimé de septembre"),
)


def invoice(**changes) -> InvoiceDocument:
    values = {
        "company": COMPANY,
        "number": "FAC-2026-000123",
        "issue_date": dt.date(2026, 11, 2),
        "due_date": dt.date(2026, 11, 16),
        "period_start": dt.date(2026, 10, 1),
        "period_end": dt.date(2026, 10, 31),
        "client": THERESE,
        "site": SiteInfo("ST-0000789", THERESE.address_lines, "residential"),
        "agency": LIMETE,
        "meter": MeterInfo(
            "MW20260042",
            D("12345"),
            dt.date(2026, 9, 30),
            D("12725"),
            dt.date(2026, 10, 31),
            D(380),
        ),
        "lines": LINES,
        "currency": "CDF",
        "subtotal": D("106422.93"),
        "vat_rate": D("0.16"),
        "vat_amount": D("17027.67"),
        "total": D("123450.60"),
        "payment_reference": "FAC-2026-000123",
        "payment_options": (
            PaymentOption(PaymentMethod.VODACOM, "581234", "*1222# › Paiements"),
            PaymentOption(PaymentMethod.AIRTEL, "MWOLO"),
            PaymentOption(PaymentMethod.ORANGE, "104455"),
            PaymentOption(PaymentMethod.CASH),
        ),
        "qr_payload": PAYLOAD,
    }
    values.update(changes)
    return InvoiceDocument(**values)


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(content)
    return path


def pdftotext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def pages_text(path: Path) -> list[str]:
    return pdftotext(path).split("\f")[:-1]


def squeeze(text: str) -> str:
    """Runs of spaces as one: pdftotext -layout pads columns."""
    return re.sub(r" +", " ", text)


def reading_order(path: Path) -> str:
    """The text in the order it is drawn, lines joined: for sentences wrapped over lines."""
    return " ".join(" ".join(page.extract_text().split()) for page in pypdf.PdfReader(path).pages)


# --- Invoice -------------------------------------------------------------------------------


def test_a_french_invoice_shows_what_the_client_must_read(tmp_path):
    path = write(tmp_path, "invoice", render_invoice(invoice()))
    text = pdftotext(path)
    assert len(pypdf.PdfReader(path).pages) == 1
    assert "FACTURE" in text
    assert "FAC-2026-000123" in text
    assert "Kabasele Mbuyi Thérèse" in text
    assert "17, avenue de l’Université" in text
    assert "N° client CL-0000123" in text
    assert "Catégorie : Résidentiel" in text
    assert "Date d’émission" in text
    assert "2 novembre 2026" in text
    assert "Date d’échéance" in text
    assert "16 novembre 2026" in text
    assert "Période" in text
    assert "octobre 2026" in text
    assert "Redevance fixe mensuelle" in text
    assert "Tranche sociale, de 0 à 50 kWh" in text
    assert "Énergie, de 50 à 200 kWh" in text
    assert "Énergie au-delà de 200 kWh" in text
    assert "Régularisation : relevé estimé de septembre" in text
    assert "106 422,93 CDF" in text
    assert "TVA 16 %" in text
    assert "17 027,67 CDF" in text
    assert "123 450,60 CDF" in text
    words = "Cent vingt-trois mille quatre cent cinquante francs congolais et 60 centimes"
    assert words in reading_order(path)
    assert "Vodacom M-Pesa : code marchand 581234, référence FAC-2026-000123" in text
    assert "Espèces au guichet : Agence Kinshasa-Limete, Lun–ven 8 h–16 h" in text
    assert "Page 1 / 1" in text
    assert "estimé" not in text.replace("relevé estimé de septembre", "")


def test_an_estimated_reading_is_marked(tmp_path):
    meter = invoice().meter
    estimated = invoice(meter=MeterInfo(**{**meter.__dict__, "estimated": True}))
    text = pdftotext(write(tmp_path, "estimated", render_invoice(estimated)))
    assert "Relevé estimé" in text


def test_balances_the_other_currency_and_the_amount_due(tmp_path):
    document = invoice(
        previous_balance=D("20000.00"),
        client_credit=D("1450.60"),
        amount_paid=D("2000.00"),
        balance_due=D("140000.00"),
        exchange_rate=ExchangeRate(D("2800"), dt.date(2026, 11, 2)),
    )
    path = write(tmp_path, "balances", render_invoice(document))
    text = pdftotext(path)
    assert "Solde antérieur" in text
    assert "20 000,00 CDF" in text
    assert "Crédit client" in text
    assert "-1 450,60 CDF" in text
    assert "Déjà payé" in text
    assert "-2 000,00 CDF" in text
    assert "NET À PAYER" in text
    assert "140 000,00 CDF" in text
    # 140 000 / 2 800 = 50 USD
    equivalent = "Équivalent : 50,00 USD au taux du 2 novembre 2026, 1 USD = 2 800,00 CDF"
    assert equivalent in reading_order(path)


def test_an_english_client_gets_an_english_invoice(tmp_path):
    path = write(tmp_path, "english", render_invoice(invoice(), language="en"))
    text = pdftotext(path)
    assert "INVOICE" in text
    assert "Issue date" in text
    assert "2 November 2026" in text
    assert "Due date" in text
    assert "16 November 2026" in text
    assert "October 2026" in text
    assert "123,450.60 CDF" in text
    assert "VAT 16%" in text
    assert "Vodacom M-Pesa: merchant code 581234, reference FAC-2026-000123" in text
    words = "One hundred twenty-three thousand four hundred fifty Congolese francs and 60 centimes"
    assert words in reading_order(path)
    assert "Category: Residential" in text


def test_a_usd_invoice_shows_dollars_and_their_franc_equivalent(tmp_path):
    lines = (
        InvoiceLine(LineKind.FIXED_CHARGE, D("50.00")),
        InvoiceLine(LineKind.ENERGY, D("120.00"), D(1000), D("0.12"), D(0), None),
    )
    document = invoice(
        lines=lines,
        currency="USD",
        subtotal=D("170.00"),
        vat_amount=D("27.20"),
        total=D("197.20"),
        exchange_rate=ExchangeRate(D("2850"), dt.date(2026, 11, 2)),
        qr_payload="MWOLO:FAC-2026-000123:197.20:USD",
    )
    path = write(tmp_path, "usd", render_invoice(document))
    text = pdftotext(path)
    assert "197,20 USD" in text
    assert "0,12" in text  # the price per kWh
    assert "562 020,00 CDF" in text  # 197,20 × 2 850
    assert "Cent quatre-vingt-dix-sept dollars américains et 20 cents" in reading_order(path)


def test_a_draft_has_no_number_and_says_so(tmp_path):
    path = write(tmp_path, "draft", render_invoice(invoice(number=None)))
    text = pdftotext(path)
    assert re.search(r"Facture n° +PROJET", text)
    # and across the page (pdftotext -layout leaves out slanted text; pypdf reads it)
    assert reading_order(path).count("PROJET") == 2


def test_many_lines_continue_on_a_second_page_with_the_totals_on_the_last(tmp_path):
    lines = tuple(
        InvoiceLine(LineKind.ADJUSTMENT, D("100.00"), description=f"correction n° {index}")
        for index in range(40)
    )
    document = invoice(
        lines=lines, subtotal=D("4000.00"), vat_amount=D("640.00"), total=D("4640.00")
    )
    path = write(tmp_path, "long", render_invoice(document))
    pages = pages_text(path)
    assert len(pages) >= 2
    assert f"Page 2 / {len(pages)}" in pages[1]
    for page in pages:
        assert "Désignation" in page  # the column titles on every page
    assert "Suite à la page suivante" in pages[0]
    assert "Facture FAC-2026-000123 (suite)" in pages[1]
    assert "NET À PAYER" not in pages[0]
    assert "NET À PAYER" in pages[-1]
    shown = [int(n) for page in pages for n in re.findall(r"correction n° (\d+)", page)]
    assert shown == list(range(40))  # every line once, in order


def test_a_dozen_lines_and_every_balance_fit_on_one_page(tmp_path):
    lines = (
        *LINES,
        *(InvoiceLine(LineKind.ADJUSTMENT, D("0.00"), description=f"n° {i}") for i in range(7)),
    )
    document = invoice(
        lines=lines,
        previous_balance=D("20000.00"),
        client_credit=D("1450.60"),
        amount_paid=D("2000.00"),
        balance_due=D("140000.00"),
        exchange_rate=ExchangeRate(D("2800"), dt.date(2026, 11, 2)),
    )
    path = write(tmp_path, "dozen", render_invoice(document))
    assert len(pypdf.PdfReader(path).pages) == 1


def test_a_single_block_tariff_prints_plain_energy(tmp_path):
    lines = (InvoiceLine(LineKind.ENERGY, D("350.00"), D(1), D(350), D(0), None),)
    document = invoice(lines=lines, subtotal=D("350.00"), vat_amount=D("56.00"), total=D("406.00"))
    text = pdftotext(write(tmp_path, "single", render_invoice(document)))
    assert re.search(r"^ *Énergie +1 kWh", text, re.M)


def test_the_qr_code_carries_the_payment_payload(tmp_path):
    """What is drawn is the QR symbol of the payload, module for module.

    No QR decoder is installed (zbarimg is not), so the symbol segno encodes for the
    payload is the reference: the form XObject's rectangles must cover exactly its dark
    modules, and the rendered page must be dark at the centre of exactly those modules.
    """
    content = render_invoice(invoice())
    path = write(tmp_path, "qr", content)
    reader = pypdf.PdfReader(path)
    page = reader.pages[0]
    expected = [list(row) for row in pdf.qr_matrix(PAYLOAD)]
    modules = len(expected)

    assert pdf_qr_modules(content) == expected  # every dark module once, nothing else

    operations = ContentStream(page.get_contents(), reader).operations
    placed = next(
        operations[index - 1][0]
        for index, (operands, operator) in enumerate(operations)
        if operator == b"Do" and operands[0] == "/FormXob.mwolo-qr"
    )
    scale, left, bottom = float(placed[0]), float(placed[4]), float(placed[5])
    dpi = 150
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(dpi),
            "-gray",
            "-png",
            "-singlefile",
            str(path),
            str(tmp_path / "qr"),
        ],
        check=True,
    )
    image = Image.open(tmp_path / "qr.png").convert("L")
    height_pt = float(page.mediabox.height)
    seen = []
    for row in range(modules):
        seen_row = []
        for column in range(modules):
            x_pt = left + (column + 0.5) * scale
            y_pt = bottom + (modules - row - 0.5) * scale
            pixel = image.getpixel((round(x_pt * dpi / 72), round((height_pt - y_pt) * dpi / 72)))
            seen_row.append(1 if pixel < 128 else 0)
        seen.append(seen_row)
    assert seen == expected


def test_an_invoice_whose_lines_do_not_add_up_is_refused():
    with pytest.raises(ValueError, match="lines add up"):
        invoice(subtotal=D("100.00"))
    with pytest.raises(ValueError, match="not the total"):
        invoice(total=D("123450.61"))
    with pytest.raises(ValueError, match="balance due should be"):
        invoice(previous_balance=D("10.00"), balance_due=D("123450.60"))
    with pytest.raises(ValueError, match="not rounded"):
        invoice(amount_paid=D("1.001"))
    with pytest.raises(ValueError, match="unknown currency"):
        invoice(currency="EUR")
    with pytest.raises(ValueError, match="needs a description"):
        InvoiceLine(LineKind.ADJUSTMENT, D("1.00"))
    with pytest.raises(ValueError, match="merchant code"):
        PaymentOption(PaymentMethod.AIRTEL)


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="no document language"):
        render_invoice(invoice(), language="sw")


# --- Credit note ---------------------------------------------------------------------------


def credit_note() -> CreditNoteDocument:
    return CreditNoteDocument(
        company=COMPANY,
        number="AV-2026-000012",
        issue_date=dt.date(2026, 12, 2),
        invoice_number="FAC-2026-000456",
        invoice_date=dt.date(2026, 11, 2),
        reason="Relevé erroné « index inversé » : cœur de la réclamation du client",
        client=SMK,
        lines=(InvoiceLine(LineKind.ENERGY, D("1200.00"), D(10000), D("0.12"), D(0), None),),
        currency="USD",
        subtotal=D("1200.00"),
        vat_rate=D("0.16"),
        vat_amount=D("192.00"),
        total=D("1392.00"),
        agency=LIMETE,
    )


def test_a_credit_note_names_the_invoice_it_credits(tmp_path):
    path = write(tmp_path, "credit", render_credit_note(credit_note()))
    text = pdftotext(path)
    assert "AVOIR" in text
    assert "AV-2026-000012" in text
    assert "Facture créditée" in text
    assert "FAC-2026-000456" in text
    assert "2 novembre 2026" in text
    assert "2 décembre 2026" in text
    assert "Société Minière du Katanga" in text
    reason = "Relevé erroné « index inversé » : cœur de la réclamation du client"
    assert reason in reading_order(path)
    assert "TVA 16 %" in text
    assert "192,00 USD" in text
    assert "TOTAL CRÉDITÉ" in text
    assert "1 392,00 USD" in text
    assert "Mille trois cent quatre-vingt-douze dollars américains" in reading_order(path)


# --- Statement -----------------------------------------------------------------------------


def statement(entries: int) -> StatementDocument:
    rows = []
    for index in range(entries):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=index)
        if index % 2 == 0:
            rows.append(
                StatementEntry(day, EntryKind.INVOICE, f"FAC-2026-{index:06d}", debit=D("1000.00"))
            )
        else:
            rows.append(
                StatementEntry(day, EntryKind.PAYMENT, f"REC-2026-{index:06d}", credit=D("900.00"))
            )
    return StatementDocument(
        company=COMPANY,
        client=THERESE,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 31),
        issue_date=dt.date(2027, 1, 2),
        currency="CDF",
        opening_balance=D("500.00"),
        entries=tuple(rows),
        agency=LIMETE,
    )


def test_a_long_statement_spans_pages_with_headers_and_numbers(tmp_path):
    document = statement(300)
    path = write(tmp_path, "statement", render_statement(document))
    pages = pages_text(path)
    assert len(pages) == len(pypdf.PdfReader(path).pages) > 4
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} / {len(pages)}" in page
        assert "Référence" in page
        assert "Solde" in page
    # 500 + 150 × 1 000 − 150 × 900 = 15 500
    assert document.closing_balance == D("15500.00")
    assert "Solde de clôture" in pages[-1]
    assert "15 500,00" in pages[-1]
    assert "RELEVÉ DE COMPTE" in pages[0]
    assert "1er janvier 2026 – 31 décembre 2026" in pages[0]
    references = [ref for page in pages for ref in re.findall(r"(?:FAC|REC)-2026-\d{6}", page)]
    assert references == [entry.reference for entry in document.entries]


def test_a_statement_shows_the_running_balance(tmp_path):
    text = pdftotext(write(tmp_path, "short", render_statement(statement(3))))
    lines = [squeeze(line.strip()) for line in text.splitlines()]
    assert "Solde d’ouverture 500,00" in lines
    assert "1er janvier 2026 Facture FAC-2026-000000 1 000,00 1 500,00" in lines
    assert "2 janvier 2026 Paiement REC-2026-000001 900,00 600,00" in lines
    assert "3 janvier 2026 Facture FAC-2026-000002 1 000,00 1 600,00" in lines


# --- Receipt -------------------------------------------------------------------------------


def receipt(**changes) -> ReceiptDocument:
    values = {
        "company": COMPANY,
        "number": "REC-2026-000045",
        "issued_at": dt.datetime(2026, 12, 2, 13, 5, tzinfo=dt.UTC),
        "time_zone": "Africa/Kinshasa",
        "client": THERESE,
        "agency": LIMETE,
        "amount": D("150000.00"),
        "currency": "CDF",
        "method": PaymentMethod.AIRTEL,
        "operator_transaction_id": "MP261202.1305.A12345",
        "payer_number": "+243 97 123 4567",
        "allocations": (
            Allocation("FAC-2026-000098", D("26549.40")),
            Allocation("FAC-2026-000123", D("123450.60")),
        ),
        "remaining_credit": D("0.00"),
        "balance_after": D("0.00"),
        "token": PrepaidToken("12345678901234567890", D("45.5"), "MW20260042"),
    }
    values.update(changes)
    return ReceiptDocument(**values)


def test_a_receipt_shows_the_payment_and_the_token(tmp_path):
    text = pdftotext(write(tmp_path, "receipt", render_receipt(receipt())))
    assert "REÇU DE PAIEMENT" in text
    assert "REC-2026-000045" in text
    assert "2 décembre 2026" in text
    assert "14:05 (UTC+1)" in text
    assert "150 000,00 CDF" in text
    assert "Airtel Money" in text
    assert "MP261202.1305.A12345" in text
    assert "+243 97 123 4567" in text
    assert "FAC-2026-000098" in text
    assert "26 549,40 CDF" in text
    assert "1234 5678 9012 3456 7890" in text
    assert "45,5 kWh pour le compteur MW20260042" in text


def test_a_receipt_is_dated_in_the_agencys_zone(tmp_path):
    late = receipt(
        issued_at=dt.datetime(2026, 12, 1, 22, 30, tzinfo=dt.UTC), time_zone="Africa/Lubumbashi"
    )
    text = pdftotext(write(tmp_path, "late", render_receipt(late, language="en")))
    assert "2 December 2026" in text
    assert "00:30 (UTC+2)" in text


def test_a_cash_receipt_names_the_cashier(tmp_path):
    cash = receipt(
        method=PaymentMethod.CASH,
        operator_transaction_id="",
        payer_number="",
        cashier_name="Ngalula Kapinga",
        token=None,
    )
    text = pdftotext(write(tmp_path, "cash", render_receipt(cash)))
    assert "Espèces" in text
    assert "Caissier" in text
    assert "Ngalula Kapinga" in text


def test_the_ticket_is_80_mm_wide_and_holds_everything(tmp_path):
    path = write(tmp_path, "ticket", render_receipt(receipt(), page="ticket80"))
    reader = pypdf.PdfReader(path)
    assert len(reader.pages) == 1
    assert float(reader.pages[0].mediabox.width) == pytest.approx(80 * mm, abs=0.01)
    text = pdftotext(path)
    assert "REÇU DE PAIEMENT" in text
    assert "REC-2026-000045" in text
    assert "Kabasele Mbuyi Thérèse" in text
    assert "150 000,00 CDF" in text
    assert "1234 5678 9012 3456 7890" in text


def test_a_receipt_that_cannot_be_true_is_refused():
    with pytest.raises(ValueError, match="transaction id"):
        receipt(operator_transaction_id="")
    with pytest.raises(ValueError, match="timezone-aware"):
        receipt(issued_at=dt.datetime(2026, 12, 2, 13, 5))  # noqa: DTZ001 - the point
    with pytest.raises(ValueError, match="allocated out of"):
        receipt(amount=D("100.00"))
    with pytest.raises(ValueError, match="no receipt page"):
        render_receipt(receipt(), page="a5")


# --- Formats -------------------------------------------------------------------------------


def test_dates_and_periods():
    assert pdf.format_date(dt.date(2026, 12, 2), "fr") == "2 décembre 2026"
    assert pdf.format_date(dt.date(2026, 12, 1), "fr") == "1er décembre 2026"
    assert pdf.format_date(dt.date(2026, 12, 1), "en") == "1 December 2026"
    assert pdf.format_period(dt.date(2026, 2, 1), dt.date(2026, 2, 28), "fr") == "février 2026"
    assert (
        pdf.format_period(dt.date(2026, 2, 15), dt.date(2026, 3, 14), "en")
        == "15 February 2026 – 14 March 2026"
    )


def test_tokens_are_grouped_for_reading_aloud():
    assert pdf.format_token("123456789") == "123 456 789"
    assert pdf.format_token("12345678901234567890") == "1234 5678 9012 3456 7890"


amounts = st.decimals(min_value=-(10**12), max_value=10**12, places=2)


def parse_amount(text: str, language: str) -> Decimal:
    number, currency = text.rsplit(" ", 1)
    assert currency == "CDF"
    thousands, mark = (" ", ",") if language == "fr" else (",", ".")
    whole, fraction = number.split(mark)
    groups = whole.lstrip("-").split(thousands)
    assert all(len(group) == 3 for group in groups[1:])
    assert 1 <= len(groups[0]) <= 3
    return Decimal(f"{whole.replace(thousands, '')}.{fraction}")


@given(amount=amounts)
def test_money_reads_back_in_both_languages(amount):
    for language in ("fr", "en"):
        assert parse_amount(pdf.format_money(amount, "CDF", language), language) == amount


def test_money_examples():
    assert pdf.format_money(D("123450.6"), "CDF", "fr") == "123 450,60 CDF"
    assert pdf.format_money(D("123450.6"), "CDF", "en") == "123,450.60 CDF"
    assert pdf.format_money(D("-0.005"), "USD", "fr") == "-0,01 USD"
    assert pdf.format_percent(D("0.16"), "fr") == "16 %"
    assert pdf.format_percent(D("0.165"), "en") == "16.5%"


# --- Numbers in words ----------------------------------------------------------------------

FR_SMALL = {
    word: value
    for value, word in enumerate(
        [
            "zéro",
            "un",
            "deux",
            "trois",
            "quatre",
            "cinq",
            "six",
            "sept",
            "huit",
            "neuf",
            "dix",
            "onze",
            "douze",
            "treize",
            "quatorze",
            "quinze",
            "seize",
        ]
    )
} | {"vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60}
FR_SCALES = {
    "mille": 10**3,
    "million": 10**6,
    "millions": 10**6,
    "milliard": 10**9,
    "milliards": 10**9,
}


def parse_french(words: str) -> int:
    """The test's own reading of French numbers, to check the speller against."""
    total = current = 0
    previous = ""
    for token in words.replace("-", " ").split():
        if token == "et":
            continue
        if token in ("vingt", "vingts") and previous == "quatre":
            current += 80 - 4
        elif token in FR_SMALL:
            current += FR_SMALL[token]
        elif token in ("cent", "cents"):
            current = (current or 1) * 100
        elif token in FR_SCALES:
            total += (current or 1) * FR_SCALES[token]
            current = 0
        else:
            raise AssertionError(f"unknown word {token!r} in {words!r}")
        previous = token
    return total + current


EN_SMALL = {
    word: value
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
} | {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
EN_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9}


def parse_english(words: str) -> int:
    total = current = 0
    for token in words.replace("-", " ").split():
        if token in EN_SMALL:
            current += EN_SMALL[token]
        elif token == "hundred":
            current *= 100
        elif token in EN_SCALES:
            total += current * EN_SCALES[token]
            current = 0
        else:
            raise AssertionError(f"unknown word {token!r} in {words!r}")
    return total + current


numbers = st.integers(min_value=0, max_value=pdf.MAX_IN_WORDS) | st.integers(0, 2000)


@given(n=numbers)
def test_numbers_in_words_read_back(n):
    assert parse_french(pdf.number_in_words(n, "fr")) == n
    assert parse_english(pdf.number_in_words(n, "en")) == n


NOUNS = {"million", "millions", "milliard", "milliards"}


@given(n=numbers)
def test_french_spelling_rules(n):
    tokens = pdf.number_in_words(n, "fr").split()
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        # "mille" is invariable and never counted by a lone "un" (but "deux cent un mille").
        assert token != "milles"
        if token == "mille" and index and tokens[index - 1] == "un":
            assert index >= 2
            assert tokens[index - 2] not in NOUNS
        # "cents" and "quatre-vingts" take their s only at the end or before a noun…
        if token == "cents" or token.endswith("quatre-vingts"):
            assert following is None or following in NOUNS
        # … and lose it when anything else follows.
        if token == "quatre-vingt" or (token == "cent" and index and tokens[index - 1] in FR_SMALL):
            assert following is not None
            assert following not in NOUNS
        # a hundred is "cent", never "un cent".
        if token in ("cent", "cents") and index:
            assert tokens[index - 1] != "un"
        # "et" only in 21, 31, 41, 51, 61 and 71, never in 81 or 91.
        if token == "et":
            assert tokens[index - 1] in ("vingt", "trente", "quarante", "cinquante", "soixante")
            assert following in ("un", "onze")
        # hyphens join only the words of a number below a hundred.
        if "-" in token:
            assert all(part in FR_SMALL or part in ("vingt", "vingts") for part in token.split("-"))
        # millions and milliards are counted nouns, singular only for exactly one.
        if token in NOUNS:
            one = tokens[index - 1] == "un" and (index == 1 or tokens[index - 2] in NOUNS)
            assert token.endswith("s") != one


def test_french_examples():
    cases = {
        0: "zéro",
        1: "un",
        21: "vingt et un",
        71: "soixante et onze",
        80: "quatre-vingts",
        81: "quatre-vingt-un",
        91: "quatre-vingt-onze",
        100: "cent",
        200: "deux cents",
        201: "deux cent un",
        1000: "mille",
        21000: "vingt et un mille",
        80000: "quatre-vingt mille",
        200000: "deux cent mille",
        1_000_000: "un million",
        200_000_000: "deux cents millions",
        123_450: "cent vingt-trois mille quatre cent cinquante",
        2_000_000_000: "deux milliards",
    }
    for n, words in cases.items():
        assert pdf.number_in_words(n, "fr") == words


def test_amounts_in_words():
    assert pdf.amount_in_words(D("123450.60"), "CDF", "fr") == (
        "Cent vingt-trois mille quatre cent cinquante francs congolais et 60 centimes"
    )
    assert pdf.amount_in_words(D("1.01"), "CDF", "fr") == "Un franc congolais et 1 centime"
    assert pdf.amount_in_words(D("2000000"), "CDF", "fr") == "Deux millions de francs congolais"
    assert pdf.amount_in_words(D("1"), "USD", "en") == "One US dollar"
    assert pdf.amount_in_words(D("21.5"), "USD", "en") == "Twenty-one US dollars and 50 cents"
    with pytest.raises(ValueError, match="negative"):
        pdf.amount_in_words(D("-1"), "CDF", "fr")
    with pytest.raises(ValueError, match="outside"):
        pdf.amount_in_words(D(10**12), "CDF", "fr")


@given(amount=st.decimals(min_value=0, max_value=pdf.MAX_IN_WORDS, places=2))
def test_an_amount_in_words_reads_back(amount):
    words = pdf.amount_in_words(amount, "CDF", "fr")
    whole = words.lower().split(" franc")[0].removesuffix(" de")
    cents = re.search(r" et (\d+) centimes?$", words)
    assert parse_french(whole) + Decimal(int(cents.group(1)) if cents else 0) / 100 == amount


# --- Layout arithmetic ---------------------------------------------------------------------


@given(
    count=st.integers(0, 500),
    first=st.integers(1, 60),
    other=st.integers(1, 60),
    closing=st.integers(0, 20),
)
def test_rows_are_split_over_pages_in_order_within_their_room(count, first, other, closing):
    if other < closing + 1:
        with pytest.raises(ValueError, match="at least one row"):
            pdf.split_rows(count, first=first, other=other, closing=closing)
        return
    pages = pdf.split_rows(count, first=first, other=other, closing=closing)
    assert [row for page in pages for row in page] == list(range(count))
    for index, page in enumerate(pages):
        room = first if index == 0 else other
        last = index == len(pages) - 1
        assert len(page) + (closing if last else 0) <= room
    if count and len(pages) > 1:
        assert len(pages[-1]) >= 1  # totals never stand alone


@given(
    matrix=st.integers(1, 30).flatmap(
        lambda size: st.lists(
            st.lists(st.integers(0, 1), min_size=size, max_size=size), min_size=size, max_size=size
        )
    )
)
def test_qr_rectangles_cover_exactly_the_dark_modules(matrix):
    covered = [[0] * len(row) for row in matrix]
    for column, row, width, height in pdf.qr_rectangles(matrix):
        for y in range(row, row + height):
            for x in range(column, column + width):
                covered[y][x] += 1
    assert covered == matrix


def test_a_document_is_the_same_bytes_every_time():
    assert render_invoice(invoice()) == render_invoice(invoice())
    assert io.BytesIO(render_invoice(invoice())).read(5) == b"%PDF-"
