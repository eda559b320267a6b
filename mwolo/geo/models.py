"""Country → Province → Territory/City → Commune, and the address every place is given."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mwolo.core.validation import collect_errors


class TimeZone(models.TextChoices):
    KINSHASA = "Africa/Kinshasa", _("Kinshasa time (UTC+1, west)")
    LUBUMBASHI = "Africa/Lubumbashi", _("Lubumbashi time (UTC+2, east)")


class Country(models.Model):
    code = models.CharField(_("ISO code"), max_length=2, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("country")
        verbose_name_plural = _("countries")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Province(models.Model):
    country = models.ForeignKey(
        Country, on_delete=models.PROTECT, related_name="provinces", verbose_name=_("country")
    )
    code = models.CharField(_("ISO 3166-2 code"), max_length=6, unique=True)
    name = models.CharField(_("name"), max_length=100)
    capital = models.CharField(_("capital"), max_length=100)
    time_zone = models.CharField(_("time zone"), max_length=32, choices=TimeZone.choices)

    class Meta:
        verbose_name = _("province")
        verbose_name_plural = _("provinces")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["country", "name"], name="geo_province_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Territory(models.Model):
    """A territory, or a city (``ville``), directly under a province."""

    class Kind(models.TextChoices):
        CITY = "city", _("City")
        TERRITORY = "territory", _("Territory")

    province = models.ForeignKey(
        Province, on_delete=models.PROTECT, related_name="territories", verbose_name=_("province")
    )
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)

    class Meta:
        verbose_name = _("territory or city")
        verbose_name_plural = _("territories and cities")
        ordering = ["province__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["province", "name"], name="geo_territory_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.province.name})"


class Commune(models.Model):
    """A commune of a city, or a sector or chiefdom of a territory."""

    class Kind(models.TextChoices):
        COMMUNE = "commune", _("Commune")
        SECTOR = "sector", _("Sector")
        CHIEFDOM = "chiefdom", _("Chiefdom")

    territory = models.ForeignKey(
        Territory,
        on_delete=models.PROTECT,
        related_name="communes",
        verbose_name=_("territory or city"),
    )
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.COMMUNE)

    class Meta:
        verbose_name = _("commune")
        verbose_name_plural = _("communes")
        ordering = ["territory__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["territory", "name"], name="geo_commune_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.territory.name})"


def validate_address_chain(
    *, province: Province | None, territory: Territory | None, commune: Commune | None
) -> None:
    """Raise a field error where a level of the address is not inside the level above."""
    errors: dict[str, str] = {}
    if territory is not None and province is not None and territory.province_id != province.pk:
        errors["territory"] = gettext("%(territory)s is not in the province of %(province)s.") % {
            "territory": territory.name,
            "province": province.name,
        }
    if commune is not None:
        if territory is None:
            errors["territory"] = gettext("Choose the territory or city of this commune.")
        elif commune.territory_id != territory.pk:
            errors["commune"] = gettext("The commune %(commune)s is not in %(territory)s.") % {
                "commune": commune.name,
                "territory": territory.name,
            }
    if errors:
        raise ValidationError(errors)


# The DRC lies within these bounds; a point outside is a typing error (often swapped axes).
DRC_LATITUDE_RANGE = (Decimal("-13.5"), Decimal("5.5"))
DRC_LONGITUDE_RANGE = (Decimal("12"), Decimal("31.5"))


def validate_drc_coordinates(*, latitude: Decimal | None, longitude: Decimal | None) -> None:
    if (latitude is None) != (longitude is None):
        field = "longitude" if latitude is not None else "latitude"
        raise ValidationError({field: _("Give both latitude and longitude, or neither.")})
    if latitude is None:
        return
    errors = {}
    if not DRC_LATITUDE_RANGE[0] <= latitude <= DRC_LATITUDE_RANGE[1]:
        errors["latitude"] = gettext(
            "This latitude is outside the DR Congo (between -13.5 and 5.5)."
        )
    if not DRC_LONGITUDE_RANGE[0] <= longitude <= DRC_LONGITUDE_RANGE[1]:  # type: ignore[operator]
        errors["longitude"] = gettext(
            "This longitude is outside the DR Congo (between 12 and 31.5)."
        )
    if errors:
        raise ValidationError(errors)


class Address(models.Model):
    """A postal address in the DRC, consistent down the chain province → territory → commune.

    Street-level detail (avenue, number, quarter) is free text, as it is on the ground.
    """

    province = models.ForeignKey(
        Province, on_delete=models.PROTECT, related_name="+", verbose_name=_("province")
    )
    territory = models.ForeignKey(
        Territory,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("territory or city"),
    )
    commune = models.ForeignKey(
        Commune,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("commune"),
        null=True,
        blank=True,
    )
    address_line = models.CharField(
        _("address"), max_length=255, help_text=_("Avenue, number, quarter, landmark.")
    )

    class Meta:
        abstract = True

    def clean(self) -> None:
        collect_errors(
            super().clean,
            lambda: validate_address_chain(
                province=self.province if self.province_id else None,
                territory=self.territory if self.territory_id else None,
                commune=self.commune if self.commune_id else None,
            ),
        )


class GeoPoint(models.Model):
    latitude = models.DecimalField(
        _("latitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    longitude = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )

    class Meta:
        abstract = True

    def clean(self) -> None:
        collect_errors(
            super().clean,
            lambda: validate_drc_coordinates(latitude=self.latitude, longitude=self.longitude),
        )
