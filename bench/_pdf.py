"""Invoice PDFs per second: our canvas renderer against the straightforward platypus one.

The baseline is what a competent developer writes first with ReportLab's platypus: a
``SimpleDocTemplate`` of ``Paragraph``s and ``Table``s styled with ``TableStyle``, the QR
code from ReportLab's own ``QrCodeWidget`` in a ``Drawing``, the same labels, formats and
content as ``mwolo.billing.documents.render_invoice``. Both render the same varied invoices
in the same run, after a warm-up, taking turns on slices of them, timed by wall clock, with
the same ReportLab settings (``mwolo.core.pdf`` turns ASCII85 off for the whole process, so
the baseline gets that too). Needs Django's settings (for the translations), not a database.

    python -m bench._pdf [--n 500]
"""

import datetime as dt
import io
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from reportlab.pdfgen.canvas import Canvas

if TYPE_CHECKING:
    from mwolo.billing.documents import InvoiceDocument

BASELINE = "platypus SimpleDocTemplate + Table + QrCodeWidget"
WARM_UP = 10
SLICE = 25


def sample_company() -> Any:
    from mwolo.core.pdf import Company

    return Company(
        name="Mwolo Energy Systems",
        address_lines=(
            "45, boulevard du 30 Juin, Gombe",
            "Kinshasa, République démocratique du Congo",
        ),
        rccm="CD/KNG/RCCM/24-B-01234",
        national_id="01-93-N45678K",
        tax_number="A2412345B",
        phone="+243 81 555 0100",
        email="facturation@mwolo.cd",
        website="mwolo.cd",
    )


