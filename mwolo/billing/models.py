from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from mwolo.core.models import TimeStampedModel
from mwolo.crm.models import SiteCategory


class Currency(models.TextChoices):
    CDF = "CDF", _("Congolese franc (CDF)")
    USD = "USD", _("US dollar (USD)")


class MoneyField(models.DecimalField):
    """An amount to the cent (Decimal, never float)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max_digits", 16)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class Tariff(TimeStampedModel):
    """The price of electricity for one category of sites over a span of dates.

    Energy is priced by blocks of the month's consumption (``TariffBand``); VAT is added
    on top. One tariff per category is in force on any day.
    """

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    category = models.CharField(_("site category"), max_length=12, choices=SiteCategory.choices)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    fixed_monthly_charge = MoneyField(
        _("fixed monthly charge"),
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("Billed on postpaid invoices; prepaid purchases pay energy only."),
    )
    vat_rate = models.DecimalField(
        _("VAT rate"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.16"),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text=_("0.16 for 16%."),
    )
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(
        _("valid to"), null=True, blank=True, help_text=_("Last day; empty: until replaced.")
    )

    class Meta:
        verbose_name = _("tariff")
        verbose_name_plural = _("tariffs")
        ordering = ["category", "-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                name="billing_tariff_dates_in_order",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.name}"


class TariffBand(models.Model):
    """A block of the month's consumption and its price per kWh (before VAT)."""

    tariff = models.ForeignKey(
        Tariff, on_delete=models.CASCADE, related_name="bands", verbose_name=_("tariff")
    )
    up_to_kwh = models.DecimalField(
        _("up to (kWh in the month)"),
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.001"))],
        help_text=_("Empty for the last band: everything above."),
    )
    price_per_kwh = models.DecimalField(
        _("price per kWh (before VAT)"),
        max_digits=12,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001"))],
    )

    class Meta:
        verbose_name = _("consumption band")
        verbose_name_plural = _("consumption bands")
        ordering = [F("up_to_kwh").asc(nulls_last=True)]

    def __str__(self) -> str:
        return f"≤ {self.up_to_kwh} kWh" if self.up_to_kwh is not None else "> …"


class ExchangeRate(models.Model):
    """The Banque Centrale du Congo's rate of a day: CDF for one USD."""

    day = models.DateField(_("day"), unique=True)
    cdf_per_usd = models.DecimalField(
        _("CDF for 1 USD"),
        max_digits=12,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001"))],
    )

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}: 1 USD = {self.cdf_per_usd} CDF"
