"""Which tariff applies, and what a currency is worth, on a given day."""

import datetime as dt
from decimal import Decimal

from django.utils.translation import gettext as _

from mwolo.core.exceptions import ApplicationError

from .models import Currency, ExchangeRate, Tariff
from .pricing import Band

RATE_VALIDITY = dt.timedelta(days=7)  # an older rate is too far from the market


def tariff_in_force(*, category: str, on: dt.date) -> Tariff:
    """The tariff of a site category on a day, with its bands; an error names what is missing."""
    tariff = (
        Tariff.objects.filter(category=category, valid_from__lte=on)
        .exclude(valid_to__lt=on)
        .prefetch_related("bands")
        .first()
    )
    if tariff is None:
        raise ApplicationError(
            _("No tariff for the category “%(category)s” on %(day)s.")
            % {"category": category, "day": on.isoformat()}
        )
    return tariff


def tariff_bands(tariff: Tariff) -> list[Band]:
    return [(band.up_to_kwh, band.price_per_kwh) for band in tariff.bands.all()]


def amount_in(*, amount: Decimal, currency: str, target: str, on: dt.date) -> Decimal:
    """``amount`` of ``currency`` in ``target`` at the rate of ``on`` (the latest known), exact."""
    if currency == target:
        return amount
    rate = ExchangeRate.objects.filter(day__lte=on, day__gt=on - RATE_VALIDITY).first()
    if rate is None:
        raise ApplicationError(
            _("No exchange rate in the week up to %s: enter the BCC rate.") % on.isoformat()
        )
    per_usd = rate.cdf_per_usd
    return amount * per_usd if currency == Currency.USD else amount / per_usd