def sample_invoice_documents(n: int, seed: int = 0) -> list["InvoiceDocument"]:
    """``n`` realistic invoices: names and places of the demo, 2–6 lines, CDF and USD."""
    from mwolo.billing.documents import (
        AgencyInfo,
        ClientInfo,
        ExchangeRate,
        InvoiceDocument,
        InvoiceLine,
        LineKind,
        MeterInfo,
        PaymentMethod,
        PaymentOption,
        SiteInfo,
    )
    from mwolo.billing.pricing import round_money
    from mwolo.demo import data

    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    company = sample_company()
    documents = []
    for index in range(n):
        agency = rng.choice(data.AGENCIES)
        last_names = data.REGIONAL_LAST_NAMES[agency.names]
        if rng.random() < 0.25:
            organisation = rng.choice(data.COMPANY_KINDS)
            name = organisation.pattern.format(
                name=rng.choice(data.BUSINESS_NAMES),
                family=rng.choice(last_names),
                saint=rng.choice(data.SAINTS),
            )
            category = str(organisation.category)
        else:
            name = (
                f"{rng.choice(last_names)} {rng.choice(last_names)} {rng.choice(data.FIRST_NAMES)}"
            )
            category = "residential"
        usd = rng.random() < 0.2
        currency = "USD" if usd else "CDF"
        previous = Decimal(rng.randint(1000, 60000))
        consumption = Decimal(rng.randint(20, 900))
        lines = [InvoiceLine(LineKind.FIXED_CHARGE, Decimal("5.00") if usd else Decimal("2500.00"))]
        bands = ((Decimal(0), Decimal(50)), (Decimal(50), Decimal(200)), (Decimal(200), None))
        prices = (
            (Decimal("0.0400"), Decimal("0.0900"), Decimal("0.1250"))
            if usd
            else (Decimal("120"), Decimal("250"), Decimal("330"))
        )
        left = consumption
        for band_index, ((low, high), price) in enumerate(zip(bands, prices, strict=True)):
            if left <= 0 or len(lines) >= rng.randint(3, 5):
                break
            taken = left if high is None else min(left, high - low)
            kind = (
                LineKind.SOCIAL
                if band_index == 0 and category == "residential"
                else LineKind.ENERGY
            )
            lines.append(InvoiceLine(kind, round_money(taken * price), taken, price, low, high))
            left -= taken
        if rng.random() < 0.3:
            # Last month's estimate gave back: at most a tenth of this month's energy.
            given_back = min(Decimal(rng.randint(1, 40)), consumption / 10)
            lines.append(
                InvoiceLine(
                    LineKind.ADJUSTMENT,
                    -round_money(given_back * prices[1]),
                    description="relevé estimé de septembre 2026",
                )
            )
        subtotal = sum((line.amount for line in lines), Decimal(0))
        vat = round_money(subtotal * Decimal("0.16"))
        total = subtotal + vat
        previous_balance = round_money(total * Decimal(rng.choice((0, 0, 1, 2)) / 3))
        paid = round_money(previous_balance / 2)
        number = f"FAC-2026-{index + 1:06d}"
        street = rng.choice(agency.streets)
        commune = rng.choice(agency.areas).commune
        address = (f"{rng.randint(1, 400)}, {street}", f"{commune}, {agency.city}")
        documents.append(
            InvoiceDocument(
                company=company,
                number=number,
                issue_date=dt.date(2026, 11, 2),
                due_date=dt.date(2026, 11, 16),
                period_start=dt.date(2026, 10, 1),
                period_end=dt.date(2026, 10, 31),
                client=ClientInfo(
                    name, f"CL-{rng.randint(1, 999999):07d}", address, "+243 81 234 5678"
                ),
                site=SiteInfo(f"ST-{rng.randint(1, 999999):07d}", address, category),
                agency=AgencyInfo(
                    agency.name,
                    (agency.address_line, f"{agency.commune}, {agency.city}"),
                    agency.phone,
                    "Lun–ven 8 h–16 h, sam 8 h–12 h",
                ),
                meter=MeterInfo(
                    f"MW{rng.randint(10_000_000, 99_999_999)}",
                    previous,
                    dt.date(2026, 9, 30),
                    previous + consumption,
                    dt.date(2026, 10, 31),
                    consumption,
                    estimated=rng.random() < 0.15,
                ),
                lines=tuple(lines),
                currency=currency,
                subtotal=subtotal,
                vat_rate=Decimal("0.16"),
                vat_amount=vat,
                total=total,
                previous_balance=previous_balance or None,
                amount_paid=paid or None,
                balance_due=total + previous_balance - paid if previous_balance else None,
                exchange_rate=ExchangeRate(Decimal("2850.00"), dt.date(2026, 11, 2)),
                payment_reference=number,
                payment_options=(
                    PaymentOption(PaymentMethod.VODACOM, "581234", "*1222# › Paiements"),
                    PaymentOption(PaymentMethod.AIRTEL, "MWOLO"),
                    PaymentOption(PaymentMethod.ORANGE, "104455"),
                    PaymentOption(PaymentMethod.CASH),
                ),
                qr_payload=f"MWOLO:{number}:{total + previous_balance - paid}:{currency}",
            )
        )
    return documents


def baseline_invoice_pdf(doc: "InvoiceDocument", *, language: str = "fr") -> bytes:
    """The same invoice with platypus flowables and ReportLab's QR widget."""
    from django.utils import translation

    with translation.override(language):
        return _baseline(doc, language)


