"""Tariffs and exchange rates: checked and saved here, one transaction each."""

from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from mwolo.accounts.models import User

from .models import Tariff, TariffBand
from .pricing import Band


def bands_check(bands: Sequence[Band]) -> None:
    """Bands rise strictly, each has a price, and the last one takes everything above."""
    if not bands:
        raise ValidationError(_("A tariff needs at least one consumption band."))
    limits = [up_to for up_to, _price in bands]
    if limits[-1] is not None:
        raise ValidationError(_("The last band must have no upper limit."))
    if None in limits[:-1]:
        raise ValidationError(_("Only the last band may have no upper limit."))
    bounded = [limit for limit in limits[:-1] if limit is not None]
    if any(low >= high for low, high in pairwise(bounded)):
        raise ValidationError(_("Band limits must rise from one band to the next."))
    if any(price <= 0 for _up_to, price in bands):
        raise ValidationError(_("Every band needs a price above zero."))


def tariff_overlap_check(tariff: Tariff) -> None:
    """One tariff per site category on any day."""
    others = Tariff.objects.filter(category=tariff.category).exclude(pk=tariff.pk)
    if tariff.valid_to is not None:
        others = others.filter(valid_from__lte=tariff.valid_to)
    clash = others.exclude(valid_to__lt=tariff.valid_from).first()
    if clash is not None:
        raise ValidationError(
            {
                "valid_from": _("These dates overlap the tariff %(code)s of the same category.")
                % {"code": clash.code}
            }
        )


@transaction.atomic
def tariff_save(*, tariff: Tariff, bands: Sequence[Band], actor: User | None) -> Tariff:
    """Create or replace a tariff with its bands (``(up_to_kwh or None, price)``, in order)."""
    bands_check(bands)
    tariff.full_clean()
    tariff_overlap_check(tariff)
    tariff.save()
    tariff.bands.all().delete()
    TariffBand.objects.bulk_create(
        TariffBand(tariff=tariff, up_to_kwh=up_to, price_per_kwh=Decimal(price))
        for up_to, price in bands
    )
    return tariff
