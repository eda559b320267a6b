from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from . import services
from .models import ExchangeRate, Tariff, TariffBand
from .pricing import Band


class BandFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        bands: list[Band] = [
            (form.cleaned_data.get("up_to_kwh"), form.cleaned_data["price_per_kwh"])
            for form in self.forms
            if "price_per_kwh" in (form.cleaned_data or {}) and not form.cleaned_data.get("DELETE")
        ]
        bands.sort(key=lambda band: (band[0] is None, band[0] or 0))
        services.bands_check(bands)


class BandInline(admin.TabularInline):
    model = TariffBand
    formset = BandFormSet
    extra = 1


class TariffForm(forms.ModelForm):
    class Meta:
        model = Tariff
        fields = [
            "code",
            "name",
            "category",
            "currency",
            "fixed_monthly_charge",
            "vat_rate",
            "valid_from",
            "valid_to",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            candidate = Tariff(
                pk=self.instance.pk,
                category=cleaned["category"],
                valid_from=cleaned["valid_from"],
                valid_to=cleaned.get("valid_to"),
            )
            try:
                services.tariff_overlap_check(candidate)
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    form = TariffForm
    list_display = [
        "code",
        "name",
        "category",
        "currency",
        "fixed_monthly_charge",
        "vat_rate",
        "valid_from",
        "valid_to",
    ]
    list_filter = ["category", "currency"]
    search_fields = ["code", "name"]
    inlines = [BandInline]


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ["day", "cdf_per_usd"]
    date_hierarchy = "day"
