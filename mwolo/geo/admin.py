from django.contrib import admin

from .models import Commune, Country, Province, Territory


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin):
    list_display = ["name", "code"]


@admin.register(Province)
class ProvinceAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "capital", "time_zone"]
    list_filter = ["time_zone"]
    search_fields = ["name", "code", "capital"]


@admin.register(Territory)
class TerritoryAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "province"]
    list_filter = ["kind", "province"]
    list_select_related = ["province"]
    search_fields = ["name", "province__name"]


@admin.register(Commune)
class CommuneAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "territory", "province"]
    list_filter = ["kind", "territory__province"]
    list_select_related = ["territory__province"]
    search_fields = ["name", "territory__name"]
    autocomplete_fields = ["territory"]

    @admin.display(description=Province._meta.verbose_name, ordering="territory__province__name")
    def province(self, commune: Commune) -> Province:
        return commune.territory.province
