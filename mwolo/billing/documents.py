"""What billing prints: invoices, credit notes, statements of account, payment receipts.

Each document is a frozen dataclass of plain values (whoever issues it maps the models onto
it) and a ``render_*`` function returning the PDF's bytes, drawn on the canvas with
``mwolo.core.pdf``. Amounts are Decimals already rounded by billing; a document checks that
its sums add up and refuses one that does not (``ValueError``), so a PDF never shows totals
that disagree with its own lines. Labels are printed in the language passed to the render
function (French unless the client prefers English); data (names, addresses, opening
hours) is printed as given.
"""

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from django.db import models
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from reportlab.lib.units import mm

from mwolo.billing.pricing import round_money
from mwolo.core import pdf
from mwolo.core.pdf import A4_PAGE, MARGIN, Column, Company, Table
from mwolo.crm.models import SiteCategory

__all__ = [
    "AgencyInfo",
    "Allocation",
    "ClientInfo",
    "Company",
    "CreditNoteDocument",
    "EntryKind",
    "ExchangeRate",
    "InvoiceDocument",
    "InvoiceLine",
    "LineKind",
    "MeterInfo",
    "PaymentMethod",
    "PaymentOption",
    "PrepaidToken",
    "ReceiptDocument",
    "SiteInfo",
    "StatementDocument",
    "StatementEntry",
    "line_label",
    "payment_instructions",
    "render_credit_note",
    "render_invoice",
    "render_receipt",
    "render_statement",
]

CURRENCIES = ("CDF", "USD")
MOBILE_MONEY = ("mpesa", "vodacom", "airtel", "orange")


# --- What the documents are made of --------------------------------------------------------


class LineKind(StrEnum):
    FIXED_CHARGE = "fixed_charge"
    ENERGY = "energy"
    SOCIAL = "social"  # the subsidised first block some tariffs have
    ADJUSTMENT = "adjustment"  # a regularisation (after an estimate, a correction…)


class PaymentMethod(models.TextChoices):
    CASH = "cash", gettext_lazy("Cash")
    MPESA = "mpesa", "M-Pesa"
    VODACOM = "vodacom", "Vodacom M-Pesa"
    AIRTEL = "airtel", "Airtel Money"
    ORANGE = "orange", "Orange Money"
    BANK = "bank", gettext_lazy("Bank transfer")


class EntryKind(models.TextChoices):
    INVOICE = "invoice", gettext_lazy("Invoice")
    PAYMENT = "payment", gettext_lazy("Payment")
    CREDIT_NOTE = "credit_note", gettext_lazy("Credit note")
    REVERSAL = "reversal", gettext_lazy("Payment reversed")
    REFUND = "refund", gettext_lazy("Refund")


@dataclass(frozen=True)
class ClientInfo:
    name: str
    number: str
    address_lines: tuple[str, ...]
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class SiteInfo:
    reference: str
    address_lines: tuple[str, ...]
    category: str  # a SiteCategory value, printed in the document's language


@dataclass(frozen=True)
class AgencyInfo:
    name: str
    address_lines: tuple[str, ...]
    phone: str = ""
    opening_hours: str = ""  # one line, as the agency publishes it


@dataclass(frozen=True)
class MeterInfo:
    serial: str
    previous_reading_kwh: Decimal
    previous_reading_date: dt.date
    current_reading_kwh: Decimal
    current_reading_date: dt.date
    consumption_kwh: Decimal  # given: a register rollover or a meter swap breaks the difference
    estimated: bool = False


@dataclass(frozen=True)
class InvoiceLine:
    """One line before VAT. Energy and social lines name their block of kWh.

    ``description`` replaces the printed label; an adjustment must say what it adjusts.
    """

    kind: LineKind
    amount: Decimal
    kwh: Decimal | None = None
    unit_price: Decimal | None = None
    band_from_kwh: Decimal | None = None
    band_to_kwh: Decimal | None = None  # None: the open last block
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind is LineKind.ADJUSTMENT and not self.description:
            raise ValueError("an adjustment line needs a description")


@dataclass(frozen=True)
class ExchangeRate:
    """The day's rate, for printing the other currency's equivalent."""

    cdf_per_usd: Decimal
    on: dt.date

    def __post_init__(self) -> None:
        if self.cdf_per_usd <= 0:
            raise ValueError("an exchange rate must be positive")

    def convert(self, amount: Decimal, currency: str) -> tuple[Decimal, str]:
        """``amount`` in the other currency, rounded like every amount billed."""
        if currency == "CDF":
            return round_money(amount / self.cdf_per_usd), "USD"
        return round_money(amount * self.cdf_per_usd), "CDF"


@dataclass(frozen=True)
class PaymentOption:
    """One way to pay an invoice: an operator's merchant code, a bank account, or cash.

    ``detail`` is one more short line of the operator's own (a USSD path, a bank's name).
    Cash needs nothing: the invoice's agency and opening hours are printed.
    """

    method: PaymentMethod
    account: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if self.method != PaymentMethod.CASH and not self.account:
            raise ValueError(f"{self.method} needs a merchant code or an account")


def _check_money(currency: str, **amounts: Decimal | None) -> None:
    if currency not in CURRENCIES:
        raise ValueError(f"unknown currency {currency!r}; expected one of {CURRENCIES}")
    for name, amount in amounts.items():
        if amount is not None and amount != round_money(amount):
            raise ValueError(f"{name} {amount} is not rounded to the cent")


def _check_totals(
    lines: Sequence[InvoiceLine], subtotal: Decimal, vat_amount: Decimal, total: Decimal
) -> None:
    if not lines:
        raise ValueError("a document needs at least one line")
    if sum((line.amount for line in lines), Decimal(0)) != subtotal:
        raise ValueError(
            f"the lines add up to {sum(line.amount for line in lines)}, not {subtotal}"
        )
    if subtotal + vat_amount != total:
        raise ValueError(f"{subtotal} + VAT {vat_amount} is not the total {total}")


