"""Drawing business documents straight on a ReportLab canvas, and the formats they print.

Documents are drawn with ``reportlab.pdfgen.canvas`` rather than platypus flowables: their
layout is fixed (known rows, known boxes), so measuring and splitting flowables would be
work thrown away, and the billing run renders thousands of invoices.

Choices that hold for every document:

- **Fonts**: the standard Helvetica pair with WinAnsi encoding. It covers French (é è ê à
  ç œ ’ « » …) in what is seen and what ``pdftotext``/``pypdf`` extract, adds nothing to the
  file and costs nothing to load. Embedding DejaVu Sans (subset) made an invoice twice as
  slow to draw and ten times larger (46 KB instead of 5 KB), for letters outside
  Windows-1252 (ɛ, ɔ) that no client record uses so far: they would print as a black box.
- **Thousands separator**: a plain space (``123 450,60 CDF``). A canvas never wraps a
  string, so a no-break space would buy nothing, and Helvetica's encoding has no narrow
  no-break space at all; a plain space is what pdftotext gives back and what people type
  when they search a PDF.
- **Output**: ``invariant`` (no timestamp nor random id: the same document gives the same
  bytes) and compressed page streams (invoices are e-mailed over poor connections).
- **The logo** is drawn from the shapes of ``static/mwolo/logo.svg`` into a form XObject,
  once per file, and placed on every page; **QR codes** come from segno, drawn as merged
  rectangles in a form XObject of their own, one unit per module.

Formatting functions take the language; drawing functions draw their labels in the active
language (the renderer wraps its work in ``translation.override``).
"""

import calendar
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import segno
from django.utils import translation
from django.utils.dates import MONTHS
from django.utils.translation import gettext as _
from reportlab import rl_config
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
BRAND = HexColor("#0b5d3b")
ACCENT = HexColor("#f5c518")
WARNING = HexColor("#b45309")  # marks to notice (an estimated reading), readable on white
INK = HexColor("#1f2933")
MUTED = HexColor("#5f6b76")
RULE = HexColor("#c5d1ca")
TINT = HexColor("#eef4f0")
WHITE = HexColor("#ffffff")
WATERMARK = HexColor("#e4e8e6")

A4_PAGE = A4
TICKET_WIDTH = 80 * mm
MARGIN = 14 * mm

Align = Literal["left", "right", "center"]
LANGUAGES = ("fr", "en")


def language_code(language: str) -> str:
    """``fr`` or ``en`` from a language tag (``fr-CD`` → ``fr``); anything else is refused."""
    code = language.split("-")[0].lower()
    if code not in LANGUAGES:
        raise ValueError(f"no document language {language!r}; expected one of {LANGUAGES}")
    return code


# --- Numbers, money and dates ------------------------------------------------------------

# Per language: thousands separator, decimal mark, and the space before a percent sign.
_NUMBER_MARKS = {"fr": (" ", ",", " "), "en": (",", ".", "")}
CURRENCY_PLACES = {"CDF": 2, "USD": 2}


def format_decimal(value: Decimal, language: str, places: int) -> str:
    """``value`` to ``places`` decimals (halves away from zero), grouped by thousands."""
    thousands, decimal_mark, _space = _NUMBER_MARKS[language]
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    whole, _dot, fraction = f"{abs(rounded):f}".partition(".")
    groups = []
    while len(whole) > 3:
        groups.append(whole[-3:])
        whole = whole[:-3]
    groups.append(whole)
    text = thousands.join(reversed(groups))
    return f"{sign}{text}{decimal_mark}{fraction}" if places else f"{sign}{text}"


def significant_places(value: Decimal, *, at_least: int, at_most: int) -> int:
    """The decimals ``value`` needs, kept between ``at_least`` and ``at_most``."""
    exponent = value.normalize().as_tuple().exponent
    needed = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return max(at_least, min(at_most, needed))


def format_amount(value: Decimal, language: str) -> str:
    """An amount of money without its currency: ``123 450,60`` / ``123,450.60``."""
    return format_decimal(value, language, 2)


def format_money(value: Decimal, currency: str, language: str) -> str:
    """``123 450,60 CDF`` in French, ``123,450.60 CDF`` in English."""
    return f"{format_decimal(value, language, CURRENCY_PLACES.get(currency, 2))} {currency}"


def format_price(value: Decimal, language: str) -> str:
    """A unit price: two decimals, up to four when the tariff has them (0,1234)."""
    return format_decimal(value, language, significant_places(value, at_least=2, at_most=4))


