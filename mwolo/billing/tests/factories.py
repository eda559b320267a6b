import datetime as dt
import io
import subprocess
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdf
from pypdf.generic import ContentStream, NameObject

from mwolo.agencies.models import Agency
from mwolo.billing.models import Tariff
from mwolo.billing.pricing import Band
from mwolo.billing.services import tariff_save
from mwolo.core import clock
from mwolo.crm.models import Site, SiteCategory
from mwolo.crm.tests.factories import SiteFactory
from mwolo.metering.models import MeterReading
from mwolo.metering.services import readings_record
from mwolo.metering.tests.factories import installed_meter

# A residential block tariff in CDF: the first 50 kWh of the month cheap, the rest dearer.
RESIDENTIAL_BANDS: Sequence[Band] = ((Decimal(50), Decimal(100)), (None, Decimal(200)))


def tariff(
    *,
    code: str = "RES-2026",
    category: str = SiteCategory.RESIDENTIAL,
    currency: str = "CDF",
    bands: Sequence[Band] = RESIDENTIAL_BANDS,
    valid_from: dt.date = dt.date(2026, 1, 1),
    valid_to: dt.date | None = None,
    fixed: Decimal = Decimal(2500),
    **fields: object,
) -> Tariff:
    return tariff_save(
        tariff=Tariff(
            code=code,
            name=f"Tarif {code}",
            category=category,
            currency=currency,
            fixed_monthly_charge=fixed,
            valid_from=valid_from,
            valid_to=valid_to,
            **fields,
        ),
        bands=bands,
        actor=None,
    )


KINSHASA = ZoneInfo("Africa/Kinshasa")
OCTOBER = dt.date(2026, 10, 1)


FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def next_month() -> dt.date:
    """The first day of next month: a billing period that is not over."""
    today = clock.today()
    return (today.replace(day=1) + dt.timedelta(days=31)).replace(day=1)


def issued_numbers(count: int) -> list[str]:
    """The numbers of the first invoices issued today (numbered per year of issue)."""
    return [f"FAC-{clock.today().year}-{n:06d}" for n in range(1, count + 1)]


def local(day: str, time: str = "12:00") -> dt.datetime:
    """A moment in Kinshasa: ``local("2026-10-31", "23:00")``."""
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=KINSHASA)


def metered_site(
    *,
    agency: Agency | None = None,
    readings: Sequence[tuple[dt.datetime, str]] = (),
    installed_at: dt.datetime | None = None,
    register: str = "1000",
    category: str = SiteCategory.RESIDENTIAL,
    prepaid: bool = False,
) -> Site:
    """A site with a meter installed (by default in August) and these readings."""
    site = SiteFactory(category=category, **({"agency": agency} if agency else {}))
    meter = installed_meter(
        site, register=register, at=installed_at or local("2026-08-01", "09:00"), prepaid=prepaid
    )
    if readings:
        readings_record(
            meter_id=meter.pk,
            readings=[(at, Decimal(kwh)) for at, kwh in readings],
            source=MeterReading.Source.TECHNICIAN,
            actor=None,
        )
    return site


def pdf_text(content: bytes, folder: Path) -> str:
    """A PDF's text as a reader sees it (``pdftotext -layout``)."""
    path = folder / "document.pdf"
    path.write_bytes(content)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def pdf_qr_modules(content: bytes) -> list[list[int]]:
    """The QR symbol on a PDF's first page as a matrix of modules (1 = dark), read from the
    form it is drawn in (``core.pdf.Sheet.qr``): each cell counts the rectangles covering
    it, so a module drawn twice reads 2."""
    reader = pypdf.PdfReader(io.BytesIO(content))
    page = reader.pages[0]
    placed = ContentStream(page.get_contents(), reader).operations
    assert ([NameObject("/FormXob.mwolo-qr")], b"Do") in placed, "no QR code drawn"
    form = page["/Resources"]["/XObject"]["/FormXob.mwolo-qr"].get_object()
    modules = int(form["/BBox"][2])
    drawn = [[0] * modules for _ in range(modules)]
    for operands, operator in ContentStream(form, reader).operations:
        if operator == b"re":
            x, y, width, height = (int(value) for value in operands)
            for row in range(modules - y - height, modules - y):
                for column in range(x, x + width):
                    drawn[row][column] += 1
    return drawn