@dataclass(frozen=True)
class InvoiceDocument:
    """An invoice for one site and one period; ``number`` None prints a draft."""

    company: Company
    number: str | None
    issue_date: dt.date
    due_date: dt.date
    period_start: dt.date
    period_end: dt.date
    client: ClientInfo
    site: SiteInfo
    agency: AgencyInfo
    meter: MeterInfo | None
    lines: tuple[InvoiceLine, ...]
    currency: str
    subtotal: Decimal
    vat_rate: Decimal  # 0.16 for 16 %
    vat_amount: Decimal
    total: Decimal
    previous_balance: Decimal | None = None
    client_credit: Decimal | None = None  # credit from earlier payments, set against this one
    amount_paid: Decimal | None = None
    balance_due: Decimal | None = None  # total + previous balance − credit − paid
    exchange_rate: ExchangeRate | None = None
    payment_reference: str = ""
    payment_options: tuple[PaymentOption, ...] = ()
    qr_payload: str = ""  # e.g. MWOLO:FAC-2026-000123:123450.60:CDF
    total_in_words: bool = True

    def __post_init__(self) -> None:
        _check_money(
            self.currency,
            subtotal=self.subtotal,
            vat_amount=self.vat_amount,
            total=self.total,
            previous_balance=self.previous_balance,
            client_credit=self.client_credit,
            amount_paid=self.amount_paid,
            balance_due=self.balance_due,
        )
        _check_totals(self.lines, self.subtotal, self.vat_amount, self.total)
        if self.total < 0:
            raise ValueError("an invoice cannot total less than zero: credit it with a credit note")
        if self.balance_due is not None:
            expected = (
                self.total
                + (self.previous_balance or 0)
                - (self.client_credit or 0)
                - (self.amount_paid or 0)
            )
            if expected != self.balance_due:
                raise ValueError(f"the balance due should be {expected}, not {self.balance_due}")
        if self.period_end < self.period_start:
            raise ValueError("the period ends before it starts")

    @property
    def amount_due(self) -> Decimal:
        return self.total if self.balance_due is None else self.balance_due


@dataclass(frozen=True)
class CreditNoteDocument:
    """A credit note against one invoice; amounts are what is credited (positive)."""

    company: Company
    number: str
    issue_date: dt.date
    invoice_number: str
    invoice_date: dt.date
    reason: str
    client: ClientInfo
    lines: tuple[InvoiceLine, ...]
    currency: str
    subtotal: Decimal
    vat_rate: Decimal
    vat_amount: Decimal
    total: Decimal
    agency: AgencyInfo | None = None

    def __post_init__(self) -> None:
        _check_money(
            self.currency, subtotal=self.subtotal, vat_amount=self.vat_amount, total=self.total
        )
        _check_totals(self.lines, self.subtotal, self.vat_amount, self.total)


@dataclass(frozen=True)
class StatementEntry:
    date: dt.date
    kind: EntryKind
    reference: str
    debit: Decimal = Decimal(0)  # what the client owes more (invoice, refund)
    credit: Decimal = Decimal(0)  # what the client owes less (payment, credit note)