def format_kwh(value: Decimal, language: str) -> str:
    """Energy as read on a register: the decimals it has, at most three (``1 234,5``)."""
    return format_decimal(value, language, significant_places(value, at_least=0, at_most=3))


def format_percent(rate: Decimal, language: str) -> str:
    """A rate given as a fraction: 0.16 → ``16 %`` (French spacing) / ``16%``."""
    percent = rate * 100
    places = significant_places(percent, at_least=0, at_most=2)
    return f"{format_decimal(percent, language, places)}{_NUMBER_MARKS[language][2]}%"


@lru_cache(maxsize=4)
def _month_names(language: str) -> tuple[str, ...]:
    # Django's own month names (lower case in French), read once per language.
    with translation.override(language):
        return tuple(str(MONTHS[month]) for month in range(1, 13))


def format_date(value: dt.date, language: str) -> str:
    """``2 décembre 2026`` (``1er`` for the first) / ``2 December 2026``."""
    month = _month_names(language)[value.month - 1]
    day = "1er" if language == "fr" and value.day == 1 else str(value.day)
    return f"{day} {month} {value.year}"


def format_month(value: dt.date, language: str) -> str:
    """The month of ``value``: ``octobre 2026`` / ``October 2026``."""
    return f"{_month_names(language)[value.month - 1]} {value.year}"


def format_period(start: dt.date, end: dt.date, language: str) -> str:
    """A whole calendar month as ``octobre 2026``; any other span as ``date – date``."""
    last_day = calendar.monthrange(start.year, start.month)[1]
    if start.day == 1 and end == start.replace(day=last_day):
        return format_month(start, language)
    return f"{format_date(start, language)} – {format_date(end, language)}"


def format_time(value: dt.datetime, zone: str) -> str:
    """The time of ``value`` in ``zone`` with the zone's offset: ``14:05 (UTC+1)``."""
    if value.tzinfo is None:
        raise ValueError("a document's time must be timezone-aware")
    local = value.astimezone(ZoneInfo(zone))
    offset = local.utcoffset() or dt.timedelta(0)
    hours, seconds = divmod(int(offset.total_seconds()), 3600)
    minutes = f":{seconds // 60:02d}" if seconds else ""
    return f"{local:%H:%M} (UTC{hours:+d}{minutes})"


def local_date(value: dt.datetime, zone: str) -> dt.date:
    """The calendar date of an aware ``value`` in ``zone``."""
    if value.tzinfo is None:
        raise ValueError("a document's time must be timezone-aware")
    return value.astimezone(ZoneInfo(zone)).date()


def format_token(digits: str) -> str:
    """A prepaid token grouped for reading aloud: ``123 456 789``.

    Groups of three, except the 20-digit tokens of the STS standard, which meters and
    vendors print in groups of four.
    """
    size = 4 if len(digits) % 4 == 0 and len(digits) % 3 else 3
    return " ".join(digits[i : i + size] for i in range(0, len(digits), size))


# --- Amounts in words ----------------------------------------------------------------------
# Spelling a number is grammar, not translation: each language has its own speller, like
# the date formats Django ships per locale. French uses the traditional spelling (hyphens
# below one hundred, "et" in 21, 31, … 71) that cheques and invoices use.

MAX_IN_WORDS = 999_999_999_999

_FR_UNITS = [
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
_FR_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}


def _fr_below_100(n: int, *, last: bool) -> str:
    if n < 17:
        return _FR_UNITS[n]
    if n < 20:
        return f"dix-{_FR_UNITS[n - 10]}"
    tens, unit = divmod(n, 10)
    if tens == 7:
        return "soixante et onze" if n == 71 else f"soixante-{_fr_below_100(n - 60, last=last)}"
    if tens >= 8:
        if n == 80:
            # "quatre-vingts" takes its s only when nothing follows it (nor "mille").
            return "quatre-vingts" if last else "quatre-vingt"
        return f"quatre-vingt-{_fr_below_100(n - 80, last=last)}"
    if unit == 0:
        return _FR_TENS[tens]
    if unit == 1:
        return f"{_FR_TENS[tens]} et un"
    return f"{_FR_TENS[tens]}-{_FR_UNITS[unit]}"


