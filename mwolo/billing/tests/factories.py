import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from mwolo.billing.models import Tariff
from mwolo.billing.pricing import Band
from mwolo.billing.services import tariff_save
from mwolo.crm.models import SiteCategory

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
) -> Tariff:
    return tariff_save(
        tariff=Tariff(
            code=code,
            name=f"Tarif {code}",
            category=category,
            currency=currency,
            fixed_monthly_charge=Decimal(2500),
            valid_from=valid_from,
            valid_to=valid_to,
        ),
        bands=bands,
        actor=None,
    )
