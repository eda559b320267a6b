from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from mwolo.core.admin import ScopedModelAdmin

from .models import Agency, OpeningHours


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


@admin.register(Agency)
class AgencyAdmin(ScopedModelAdmin):
    list_display = ["code", "name", "province", "territory", "phone", "time_zone", "is_active"]
    list_filter = ["is_active", "province"]
    # The territory column prints "Lubumbashi (Haut-Katanga)": its province too.
    list_select_related = ["province", "territory__province"]
    search_fields = ["code", "name", "address_line", "territory__name", "commune__name"]
    autocomplete_fields = ["province", "territory", "commune"]
    readonly_fields = ["time_zone"]
    inlines = [OpeningHoursInline]
    fieldsets = [
        (None, {"fields": ["code", "name", "is_active"]}),
        (_("Contact"), {"fields": ["phone", "email"]}),
        (
            _("Location"),
            {
                "fields": [
                    "province",
                    "territory",
                    "commune",
                    "address_line",
                    "latitude",
                    "longitude",
                    "time_zone",
                ]
            },
        ),
    ]

    @admin.display(description=_("time zone"))
    def time_zone(self, agency: Agency) -> str:
        return agency.province.get_time_zone_display() if agency.province_id else "–"