def _baseline(doc: "InvoiceDocument", language: str) -> bytes:
    from django.utils.translation import gettext as _
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Circle, Drawing, Polygon
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from mwolo.billing import documents
    from mwolo.core import pdf
    from mwolo.crm.models import SiteCategory

    brand = colors.HexColor("#0b5d3b")
    tint = colors.HexColor("#eef4f0")
    normal = ParagraphStyle("normal", fontName="Helvetica", fontSize=8.5, leading=10.5)
    bold = ParagraphStyle("bold", parent=normal, fontName="Helvetica-Bold")
    small = ParagraphStyle("small", parent=normal, fontSize=7, leading=8.5, textColor=colors.grey)
    name_style = ParagraphStyle("name", parent=bold, fontSize=14, leading=17, textColor=brand)
    title_style = ParagraphStyle(
        "title", parent=bold, fontSize=17, leading=20, textColor=brand, alignment=TA_RIGHT
    )

    def esc(value: str) -> str:
        return value.replace("&", "&amp;").replace("<", "&lt;")

    def money(value: Decimal, currency: str | None = None) -> str:
        return pdf.format_money(value, currency or doc.currency, language)

    company = doc.company
    logo = Drawing(46, 46)
    logo.add(Circle(23, 23, 21.5, fillColor=brand, strokeColor=None))
    bolt = ((36, 8), (18, 36), (30, 36), (26, 56), (46, 26), (34, 26))
    logo.add(
        Polygon(
            [c for x, y in bolt for c in (x * 46 / 64, 46 - y * 46 / 64)],
            fillColor=colors.HexColor("#f5c518"),
            strokeColor=None,
        )
    )
    company_cell = [
        Paragraph(esc(company.name), name_style),
        *(Paragraph(esc(line), normal) for line in company.address_lines),
        Paragraph(
            esc(
                " · ".join(
                    (
                        _("RCCM %(number)s") % {"number": company.rccm},
                        _("Nat. ID %(number)s") % {"number": company.national_id},
                        _("Tax no. %(number)s") % {"number": company.tax_number},
                    )
                )
            ),
            small,
        ),
        Paragraph(esc(" · ".join((company.phone, company.email, company.website))), small),
    ]
    number = doc.number or _("DRAFT")
    facts = [
        (_("Invoice no."), number),
        (_("Issue date"), pdf.format_date(doc.issue_date, language)),
        (_("Due date"), pdf.format_date(doc.due_date, language)),
        (_("Period"), pdf.format_period(doc.period_start, doc.period_end, language)),
    ]
    facts_table = Table(
        [[Paragraph(esc(_("Invoice").upper()), title_style), ""]]
        + [[label, value] for label, value in facts],
        colWidths=[80, 110],
    )
    facts_table.setStyle(
        TableStyle(
            [
                ("SPAN", (0, 0), (1, 0)),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8.5),
                ("TEXTCOLOR", (0, 1), (0, -1), colors.grey),
                ("ALIGN", (1, 1), (1, -1), "RIGHT"),
                ("FONT", (1, 1), (1, 1), "Helvetica-Bold", 9),
            ]
        )
    )
    header = Table([[logo, company_cell, facts_table]], colWidths=[54, 270, 190])
    header.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 1.2, brand),
            ]
        )
    )

    def box(lines: Sequence[tuple[str, bool]]) -> list[Paragraph]:
        return [Paragraph(esc(value), bold if strong else normal) for value, strong in lines]

    client = doc.client
    client_lines = [
        (client.name, True),
        (_("Client no. %(number)s") % {"number": client.number}, False),
        *((line, False) for line in client.address_lines),
        (_("Tel. %(phone)s") % {"phone": client.phone}, False),
    ]
    site_lines = [
        (_("Ref. %(reference)s") % {"reference": doc.site.reference}, True),
        *((line, False) for line in doc.site.address_lines),
        (_("Category: %(category)s") % {"category": SiteCategory(doc.site.category).label}, False),
    ]
    agency = doc.agency
    agency_lines = [
        (agency.name, True),
        *((line, False) for line in agency.address_lines),
        (_("Tel. %(phone)s") % {"phone": agency.phone}, False),
        (agency.opening_hours, False),
    ]
    parties = Table(
        [
            [_("Client").upper(), _("Service point").upper(), _("Agency").upper()],
            [box(client_lines), box(site_lines), box(agency_lines)],
        ],
        colWidths=[172, 172, 172],
    )
    parties.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), tint),
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7.5),
                ("TEXTCOLOR", (0, 0), (-1, 0), brand),
                ("BOX", (0, 0), (0, -1), 0.6, colors.lightgrey),
                ("BOX", (1, 0), (1, -1), 0.6, colors.lightgrey),
                ("BOX", (2, 0), (2, -1), 0.6, colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story: list[Any] = [header, Spacer(1, 8), parties, Spacer(1, 10)]

    def kwh(value: Decimal) -> str:
        return f"{pdf.format_kwh(value, language)} kWh"

    if doc.meter is not None:
        meter = doc.meter
        meter_table = Table(
            [
                [_("Meter"), _("Previous reading"), _("Current reading"), _("Consumption")],
                [
                    meter.serial,
                    kwh(meter.previous_reading_kwh),
                    kwh(meter.current_reading_kwh),
                    kwh(meter.consumption_kwh),
                ],
                [
                    "",
                    pdf.format_date(meter.previous_reading_date, language),
                    pdf.format_date(meter.current_reading_date, language),
                    _("Estimated reading") if meter.estimated else "",
                ],
            ],
            colWidths=[129] * 4,
        )
        meter_table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), brand),
                    ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                    ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
                    ("FONT", (0, 1), (-1, -1), "Helvetica", 8.5),
                    ("FONT", (3, 1), (3, 1), "Helvetica-Bold", 10),
                    ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                    ("LINEBELOW", (0, -1), (-1, -1), 0.6, colors.lightgrey),
                ]
            )
        )
        story += [meter_table, Spacer(1, 10)]

    line_rows: list[list[Any]] = [
        [
            _("Description"),
            _("Quantity"),
            _("Unit price (%(currency)s)") % {"currency": doc.currency},
            _("Amount excl. VAT (%(currency)s)") % {"currency": doc.currency},
        ]
    ]
    for line in doc.lines:
        line_rows.append(
            [
                Paragraph(esc(documents.line_label(line, language)), normal),
                kwh(line.kwh) if line.kwh is not None else "",
                pdf.format_price(line.unit_price, language) if line.unit_price is not None else "",
                pdf.format_amount(line.amount, language),
            ]
        )
    lines_table = Table(line_rows, colWidths=[252, 80, 92, 92], repeatRows=1)
    lines_table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), brand),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8.5),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, tint]),
                ("LINEBELOW", (0, -1), (-1, -1), 0.6, colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story += [lines_table, Spacer(1, 8)]

    totals = [
        [_("Total excl. VAT"), money(doc.subtotal)],
        [
            _("VAT %(rate)s") % {"rate": pdf.format_percent(doc.vat_rate, language)},
            money(doc.vat_amount),
        ],
        [_("Total incl. VAT"), money(doc.total)],
    ]
    if doc.previous_balance is not None:
        totals.append([_("Previous balance"), money(doc.previous_balance)])
    if doc.client_credit is not None:
        totals.append([_("Client credit"), money(-doc.client_credit)])
    if doc.amount_paid is not None:
        totals.append([_("Already paid"), money(-doc.amount_paid)])
    totals.append([_("Amount due").upper(), money(doc.amount_due)])
    totals.append([_("Pay by %(date)s") % {"date": pdf.format_date(doc.due_date, language)}, ""])
    totals_table = Table(totals, colWidths=[136, 100])
    totals_table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 8.5),
                ("FONT", (0, 2), (-1, 2), "Helvetica-Bold", 8.5),
                ("LINEABOVE", (0, 2), (-1, 2), 0.6, colors.lightgrey),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("BACKGROUND", (0, -2), (-1, -1), brand),
                ("TEXTCOLOR", (0, -2), (-1, -1), colors.white),
                ("FONT", (0, -2), (-1, -2), "Helvetica-Bold", 11),
            ]
        )
    )
    words: list[Any] = []
    if doc.total_in_words:
        words += [
            Paragraph(esc(_("This invoice amounts to:")), small),
            Paragraph(esc(pdf.amount_in_words(doc.total, doc.currency, language)), bold),
        ]
    if doc.exchange_rate is not None:
        amount, other = doc.exchange_rate.convert(doc.amount_due, doc.currency)
        words.append(
            Paragraph(
                esc(
                    _("Equivalent: %(amount)s at the rate of %(date)s, %(rate)s")
                    % {
                        "amount": money(amount, other),
                        "date": pdf.format_date(doc.exchange_rate.on, language),
                        "rate": f"1 USD = {money(doc.exchange_rate.cdf_per_usd, 'CDF')}",
                    }
                ),
                small,
            )
        )
    summary = Table([[words, totals_table]], colWidths=[280, 236])
    summary.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [summary, Spacer(1, 14)]

    payment = [Paragraph(esc(_("How to pay").upper()), bold)]
    payment += [Paragraph(esc(line), normal) for line in documents.payment_instructions(doc)]
    qr_cell: list[Any] = []
    if doc.qr_payload:
        widget = QrCodeWidget(doc.qr_payload, barLevel="M")
        x0, y0, x1, y1 = widget.getBounds()
        drawing = Drawing(84, 84, transform=[84 / (x1 - x0), 0, 0, 84 / (y1 - y0), 0, 0])
        drawing.add(widget)
        qr_cell = [
            Paragraph(esc(_("Scan to pay")), small),
            drawing,
            Paragraph(esc(doc.payment_reference), bold),
        ]
    payment_table = Table([[payment, qr_cell]], colWidths=[402, 114])
    payment_table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (0, 0), 0.6, colors.lightgrey),
                ("BOX", (1, 0), (1, 0), 0.6, colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (1, 0), (1, 0), "CENTER"),
            ]
        )
    )
    story.append(payment_table)

    footer = _("Unpaid invoices after the due date may lead to disconnection of the supply.")
    draft = doc.number is None

    def decorate(canvas: Any, template: Any) -> None:
        canvas.saveState()
        if draft:
            canvas.setFont("Helvetica-Bold", 110)
            canvas.setFillColor(colors.HexColor("#e4e8e6"))
            canvas.translate(A4[0] / 2, A4[1] / 2)
            canvas.rotate(35)
            canvas.drawCentredString(0, -40, _("DRAFT"))
            canvas.restoreState()
            canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(14 * mm, 15 * mm, footer)
        canvas.restoreState()

    buffer = io.BytesIO()
    template = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=12 * mm,
        bottomMargin=22 * mm,
        title=number,
        author=company.name,
        invariant=True,
    )
    template.build(story, onFirstPage=decorate, onLaterPages=decorate, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()


class _NumberedCanvas(Canvas):
    """ReportLab's usual recipe for "Page 2 / 5": keep each page, number them all at the end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 - ReportLab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        from django.utils.translation import gettext as _
        from reportlab.lib.colors import grey
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.units import mm

        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont("Helvetica", 7.5)
            self.setFillColor(grey)
            label = _("Page %(page)d / %(pages)d") % {"page": number, "pages": len(self._pages)}
            self.drawRightString(A4[0] - 14 * mm, 15 * mm, label)
            super().showPage()
        super().save()


def _timed(render: Callable[[Any], bytes], documents: Sequence[Any]) -> tuple[float, int]:
    """Wall time and total size of rendering ``documents``."""
    size = 0
    started = time.perf_counter()
    for document in documents:
        size += len(render(document))
    return time.perf_counter() - started, size


def pdf_metrics(documents: Sequence["InvoiceDocument"]) -> list[dict[str, Any]]:
    """Both renderers over the same invoices in this run, as the benchmark's JSON lines.

    After a warm-up of each, the two take turns on slices of the invoices, so a change in
    the machine's load (other processes on 2 cores) weighs on both alike.
    """
    from mwolo.billing.documents import render_invoice

    renderers: tuple[Callable[[Any], bytes], ...] = (render_invoice, baseline_invoice_pdf)
    for render in renderers:
        for document in documents[:WARM_UP]:
            render(document)
    seconds, sizes = [0.0, 0.0], [0, 0]
    for start in range(0, len(documents), SLICE):
        for index, render in enumerate(renderers):
            elapsed, size = _timed(render, documents[start : start + SLICE])
            seconds[index] += elapsed
            sizes[index] += size
    ours, baseline = (len(documents) / elapsed for elapsed in seconds)
    our_size, baseline_size = sizes
    n = len(documents)
    return [
        {
            "metric": "pdf_invoices_per_s",
            "value": round(ours, 1),
            "unit": "invoices/s",
            "n": n,
            "database": "none",
            "baseline": BASELINE,
            "baseline_value": round(baseline, 1),
            "ratio": round(ours / baseline, 2),
        },
        {
            "metric": "pdf_invoice_kb",
            "value": round(our_size / n / 1024, 1),
            "unit": "KB",
            "n": n,
            "database": "none",
            "baseline": BASELINE,
            "baseline_value": round(baseline_size / n / 1024, 1),
            "ratio": round(our_size / baseline_size, 2),
        },
    ]


def main() -> None:
    from bench.harness import parse_args

    args = parse_args(__doc__ or "", default_n=500)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    for line in pdf_metrics(sample_invoice_documents(args.n)):
        print(json.dumps(line), flush=True)  # noqa: T201 - a benchmark reports on stdout


if __name__ == "__main__":
    main()