def _fr_below_1000(n: int, *, last: bool) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _fr_below_100(rest, last=last)
    if hundreds == 1:
        head = "cent"
    else:
        # "deux cents" takes its s only when nothing follows it (nor "mille").
        head = f"{_FR_UNITS[hundreds]} cent{'s' if last and not rest else ''}"
    return f"{head} {_fr_below_100(rest, last=last)}" if rest else head


def _fr_words(n: int) -> str:
    if n == 0:
        return "zéro"
    billions, rest = divmod(n, 1_000_000_000)
    millions, rest = divmod(rest, 1_000_000)
    thousands, units = divmod(rest, 1000)
    parts = []
    # "million" and "milliard" are nouns: what counts them is complete ("deux cents millions").
    for count, noun in ((billions, "milliard"), (millions, "million")):
        if count:
            plural = "s" if count > 1 else ""
            parts.append(f"{_fr_below_1000(count, last=True)} {noun}{plural}")
    if thousands:
        # "mille" is invariable and never counted by "un".
        parts.append(
            "mille" if thousands == 1 else f"{_fr_below_1000(thousands, last=False)} mille"
        )
    if units:
        parts.append(_fr_below_1000(units, last=True))
    return " ".join(parts)


_EN_UNITS = [
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
_EN_TENS = {
    2: "twenty",
    3: "thirty",
    4: "forty",
    5: "fifty",
    6: "sixty",
    7: "seventy",
    8: "eighty",
    9: "ninety",
}


def _en_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_EN_UNITS[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, unit = divmod(rest, 10)
        words.append(f"{_EN_TENS[tens]}-{_EN_UNITS[unit]}" if unit else _EN_TENS[tens])
    elif rest:
        words.append(_EN_UNITS[rest])
    return " ".join(words)


def _en_words(n: int) -> str:
    if n == 0:
        return "zero"
    parts = []
    for scale, name in ((1_000_000_000, "billion"), (1_000_000, "million"), (1000, "thousand")):
        count, n = divmod(n, scale)
        if count:
            parts.append(f"{_en_below_1000(count)} {name}")
    if n:
        parts.append(_en_below_1000(n))
    return " ".join(parts)


def number_in_words(n: int, language: str) -> str:
    """A whole number from 0 to 999 999 999 999 in words, lower case."""
    if not 0 <= n <= MAX_IN_WORDS:
        raise ValueError(f"{n} is outside 0…{MAX_IN_WORDS}")
    return _fr_words(n) if language == "fr" else _en_words(n)


# Per language and currency: (unit, units, cent, cents).
_CURRENCY_WORDS = {
    "fr": {
        "CDF": ("franc congolais", "francs congolais", "centime", "centimes"),
        "USD": ("dollar américain", "dollars américains", "cent", "cents"),
    },
    "en": {
        "CDF": ("Congolese franc", "Congolese francs", "centime", "centimes"),
        "USD": ("US dollar", "US dollars", "cent", "cents"),
    },
}


def amount_in_words(amount: Decimal, currency: str, language: str) -> str:
    """``Cent vingt-trois mille quatre cent cinquante francs congolais et 60 centimes``.

    The whole units in words, the cents in figures, as on a cheque. Rounds to the cent
    first; refuses negative amounts and amounts over 999 999 999 999.
    """
    if amount < 0:
        raise ValueError("an amount in words cannot be negative")
    cents_total = int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)
    whole, cents = divmod(cents_total, 100)
    unit, units, cent, cents_name = _CURRENCY_WORDS[language][currency]
    words = number_in_words(whole, language)
    if language == "fr":
        plural = whole > 1
        # "deux millions de francs": a round million is a noun phrase, joined with "de".
        joiner = " de " if whole >= 1_000_000 and whole % 1_000_000 == 0 else " "
        text = f"{words}{joiner}{units if plural else unit}"
        if cents:
            text += f" et {cents} {cents_name if cents > 1 else cent}"
    else:
        text = f"{words} {unit if whole == 1 else units}"
        if cents:
            text += f" and {cents} {cent if cents == 1 else cents_name}"
    return text[0].upper() + text[1:]


# --- Page set-up and text ------------------------------------------------------------------

# ReportLab wraps every compressed stream in ASCII85 by default, for 7-bit channels no one
# uses any more: binary streams are a fifth smaller and quicker to write. Process-wide, for
# every PDF the platform makes.
rl_config.useA85 = 0


@dataclass(frozen=True)
class Company:
    """Who issues the documents, as printed in every header."""

    name: str
    address_lines: tuple[str, ...]
    rccm: str
    national_id: str  # identification nationale
    tax_number: str  # NIF
    phone: str
    email: str
    website: str = ""


def text_width(value: str, *, size: float, bold: bool = False) -> float:
    return stringWidth(value, FONT_BOLD if bold else FONT, size)


def fit(value: str, width: float, *, size: float, bold: bool = False) -> str:
    """``value``, cut with an ellipsis if it is wider than ``width``."""
    if text_width(value, size=size, bold=bold) <= width:
        return value
    while value and text_width(value + "…", size=size, bold=bold) > width:
        value = value[:-1]
    return value.rstrip() + "…"


def wrap(value: str, width: float, *, size: float, bold: bool = False) -> list[str]:
    """``value`` broken into lines no wider than ``width`` (a too long word is cut)."""
    if text_width(value, size=size, bold=bold) <= width:
        return [value] if value else []
    lines: list[str] = []
    line = ""
    for word in value.split():
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, size=size, bold=bold) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = fit(word, width, size=size, bold=bold)
    if line:
        lines.append(line)
    return lines