@dataclass(frozen=True)
class StatementDocument:
    """A client's account over a period; a positive balance is owed by the client."""

    company: Company
    client: ClientInfo
    period_start: dt.date
    period_end: dt.date
    issue_date: dt.date
    currency: str
    opening_balance: Decimal
    entries: tuple[StatementEntry, ...]
    agency: AgencyInfo | None = None
    balances: tuple[Decimal, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_money(self.currency, opening_balance=self.opening_balance)
        balances, balance = [], self.opening_balance
        for entry in self.entries:
            _check_money(self.currency, debit=entry.debit, credit=entry.credit)
            if entry.debit < 0 or entry.credit < 0:
                raise ValueError(f"{entry.reference}: debits and credits are positive")
            balance += entry.debit - entry.credit
            balances.append(balance)
        object.__setattr__(self, "balances", tuple(balances))

    @property
    def closing_balance(self) -> Decimal:
        return self.balances[-1] if self.balances else self.opening_balance

    @property
    def total_debit(self) -> Decimal:
        return sum((entry.debit for entry in self.entries), Decimal(0))

    @property
    def total_credit(self) -> Decimal:
        return sum((entry.credit for entry in self.entries), Decimal(0))


@dataclass(frozen=True)
class Allocation:
    invoice_number: str
    amount: Decimal


@dataclass(frozen=True)
class PrepaidToken:
    digits: str
    kwh: Decimal
    meter_serial: str

    def __post_init__(self) -> None:
        if not self.digits.isdigit():
            raise ValueError("a token is made of digits")


@dataclass(frozen=True)
class ReceiptDocument:
    """A payment received; ``issued_at`` is aware and printed in ``time_zone``."""

    company: Company
    number: str
    issued_at: dt.datetime
    time_zone: str
    client: ClientInfo
    agency: AgencyInfo
    amount: Decimal
    currency: str
    method: PaymentMethod
    operator_transaction_id: str = ""
    payer_number: str = ""
    cashier_name: str = ""
    allocations: tuple[Allocation, ...] = ()
    remaining_credit: Decimal | None = None
    balance_after: Decimal | None = None
    token: PrepaidToken | None = None

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None:
            raise ValueError("a receipt's time must be timezone-aware")
        _check_money(
            self.currency,
            amount=self.amount,
            remaining_credit=self.remaining_credit,
            balance_after=self.balance_after,
        )
        allocated = sum((allocation.amount for allocation in self.allocations), Decimal(0))
        if allocated > self.amount:
            raise ValueError(f"{allocated} allocated out of a payment of {self.amount}")
        if self.method in MOBILE_MONEY and not self.operator_transaction_id:
            raise ValueError("a mobile money receipt needs the operator's transaction id")


# --- Shared drawing ------------------------------------------------------------------------

PAGE_WIDTH, PAGE_HEIGHT = A4_PAGE
LEFT = MARGIN
RIGHT = PAGE_WIDTH - MARGIN
WIDTH = RIGHT - LEFT
TOP = PAGE_HEIGHT - 12 * mm
BOTTOM = 22 * mm  # nothing but the footer below this line
CONTINUED_TOP = TOP - 42  # where the table starts again on later pages
FACTS_WIDTH = 215.0
BOX_GAP = 10.0
LEADING = 10.5  # of the text in boxes


class _Formats:
    """The formats of one document's language and currency."""

    def __init__(self, language: str, currency: str) -> None:
        self.language = language
        self.currency = currency

    def amount(self, value: Decimal) -> str:
        return pdf.format_amount(value, self.language)

    def money(self, value: Decimal, currency: str | None = None) -> str:
        return pdf.format_money(value, currency or self.currency, self.language)

    def date(self, value: dt.date) -> str:
        return pdf.format_date(value, self.language)

    def kwh(self, value: Decimal) -> str:
        return f"{pdf.format_kwh(value, self.language)} kWh"


class _Writer(_Formats, pdf.Sheet):
    """One document being drawn, with the formats of its language and currency."""

    def __init__(
        self,
        *,
        language: str,
        currency: str,
        pagesize: tuple[float, float],
        title: str,
        company: Company,
    ) -> None:
        _Formats.__init__(self, language, currency)
        pdf.Sheet.__init__(self, pagesize=pagesize, title=title, company=company)


def _render(
    draw: Callable[[_Writer], None],
    *,
    language: str,
    currency: str,
    title: str,
    company: Company,
    pagesize: tuple[float, float] = A4_PAGE,
) -> bytes:
    code = pdf.language_code(language)
    with translation.override(code):
        writer = _Writer(
            language=code, currency=currency, pagesize=pagesize, title=title, company=company
        )
        draw(writer)
        return writer.finish()


@dataclass(frozen=True)
class _Fact:
    label: str
    value: str
    bold: bool = False


def _page_top(w: _Writer, company: Company, title: str, facts: Sequence[_Fact]) -> float:
    """Company header at the left, the document's name and key facts at the right."""
    header_bottom = w.company_header(company, x=LEFT, top=TOP, width=WIDTH - FACTS_WIDTH - 12)
    w.text(RIGHT, TOP - 16, title.upper(), size=17, bold=True, color=pdf.BRAND, align="right")
    y = TOP - 32
    for fact in facts:
        w.text(RIGHT - FACTS_WIDTH, y, fact.label, size=8, color=pdf.MUTED)
        size = 9 if fact.bold else 8.5
        room = FACTS_WIDTH - pdf.text_width(fact.label, size=8) - 8
        w.text(RIGHT, y, fact.value, size=size, bold=fact.bold, align="right", max_width=room)
        y -= 11.5
    y = min(header_bottom, y + 4) - 4
    w.hline(LEFT, RIGHT, y, color=pdf.BRAND, width=1.2)
    return y - 10


def _continuation_top(w: _Writer, company: Company, heading: str) -> float:
    """The top of the second and later pages: a smaller header."""
    w.logo(LEFT, TOP - 24, 24)
    w.text(LEFT + 32, TOP - 15, company.name, size=11, bold=True, color=pdf.BRAND)
    w.text(RIGHT, TOP - 15, heading, size=9, bold=True, align="right", max_width=WIDTH - 200)
    w.hline(LEFT, RIGHT, TOP - 32, color=pdf.BRAND, width=1.2)
    return CONTINUED_TOP


BoxLine = tuple[str, bool]  # text, bold
Box = tuple[str, list[BoxLine]]  # title, lines


def _boxes(w: _Writer, y: float, boxes: Sequence[Box]) -> float:
    """Side-by-side boxes with a title bar, as high as the fullest; returns the y below."""
    width = (WIDTH - BOX_GAP * (len(boxes) - 1)) / len(boxes)
    wrapped = [
        [
            (line, bold)
            for value, bold in lines
            for line in pdf.wrap(value, width - 12, size=8.5, bold=bold)
        ]
        for _title, lines in boxes
    ]
    height = 14 + max(len(lines) for lines in wrapped) * LEADING + 8
    x = LEFT
    for (title, _lines), lines in zip(boxes, wrapped, strict=True):
        w.fill_rect(x, y - 14, width, 14, pdf.TINT)
        w.frame(x, y - height, width, height)
        w.text(x + 6, y - 10, title.upper(), size=7.5, bold=True, color=pdf.BRAND)
        line_y = y - 14 - LEADING
        for value, bold in lines:
            w.text(x + 6, line_y, value, size=8.5, bold=bold)
            line_y -= LEADING
        x += width + BOX_GAP
    return y - height - 12


def _client_box(client: ClientInfo) -> Box:
    lines: list[BoxLine] = [
        (client.name, True),
        (_("Client no. %(number)s") % {"number": client.number}, False),
        *((line, False) for line in client.address_lines),
    ]
    if client.phone:
        lines.append((_("Tel. %(phone)s") % {"phone": client.phone}, False))
    if client.email:
        lines.append((client.email, False))
    return _("Client"), lines


def _agency_box(agency: AgencyInfo) -> Box:
    lines: list[BoxLine] = [(agency.name, True), *((line, False) for line in agency.address_lines)]
    if agency.phone:
        lines.append((_("Tel. %(phone)s") % {"phone": agency.phone}, False))
    if agency.opening_hours:
        lines.append((agency.opening_hours, False))
    return _("Agency"), lines


def _footer(w: _Writer, note: str, *, page: int, pages: int) -> None:
    w.hline(LEFT, RIGHT, BOTTOM - 6)
    for index, line in enumerate(pdf.wrap(note, WIDTH - 70, size=7)):
        w.text(LEFT, BOTTOM - 15 - index * 8.5, line, size=7, color=pdf.MUTED)
    w.page_number(page=page, pages=pages, y=BOTTOM - 15)


def _continued(w: _Writer, y: float) -> None:
    w.text(RIGHT, y - 12, _("Continued on the next page"), size=7.5, color=pdf.MUTED, align="right")


def line_label(line: InvoiceLine, language: str) -> str:
    """What a line is, as printed (in the active language)."""
    if line.kind is LineKind.ADJUSTMENT:
        return _("Adjustment: %(reason)s") % {"reason": line.description}
    if line.description:
        return line.description
    if line.kind is LineKind.FIXED_CHARGE:
        return _("Fixed monthly charge")
    social = line.kind is LineKind.SOCIAL
    if line.band_to_kwh is None and not line.band_from_kwh:
        # A single block: every kWh at one price.
        return _("Social tranche") if social else _("Energy")
    low = pdf.format_kwh(line.band_from_kwh or Decimal(0), language)
    if line.band_to_kwh is None:
        if social:
            return _("Social tranche above %(low)s kWh") % {"low": low}
        return _("Energy above %(low)s kWh") % {"low": low}
    bounds = {"low": low, "high": pdf.format_kwh(line.band_to_kwh, language)}
    if social:
        return _("Social tranche, %(low)s to %(high)s kWh") % bounds
    return _("Energy, %(low)s to %(high)s kWh") % bounds


def _lines_table(w: _Formats) -> Table:
    currency = {"currency": w.currency}
    return Table(
        x=LEFT,
        columns=(
            Column(_("Description"), WIDTH - 70 - 92 - 116),
            Column(_("Quantity"), 70, "right"),
            Column(_("Unit price (%(currency)s)") % currency, 92, "right"),
            Column(_("Amount excl. VAT (%(currency)s)") % currency, 116, "right"),
        ),
        row_height=16,
    )


def _line_cells(line: InvoiceLine, w: _Formats) -> list[str]:
    return [
        line_label(line, w.language),
        w.kwh(line.kwh) if line.kwh is not None else "",
        pdf.format_price(line.unit_price, w.language) if line.unit_price is not None else "",
        w.amount(line.amount),
    ]


def _rows(
    w: _Writer, table: Table, y: float, rows: Sequence[Sequence[str]], page_rows: range
) -> float:
    """The page's share of ``rows`` under the table's header; returns the y below."""
    y = table.header(w, y)
    for index in page_rows:
        y = table.row(w, y, rows[index], shaded=index % 2 == 1)
    table.rule(w, y)
    return y


def _pages(table: Table, top: float, rows: int, closing_height: float) -> list[range]:
    """Rows per page, when the first page's table starts at ``top``."""
    step = table.row_height
    bottom = BOTTOM + 14  # room for "continued on the next page"
    return pdf.split_rows(
        rows,
        first=math.floor((top - step - bottom) / step),
        other=math.floor((CONTINUED_TOP - step - bottom) / step),
        closing=math.ceil(closing_height / step),
    )


TotalRow = tuple[str, str, bool]  # label, value, bold
TOTAL_ROW = 14.0
TOTALS_WIDTH = 236.0


def _totals_height(rows: int, note: bool) -> float:
    return rows * TOTAL_ROW + 6 + (32 if note else 22)


def _totals(w: _Writer, y: float, rows: Sequence[TotalRow], due: tuple[str, str, str]) -> float:
    """The totals at the right, ending on the highlighted ``due``; returns the y below."""
    x = RIGHT - TOTALS_WIDTH
    for label, value, bold in rows:
        if bold:
            w.hline(x, RIGHT, y)
        y -= TOTAL_ROW
        w.text(x + 6, y + 4, label, bold=bold, max_width=TOTALS_WIDTH - 110)
        w.text(RIGHT - 6, y + 4, value, bold=bold, align="right")
    label, value, note = due
    y -= 6
    height = 32 if note else 22
    w.fill_rect(x, y - height, TOTALS_WIDTH, height, pdf.BRAND)
    w.text(x + 8, y - 15, label.upper(), size=10, bold=True, color=pdf.WHITE)
    w.text(RIGHT - 8, y - 15, value, size=12, bold=True, color=pdf.WHITE, align="right")
    w.text(x + 8, y - 26, note, size=7.5, color=pdf.ACCENT)
    return y - height


def _words(w: _Writer, y: float, lead: str, amount: Decimal, notes: Sequence[str]) -> None:
    """The amount in words, and notes, at the left of the totals (``y``: their top)."""
    width = WIDTH - TOTALS_WIDTH - 16
    y -= 11
    w.text(LEFT, y, lead, size=7.5, color=pdf.MUTED)
    words = pdf.amount_in_words(amount, w.currency, w.language)
    for line in pdf.wrap(words, width, size=8.5, bold=True):
        y -= 10.5
        w.text(LEFT, y, line, bold=True)
    for note in notes:
        y -= 4
        for line in pdf.wrap(note, width, size=7.5):
            y -= 9.5
            w.text(LEFT, y, line, size=7.5, color=pdf.MUTED)


# --- Invoice -------------------------------------------------------------------------------

QR_SIZE = 84.0
QR_BOX = QR_SIZE + 30


def render_invoice(document: InvoiceDocument, *, language: str = "fr") -> bytes:
    """The invoice as a PDF: A4, one page up to a dozen lines, more pages after that."""
    return _render(
        lambda w: _draw_invoice(w, document),
        language=language,
        currency=document.currency,
        title=document.number or "DRAFT",
        company=document.company,
    )


def _invoice_total_rows(doc: InvoiceDocument, w: _Formats) -> list[TotalRow]:
    vat = _("VAT %(rate)s") % {"rate": pdf.format_percent(doc.vat_rate, w.language)}
    rows: list[TotalRow] = [
        (_("Total excl. VAT"), w.money(doc.subtotal), False),
        (vat, w.money(doc.vat_amount), False),
        (_("Total incl. VAT"), w.money(doc.total), True),
    ]
    if doc.previous_balance is not None:
        rows.append((_("Previous balance"), w.money(doc.previous_balance), False))
    if doc.client_credit is not None:
        rows.append((_("Client credit"), w.money(-doc.client_credit), False))
    if doc.amount_paid is not None:
        rows.append((_("Already paid"), w.money(-doc.amount_paid), False))
    return rows


def payment_instructions(doc: InvoiceDocument) -> list[str]:
    """One line per way to pay, as printed (in the active language)."""
    lines = []
    for option in doc.payment_options:
        values = {
            "method": option.method.label,
            "account": option.account,
            "reference": doc.payment_reference,
        }
        if option.method == PaymentMethod.CASH:
            place = ", ".join(part for part in (doc.agency.name, doc.agency.opening_hours) if part)
            line = _("Cash at the counter: %(place)s") % {"place": place}
        elif option.method == PaymentMethod.BANK:
            line = _("%(method)s: account %(account)s, reference %(reference)s") % values
        else:
            line = _("%(method)s: merchant code %(account)s, reference %(reference)s") % values
        lines.append(f"{line} — {option.detail}" if option.detail else line)
    return lines


def _payment_height(lines: Sequence[str], doc: InvoiceDocument) -> float:
    if not lines and not doc.qr_payload:
        return 0
    return max(14 + 13 + len(lines) * 11 + 4, QR_SIZE + 32 if doc.qr_payload else 0)


def _payment_block(w: _Writer, doc: InvoiceDocument, lines: Sequence[str], top: float) -> None:
    """How to pay (left) and the QR code with the reference (right)."""
    height = _payment_height(lines, doc)
    qr_width = QR_BOX if doc.qr_payload else 0
    text_width = WIDTH - (qr_width + BOX_GAP if qr_width else 0)
    if lines:
        w.fill_rect(LEFT, top - 14, text_width, 14, pdf.TINT)
        w.frame(LEFT, top - height, text_width, height)
        w.text(LEFT + 6, top - 10, _("How to pay").upper(), size=7.5, bold=True, color=pdf.BRAND)
        y = top - 14 - 13
        for line in lines:
            w.text(LEFT + 6, y, line, size=8, max_width=text_width - 12)
            y -= 11
    if doc.qr_payload:
        x = RIGHT - qr_width
        center = x + qr_width / 2
        w.frame(x, top - height, qr_width, height)
        w.text(center, top - 11, _("Scan to pay"), size=7, color=pdf.MUTED, align="center")
        w.qr(doc.qr_payload, x=center - QR_SIZE / 2, y=top - 15 - QR_SIZE, size=QR_SIZE)
        reference = doc.payment_reference or doc.qr_payload
        w.text(
            center,
            top - QR_SIZE - 26,
            reference,
            size=8,
            bold=True,
            align="center",
            max_width=qr_width - 6,
        )


def _meter_block(w: _Writer, meter: MeterInfo, y: float) -> float:
    quarter = WIDTH / 4
    table = Table(
        x=LEFT,
        columns=(
            Column(_("Meter"), quarter),
            Column(_("Previous reading"), quarter, "right"),
            Column(_("Current reading"), quarter, "right"),
            Column(_("Consumption"), quarter, "right"),
        ),
        row_height=14,
    )
    readings = [meter.serial, w.kwh(meter.previous_reading_kwh), w.kwh(meter.current_reading_kwh)]
    y = table.row(w, table.header(w, y), [*readings, ""])
    consumption_x = RIGHT - table.padding
    w.text(consumption_x, y + 4, w.kwh(meter.consumption_kwh), size=10, bold=True, align="right")
    dates = ["", w.date(meter.previous_reading_date), w.date(meter.current_reading_date), ""]
    y = table.row(w, y, dates, color=pdf.MUTED)
    if meter.estimated:
        w.text(
            consumption_x,
            y + 4,
            _("Estimated reading"),
            size=8,
            bold=True,
            color=pdf.WARNING,
            align="right",
        )
    table.rule(w, y)
    return y - 12


def _draw_invoice(w: _Writer, doc: InvoiceDocument) -> None:
    number = doc.number or _("DRAFT")
    facts = [
        _Fact(_("Invoice no."), number, bold=True),
        _Fact(_("Issue date"), w.date(doc.issue_date)),
        _Fact(_("Due date"), w.date(doc.due_date), bold=True),
        _Fact(_("Period"), pdf.format_period(doc.period_start, doc.period_end, w.language)),
    ]
    if doc.number is None:
        w.watermark(_("DRAFT"))
    y = _page_top(w, doc.company, _("Invoice"), facts)
    category = SiteCategory(doc.site.category).label
    site_lines: list[BoxLine] = [
        (_("Ref. %(reference)s") % {"reference": doc.site.reference}, True),
        *((line, False) for line in doc.site.address_lines),
        (_("Category: %(category)s") % {"category": category}, False),
    ]
    boxes = [_client_box(doc.client), (_("Service point"), site_lines), _agency_box(doc.agency)]
    y = _boxes(w, y, boxes)
    if doc.meter is not None:
        y = _meter_block(w, doc.meter, y)

    table = _lines_table(w)
    rows = [_line_cells(line, w) for line in doc.lines]
    total_rows = _invoice_total_rows(doc, w)
    payment_lines = payment_instructions(doc)
    payment_height = _payment_height(payment_lines, doc)
    closing = 8 + _totals_height(len(total_rows), note=True) + 14 + payment_height
    pages = _pages(table, y, len(rows), closing)
    footer = _("Unpaid invoices after the due date may lead to disconnection of the supply.")
    for index, page_rows in enumerate(pages):
        if index:
            w.new_page()
            if doc.number is None:
                w.watermark(_("DRAFT"))
            heading = _("%(title)s %(number)s (continued)") % {
                "title": _("Invoice"),
                "number": number,
            }
            y = _continuation_top(w, doc.company, heading)
        y = _rows(w, table, y, rows, page_rows)
        if index < len(pages) - 1:
            _continued(w, y)
        else:
            totals_top = y - 8
            due_note = _("Pay by %(date)s") % {"date": w.date(doc.due_date)}
            y = _totals(
                w, totals_top, total_rows, (_("Amount due"), w.money(doc.amount_due), due_note)
            )
            if doc.total_in_words:
                _words(w, totals_top, _("This invoice amounts to:"), doc.total, _exchange(doc, w))
            # The payment block sits at the foot of the page, like a tear-off slip.
            _payment_block(w, doc, payment_lines, min(y - 14, BOTTOM + 6 + payment_height))
        _footer(w, footer, page=index + 1, pages=len(pages))


def _exchange(doc: InvoiceDocument, w: _Formats) -> list[str]:
    if doc.exchange_rate is None:
        return []
    amount, other = doc.exchange_rate.convert(doc.amount_due, doc.currency)
    return [
        _("Equivalent: %(amount)s at the rate of %(date)s, %(rate)s")
        % {
            "amount": w.money(amount, other),
            "date": w.date(doc.exchange_rate.on),
            "rate": f"1 USD = {w.money(doc.exchange_rate.cdf_per_usd, 'CDF')}",
        }
    ]


# --- Credit note ---------------------------------------------------------------------------


def render_credit_note(document: CreditNoteDocument, *, language: str = "fr") -> bytes:
    """The credit note as a PDF (A4)."""
    return _render(
        lambda w: _draw_credit_note(w, document),
        language=language,
        currency=document.currency,
        title=document.number,
        company=document.company,
    )


def _draw_credit_note(w: _Writer, doc: CreditNoteDocument) -> None:
    facts = [
        _Fact(_("Credit note no."), doc.number, bold=True),
        _Fact(_("Date"), w.date(doc.issue_date)),
        _Fact(_("Credited invoice"), doc.invoice_number, bold=True),
        _Fact(_("Invoice date"), w.date(doc.invoice_date)),
    ]
    y = _page_top(w, doc.company, _("Credit note"), facts)
    boxes = [_client_box(doc.client), (_("Reason"), [(doc.reason, False)])]
    if doc.agency is not None:
        boxes.append(_agency_box(doc.agency))
    y = _boxes(w, y, boxes)
    table = _lines_table(w)
    rows = [_line_cells(line, w) for line in doc.lines]
    vat = _("VAT %(rate)s") % {"rate": pdf.format_percent(doc.vat_rate, w.language)}
    total_rows: list[TotalRow] = [
        (_("Total excl. VAT"), w.money(doc.subtotal), False),
        (vat, w.money(doc.vat_amount), False),
    ]
    pages = _pages(table, y, len(rows), 8 + _totals_height(len(total_rows), note=False))
    footer = _("This credit note cancels the amounts above on invoice %(number)s.") % {
        "number": doc.invoice_number
    }
    for index, page_rows in enumerate(pages):
        if index:
            w.new_page()
            heading = _("%(title)s %(number)s (continued)") % {
                "title": _("Credit note"),
                "number": doc.number,
            }
            y = _continuation_top(w, doc.company, heading)
        y = _rows(w, table, y, rows, page_rows)
        if index < len(pages) - 1:
            _continued(w, y)
        else:
            _totals(w, y - 8, total_rows, (_("Total credited"), w.money(doc.total), ""))
            _words(w, y - 8, _("This credit note amounts to:"), doc.total, ())
        _footer(w, footer, page=index + 1, pages=len(pages))


# --- Statement of account ------------------------------------------------------------------


def render_statement(document: StatementDocument, *, language: str = "fr") -> bytes:
    """The statement as a PDF (A4), as many pages as its entries need."""
    return _render(
        lambda w: _draw_statement(w, document),
        language=language,
        currency=document.currency,
        title=document.client.number,
        company=document.company,
    )


def _statement_summary(w: _Writer, doc: StatementDocument, y: float) -> float:
    """Four figures across the page: opening, debits, credits, closing."""
    figures = (
        (_("Opening balance"), doc.opening_balance),
        (_("Total debits"), doc.total_debit),
        (_("Total credits"), doc.total_credit),
        (_("Closing balance"), doc.closing_balance),
    )
    width = (WIDTH - 3 * BOX_GAP) / 4
    for index, (label, amount) in enumerate(figures):
        x = LEFT + index * (width + BOX_GAP)
        closing = index == len(figures) - 1
        if closing:
            w.fill_rect(x, y - 34, width, 34, pdf.BRAND)
        else:
            w.frame(x, y - 34, width, 34)
        w.text(
            x + 6,
            y - 12,
            label.upper(),
            size=7,
            bold=True,
            color=pdf.ACCENT if closing else pdf.MUTED,
        )
        color = pdf.WHITE if closing else pdf.INK
        w.text(
            x + width - 6, y - 27, w.money(amount), size=10, bold=True, color=color, align="right"
        )
    return y - 34 - 12


def _draw_statement(w: _Writer, doc: StatementDocument) -> None:
    period = pdf.format_period(doc.period_start, doc.period_end, w.language)
    facts = [
        _Fact(_("Client no."), doc.client.number, bold=True),
        _Fact(_("Period"), period),
        _Fact(_("Issued on"), w.date(doc.issue_date)),
        _Fact(_("Currency"), doc.currency),
    ]
    y = _page_top(w, doc.company, _("Statement of account"), facts)
    boxes = [_client_box(doc.client)]
    if doc.agency is not None:
        boxes.append(_agency_box(doc.agency))
    y = _boxes(w, y, boxes)
    y = _statement_summary(w, doc, y)
    table = Table(
        x=LEFT,
        columns=(
            Column(_("Date"), 84),
            Column(_("Operation"), 78),
            Column(_("Reference"), WIDTH - 84 - 78 - 3 * 84),
            Column(_("Debit"), 84, "right"),
            Column(_("Credit"), 84, "right"),
            Column(_("Balance"), 84, "right"),
        ),
        row_height=13,
        size=8,
    )
    rows = [["", _("Opening balance"), "", "", "", w.amount(doc.opening_balance)]]
    for entry, balance in zip(doc.entries, doc.balances, strict=True):
        rows.append(
            [
                w.date(entry.date),
                str(EntryKind(entry.kind).label),
                entry.reference,
                w.amount(entry.debit) if entry.debit else "",
                w.amount(entry.credit) if entry.credit else "",
                w.amount(balance),
            ]
        )
    pages = _pages(table, y, len(rows), 2 * table.row_height)
    footer = _("Positive balance: amount you owe; negative balance: credit in your favour.")
    heading = f"{_('Statement of account')} · {doc.client.number} · {period}"
    for index, page_rows in enumerate(pages):
        if index:
            w.new_page()
            y = _continuation_top(w, doc.company, heading)
        y = _rows(w, table, y, rows, page_rows)
        if index < len(pages) - 1:
            _continued(w, y)
        else:
            closing = [
                "",
                _("Closing balance"),
                "",
                w.amount(doc.total_debit),
                w.amount(doc.total_credit),
                w.amount(doc.closing_balance),
            ]
            y = table.row(w, y, closing, bold=True, shaded=True)
            table.rule(w, y, color=pdf.BRAND, width=1)
        _footer(w, footer, page=index + 1, pages=len(pages))


# --- Payment receipt -----------------------------------------------------------------------

ReceiptPage = Literal["a4", "ticket80"]


def render_receipt(
    document: ReceiptDocument, *, language: str = "fr", page: ReceiptPage = "a4"
) -> bytes:
    """The receipt as a PDF: on A4, or on an 80 mm wide thermal-printer ticket."""
    if page == "a4":
        return _render(
            lambda w: _draw_receipt(w, document),
            language=language,
            currency=document.currency,
            title=document.number,
            company=document.company,
        )
    if page != "ticket80":
        raise ValueError(f"no receipt page {page!r}; expected 'a4' or 'ticket80'")
    code = pdf.language_code(language)
    with translation.override(code):
        items = _ticket_items(document, _Formats(code, document.currency))
    # The ticket is exactly as long as its lines: a roll has no page length.
    height = 2 * TICKET_MARGIN + sum(item.height for item in items)
    return _render(
        lambda w: _draw_ticket(w, items, height),
        language=code,
        currency=document.currency,
        title=document.number,
        company=document.company,
        pagesize=(pdf.TICKET_WIDTH, height),
    )


def _receipt_facts(doc: ReceiptDocument, w: _Formats) -> list[_Fact]:
    return [
        _Fact(_("Receipt no."), doc.number, bold=True),
        _Fact(_("Date"), w.date(pdf.local_date(doc.issued_at, doc.time_zone))),
        _Fact(_("Time"), pdf.format_time(doc.issued_at, doc.time_zone)),
    ]


def _receipt_details(doc: ReceiptDocument) -> list[tuple[str, str]]:
    rows = [(_("Payment method"), str(PaymentMethod(doc.method).label))]
    if doc.operator_transaction_id:
        rows.append((_("Transaction ID"), doc.operator_transaction_id))
    if doc.payer_number:
        rows.append((_("Payer number"), doc.payer_number))
    if doc.cashier_name:
        rows.append((_("Cashier"), doc.cashier_name))
    return rows


def _receipt_balances(doc: ReceiptDocument, w: _Formats) -> list[tuple[str, str]]:
    rows = []
    if doc.remaining_credit is not None:
        rows.append((_("Remaining credit"), w.money(doc.remaining_credit)))
    if doc.balance_after is not None:
        rows.append((_("Balance after payment"), w.money(doc.balance_after)))
    return rows


def _token_caption(token: PrepaidToken, w: _Formats) -> str:
    return _("%(kwh)s for meter %(serial)s") % {
        "kwh": w.kwh(token.kwh),
        "serial": token.meter_serial,
    }


def _draw_receipt(w: _Writer, doc: ReceiptDocument) -> None:
    y = _page_top(w, doc.company, _("Payment receipt"), _receipt_facts(doc, w))
    y = _boxes(w, y, [_client_box(doc.client), _agency_box(doc.agency)])
    # The amount, large, with how it was paid beside it.
    half = (WIDTH - BOX_GAP) / 2
    details = _receipt_details(doc)
    height = max(56.0, 14 + 12 * len(details) + 8)
    w.fill_rect(LEFT, y - height, half, height, pdf.BRAND)
    w.text(LEFT + 10, y - 16, _("Amount received").upper(), size=8, bold=True, color=pdf.ACCENT)
    w.text(
        LEFT + half - 10,
        y - height + 14,
        w.money(doc.amount),
        size=20,
        bold=True,
        color=pdf.WHITE,
        align="right",
    )
    x = LEFT + half + BOX_GAP
    w.frame(x, y - height, half, height)
    line_y = y - 16
    for label, value in details:
        w.text(x + 8, line_y, label, size=8, color=pdf.MUTED)
        w.text(x + half - 8, line_y, value, bold=True, align="right", max_width=half * 0.6)
        line_y -= 12
    y -= height + 14
    if doc.allocations:
        table = Table(
            x=LEFT,
            columns=(
                Column(_("Invoice"), WIDTH - 160),
                Column(_("Amount allocated"), 160, "right"),
            ),
            row_height=15,
        )
        rows = [
            [allocation.invoice_number, w.money(allocation.amount)]
            for allocation in doc.allocations
        ]
        y = _rows(w, table, y, rows, range(len(rows))) - 4
    for label, value in _receipt_balances(doc, w):
        y -= TOTAL_ROW
        w.text(RIGHT - TOTALS_WIDTH + 6, y + 4, label)
        w.text(RIGHT - 6, y + 4, value, bold=True, align="right")
    if doc.token is not None:
        y -= 18
        middle = PAGE_WIDTH / 2
        w.fill_rect(LEFT, y - 84, WIDTH, 84, pdf.TINT)
        w.text(LEFT + 10, y - 16, _("Prepaid token").upper(), size=8, bold=True, color=pdf.BRAND)
        w.text(
            middle, y - 46, pdf.format_token(doc.token.digits), size=26, bold=True, align="center"
        )
        w.text(middle, y - 64, _token_caption(doc.token, w), size=9, align="center")
        keypad = _("Enter these digits on your meter's keypad.")
        w.text(middle, y - 77, keypad, size=7.5, color=pdf.MUTED, align="center")
        y -= 84
    thanks = _("Thank you for your payment.")
    w.text(PAGE_WIDTH / 2, y - 28, thanks, size=10, bold=True, color=pdf.BRAND, align="center")
    _footer(w, _("Keep this receipt: it proves your payment."), page=1, pages=1)


# The ticket: a column of items, measured first so that the page is as long as they are.
TICKET_MARGIN = 4 * mm
TICKET_TEXT_WIDTH = pdf.TICKET_WIDTH - 2 * TICKET_MARGIN


@dataclass(frozen=True)
class _TicketItem:
    kind: Literal["text", "pair", "rule", "logo", "space"]
    left: str = ""
    right: str = ""
    size: float = 7.5
    bold: bool = False

    @property
    def height(self) -> float:
        if self.kind == "logo":
            return 30.0
        if self.kind == "rule":
            return 8.0
        if self.kind == "space":
            return self.size
        return self.size * 1.3


def _ticket_items(doc: ReceiptDocument, w: _Formats) -> list[_TicketItem]:
    items = [_TicketItem("logo")]
    rule = _TicketItem("rule")

    def centred(value: str, size: float = 7.5, *, bold: bool = False) -> None:
        for line in pdf.wrap(value, TICKET_TEXT_WIDTH, size=size, bold=bold):
            items.append(_TicketItem("text", line, size=size, bold=bold))

    def pair(label: str, value: str, *, bold: bool = False) -> None:
        items.append(_TicketItem("pair", label, value, bold=bold))

    company = doc.company
    centred(company.name, 10, bold=True)
    for line in company.address_lines:
        centred(line, 7)
    centred(
        " · ".join((_("Tax no. %(number)s") % {"number": company.tax_number}, company.phone)), 6.5
    )
    items.append(rule)
    centred(_("Payment receipt").upper(), 10, bold=True)
    for fact in _receipt_facts(doc, w):
        pair(fact.label, fact.value, bold=fact.bold)
    pair(_("Agency"), doc.agency.name)
    items.append(rule)
    centred(doc.client.name, 8.5, bold=True)
    centred(_("Client no. %(number)s") % {"number": doc.client.number})
    items.append(rule)
    centred(_("Amount received"))
    centred(w.money(doc.amount), 15, bold=True)
    items.append(_TicketItem("space", size=3))
    for label, value in _receipt_details(doc):
        pair(label, value)
    if doc.allocations:
        items.append(rule)
        for allocation in doc.allocations:
            pair(allocation.invoice_number, w.money(allocation.amount))
    balances = _receipt_balances(doc, w)
    if balances:
        items.append(rule)
        for label, value in balances:
            pair(label, value, bold=True)
    if doc.token is not None:
        items.append(rule)
        centred(_("Prepaid token").upper(), 8, bold=True)
        centred(pdf.format_token(doc.token.digits), 14, bold=True)
        centred(_token_caption(doc.token, w))
    items.append(rule)
    centred(_("Thank you for your payment."), 8, bold=True)
    return items


def _draw_ticket(w: _Writer, items: Sequence[_TicketItem], height: float) -> None:
    left, right, middle = TICKET_MARGIN, pdf.TICKET_WIDTH - TICKET_MARGIN, pdf.TICKET_WIDTH / 2
    y = height - TICKET_MARGIN
    for item in items:
        baseline = y - item.size
        if item.kind == "logo":
            w.logo(middle - 13, y - 27, 26)
        elif item.kind == "rule":
            w.canvas.setDash(2, 2)
            w.hline(left, right, y - 4, color=pdf.MUTED, width=0.5)
            w.canvas.setDash()
        elif item.kind == "text":
            w.text(middle, baseline, item.left, size=item.size, bold=item.bold, align="center")
        elif item.kind == "pair":
            value_width = pdf.text_width(item.right, size=item.size, bold=item.bold)
            room = TICKET_TEXT_WIDTH - value_width - 6
            w.text(left, baseline, item.left, size=item.size, color=pdf.MUTED, max_width=room)
            w.text(right, baseline, item.right, size=item.size, bold=item.bold, align="right")
        y -= item.height
