"""The DR Congo and its 26 provinces (constitution of 2006, in force since 2015).

Codes are ISO 3166-2:CD. West of the country keeps Kinshasa time (UTC+1), the rest
Lubumbashi time (UTC+2).
"""

from django.db import migrations

WEST = "Africa/Kinshasa"
EAST = "Africa/Lubumbashi"

PROVINCES = [
    ("CD-KN", "Kinshasa", "Kinshasa", WEST),
    ("CD-BC", "Kongo Central", "Matadi", WEST),
    ("CD-KG", "Kwango", "Kenge", WEST),
    ("CD-KL", "Kwilu", "Bandundu", WEST),
    ("CD-MN", "Mai-Ndombe", "Inongo", WEST),
    ("CD-KS", "Kasaï", "Tshikapa", EAST),
    ("CD-KC", "Kasaï-Central", "Kananga", EAST),
    ("CD-KE", "Kasaï-Oriental", "Mbuji-Mayi", EAST),
    ("CD-LO", "Lomami", "Kabinda", EAST),
    ("CD-SA", "Sankuru", "Lusambo", EAST),
    ("CD-MA", "Maniema", "Kindu", EAST),
    ("CD-SK", "Sud-Kivu", "Bukavu", EAST),
    ("CD-NK", "Nord-Kivu", "Goma", EAST),
    ("CD-IT", "Ituri", "Bunia", EAST),
    ("CD-HU", "Haut-Uele", "Isiro", EAST),
    ("CD-TO", "Tshopo", "Kisangani", EAST),
    ("CD-BU", "Bas-Uele", "Buta", EAST),
    ("CD-NU", "Nord-Ubangi", "Gbadolite", WEST),
    ("CD-MO", "Mongala", "Lisala", WEST),
    ("CD-SU", "Sud-Ubangi", "Gemena", WEST),
    ("CD-EQ", "Équateur", "Mbandaka", WEST),
    ("CD-TU", "Tshuapa", "Boende", EAST),
    ("CD-TA", "Tanganyika", "Kalemie", EAST),
    ("CD-HL", "Haut-Lomami", "Kamina", EAST),
    ("CD-LU", "Lualaba", "Kolwezi", EAST),
    ("CD-HK", "Haut-Katanga", "Lubumbashi", EAST),
]


def load_provinces(apps, schema_editor):
    Country = apps.get_model("geo", "Country")
    Province = apps.get_model("geo", "Province")
    drc, _created = Country.objects.get_or_create(
        code="CD", defaults={"name": "République démocratique du Congo"}
    )
    for code, name, capital, time_zone in PROVINCES:
        Province.objects.update_or_create(
            code=code,
            defaults={"country": drc, "name": name, "capital": capital, "time_zone": time_zone},
        )


class Migration(migrations.Migration):
    dependencies = [("geo", "0001_initial")]

    operations = [migrations.RunPython(load_provinces, migrations.RunPython.noop)]