def wrap_parts(
    parts: Sequence[str], width: float, *, size: float, separator: str = " · "
) -> list[str]:
    """``parts`` joined by ``separator`` into lines no wider than ``width``, never cut
    inside a part unless the part alone is too wide."""
    lines: list[str] = []
    line = ""
    for part in parts:
        candidate = f"{line}{separator}{part}" if line else part
        if text_width(candidate, size=size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        *whole, line = wrap(part, width, size=size) or [""]
        lines.extend(whole)
    if line:
        lines.append(line)
    return lines


class Sheet:
    """A PDF being drawn, with the house settings (see the module's docstring).

    Shapes go straight to the canvas; the text of a page goes into one text object, drawn
    over the page's shapes when the page ends (one text object instead of one per string,
    and a font or colour set only when it changes).
    """

    def __init__(self, *, pagesize: tuple[float, float], title: str, company: Company) -> None:
        self.page_width, self.page_height = pagesize
        self._buffer = io.BytesIO()
        self.canvas = Canvas(
            self._buffer,
            pagesize=pagesize,
            invariant=True,
            pageCompression=1,
            initialFontName=FONT,
            initialFontSize=9,
            lang=translation.get_language() or "fr",
        )
        self.canvas.setTitle(title)
        self.canvas.setAuthor(company.name)
        self.canvas.setCreator(company.name)
        self._start_text()

    def _start_text(self) -> None:
        self._text = self.canvas.beginText()
        self._font: tuple[str, float] | None = None
        self._color: Color | None = None

    def new_page(self) -> None:
        self.canvas.drawText(self._text)
        self.canvas.showPage()
        self._start_text()

    def finish(self) -> bytes:
        """Ends the last page; the PDF's bytes."""
        self.canvas.drawText(self._text)
        self.canvas.save()
        return self._buffer.getvalue()

    def text(
        self,
        x: float,
        y: float,
        value: str,
        *,
        size: float = 8.5,
        bold: bool = False,
        color: Color = INK,
        align: Align = "left",
        max_width: float | None = None,
    ) -> None:
        """One line whose baseline is at ``y``; ``x`` is its left, right or centre.

        Text wider than ``max_width`` is cut with an ellipsis.
        """
        if not value:
            return
        font = FONT_BOLD if bold else FONT
        if align != "left" or max_width is not None:
            width = stringWidth(value, font, size)
            if max_width is not None and width > max_width:
                value = fit(value, max_width, size=size, bold=bold)
                width = stringWidth(value, font, size)
            if align == "right":
                x -= width
            elif align == "center":
                x -= width / 2
        writer = self._text
        if self._font != (font, size):
            writer.setFont(font, size)
            self._font = (font, size)
        if self._color is not color:
            writer.setFillColor(color)
            self._color = color
        writer.setTextOrigin(x, y)
        writer.textOut(value)

    def fill_rect(self, x: float, y: float, width: float, height: float, color: Color) -> None:
        self.canvas.setFillColor(color)
        self.canvas.rect(x, y, width, height, stroke=0, fill=1)

    def hline(
        self, x1: float, x2: float, y: float, *, color: Color = RULE, width: float = 0.6
    ) -> None:
        self.canvas.setStrokeColor(color)
        self.canvas.setLineWidth(width)
        self.canvas.line(x1, y, x2, y)

    def frame(self, x: float, y: float, width: float, height: float) -> None:
        """A thin box (``x``, ``y``: its lower left corner)."""
        self.canvas.setStrokeColor(RULE)
        self.canvas.setLineWidth(0.6)
        self.canvas.rect(x, y, width, height, stroke=1, fill=0)

    def watermark(self, value: str) -> None:
        """Large pale text across the page; call it first, so the content stays on top."""
        canvas = self.canvas
        canvas.saveState()
        canvas.translate(self.page_width / 2, self.page_height / 2)
        canvas.rotate(35)
        canvas.setFont(FONT_BOLD, 110)
        canvas.setFillColor(WATERMARK)
        canvas.drawCentredString(0, -40, value)
        canvas.restoreState()

    def page_number(self, *, page: int, pages: int, y: float) -> None:
        label = _("Page %(page)d / %(pages)d") % {"page": page, "pages": pages}
        self.text(self.page_width - MARGIN, y, label, size=7.5, color=MUTED, align="right")

    def logo(self, x: float, y: float, size: float) -> None:
        """The logo as a ``size`` square whose lower left corner is (``x``, ``y``)."""
        canvas = self.canvas
        if not canvas.hasForm(LOGO_FORM):
            _define_logo(canvas)
        canvas.saveState()
        canvas.transform(size / 64, 0, 0, size / 64, x, y)
        canvas.doForm(LOGO_FORM)
        canvas.restoreState()

    def qr(self, payload: str, *, x: float, y: float, size: float) -> None:
        """The QR code of ``payload`` as a ``size`` square (no quiet zone) at (``x``, ``y``).

        The symbol is a form XObject in module units, so what is drawn is exactly segno's
        matrix (the tests read it back from the file). One per file.
        """
        canvas = self.canvas
        matrix = qr_matrix(payload)
        modules = len(matrix)
        canvas.beginForm(QR_FORM, 0, 0, modules, modules)
        canvas.setFillColor(INK)
        # Integer rectangles written as they are: ReportLab's path builder would format
        # every number as a float, a few hundred per symbol.
        canvas.addLiteral(
            " ".join(
                f"{column} {modules - row - height} {width} {height} re"
                for column, row, width, height in qr_rectangles(matrix)
            )
            + " f"
        )
        canvas.endForm()
        canvas.saveState()
        canvas.transform(size / modules, 0, 0, size / modules, x, y)
        canvas.doForm(QR_FORM)
        canvas.restoreState()

    def company_header(
        self, company: Company, *, x: float, top: float, width: float, logo_size: float = 46
    ) -> float:
        """Logo, name, address, legal numbers and contact; returns the y below them."""
        self.logo(x, top - logo_size, logo_size)
        left = x + logo_size + 10
        room = width - logo_size - 10
        y = top - 13
        self.text(left, y, company.name, size=14, bold=True, color=BRAND, max_width=room)
        y -= 12
        for line in company.address_lines:
            self.text(left, y, line, size=8, max_width=room)
            y -= 10
        legal = (
            _("RCCM %(number)s") % {"number": company.rccm},
            _("Nat. ID %(number)s") % {"number": company.national_id},
            _("Tax no. %(number)s") % {"number": company.tax_number},
        )
        contact = (company.phone, company.email, company.website)
        for parts in (legal, contact):
            for line in wrap_parts([part for part in parts if part], room, size=7):
                self.text(left, y, line, size=7, color=MUTED)
                y -= 9
        return min(y + 3, top - logo_size - 6)


def split_rows(count: int, *, first: int, other: int, closing: int) -> list[range]:
    """Which rows of a table go on which page.

    ``first`` rows fit on the first page, ``other`` on each following one; the last page
    also holds what closes the document (totals…), which takes the room of ``closing``
    rows. At least one row goes along with the closing part, never a page of totals alone.
    """
    if first < 1 or other < closing + 1:
        raise ValueError("a page must hold at least one row besides the closing part")
    pages, start, capacity = [], 0, first
    while True:
        remaining = count - start
        if remaining + closing <= capacity:
            pages.append(range(start, count))
            return pages
        taken = min(remaining, capacity)
        if taken == remaining and remaining:
            taken -= 1
        pages.append(range(start, start + taken))
        start += taken
        capacity = other


# --- Tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    title: str
    width: float
    align: Align = "left"


class Table:
    """Rows of cells drawn straight on a sheet, positions measured once.

    ``y`` arguments are the top of the row; a row is ``row_height`` high.
    """

    padding = 4.0

    def __init__(
        self, *, x: float, columns: Sequence[Column], row_height: float, size: float = 8.5
    ) -> None:
        self.x = x
        self.columns = tuple(columns)
        self.row_height = row_height
        self.size = size
        self.width = sum(column.width for column in self.columns)
        anchors = []
        left = x
        for column in self.columns:
            if column.align == "left":
                anchors.append(left + self.padding)
            elif column.align == "right":
                anchors.append(left + column.width - self.padding)
            else:
                anchors.append(left + column.width / 2)
            left += column.width
        self.anchors = tuple(anchors)
        self.inner_widths = tuple(column.width - 2 * self.padding for column in self.columns)
        self.baseline = row_height / 2 - size * 0.35

    def header(self, sheet: Sheet, y: float) -> float:
        """The column titles on the brand colour; returns the top of the first row."""
        sheet.fill_rect(self.x, y - self.row_height, self.width, self.row_height, BRAND)
        self._cells(sheet, y, [column.title for column in self.columns], bold=True, color=WHITE)
        return y - self.row_height

    def row(
        self,
        sheet: Sheet,
        y: float,
        values: Sequence[str],
        *,
        bold: bool = False,
        shaded: bool = False,
        color: Color = INK,
    ) -> float:
        """One row of ``values`` (cut to their column); returns the top of the next row."""
        if shaded:
            sheet.fill_rect(self.x, y - self.row_height, self.width, self.row_height, TINT)
        self._cells(sheet, y, values, bold=bold, color=color)
        return y - self.row_height

    def rule(self, sheet: Sheet, y: float, *, color: Color = RULE, width: float = 0.6) -> None:
        sheet.hline(self.x, self.x + self.width, y, color=color, width=width)

    def _cells(
        self, sheet: Sheet, y: float, values: Sequence[str], *, bold: bool, color: Color
    ) -> None:
        baseline = y - self.row_height + self.baseline
        for column, anchor, inner, value in zip(
            self.columns, self.anchors, self.inner_widths, values, strict=True
        ):
            sheet.text(
                anchor,
                baseline,
                value,
                size=self.size,
                bold=bold,
                color=color,
                align=column.align,
                max_width=inner,
            )


# --- Logo and QR code ----------------------------------------------------------------------

LOGO_FORM = "mwolo-logo"
QR_FORM = "mwolo-qr"


def _define_logo(canvas: Canvas) -> None:
    # The shapes of static/mwolo/logo.svg (viewBox 0 0 64 64, y pointing down) drawn in a
    # 64-unit square with y pointing up.
    canvas.beginForm(LOGO_FORM, 0, 0, 64, 64)
    canvas.setFillColor(BRAND)
    canvas.circle(32, 32, 30, stroke=0, fill=1)
    bolt = canvas.beginPath()
    points = ((36, 8), (18, 36), (30, 36), (26, 56), (46, 26), (34, 26))
    bolt.moveTo(points[0][0], 64 - points[0][1])
    for px, py in points[1:]:
        bolt.lineTo(px, 64 - py)
    bolt.close()
    canvas.setFillColor(ACCENT)
    canvas.drawPath(bolt, stroke=0, fill=1)
    canvas.endForm()


def qr_matrix(payload: str) -> tuple[bytearray, ...]:
    """The modules of the QR code for ``payload`` (1 = dark), error correction M."""
    return segno.make_qr(payload, error="m").matrix


def qr_rectangles(matrix: Sequence[Sequence[int]]) -> list[tuple[int, int, int, int]]:
    """The dark modules as few rectangles: runs along each row, merged down the rows.

    Rectangles are ``(column, row, width, height)`` in modules from the top left corner.
    """
    done: list[tuple[int, int, int, int]] = []
    open_runs: dict[tuple[int, int], int] = {}  # (column, width) → first row
    for row_index, row in enumerate(matrix):
        runs = set()
        column, size = 0, len(row)
        while column < size:
            if row[column]:
                start = column
                while column < size and row[column]:
                    column += 1
                runs.add((start, column - start))
            else:
                column += 1
        for run in list(open_runs):
            if run not in runs:
                first = open_runs.pop(run)
                done.append((run[0], first, run[1], row_index - first))
        for run in runs:
            open_runs.setdefault(run, row_index)
    for run, first in open_runs.items():
        done.append((run[0], first, run[1], len(matrix) - first))
    return done
