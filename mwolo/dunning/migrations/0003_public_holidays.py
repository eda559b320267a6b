"""The DRC's public holidays on fixed dates, 2026 and 2027 (staff add the years after)."""

import datetime as dt

from django.db import migrations

FIXED = (
    (1, 1, "Nouvel An"),
    (1, 4, "Journée des martyrs de l'indépendance"),
    (1, 16, "Journée du héros national Laurent-Désiré Kabila"),
    (1, 17, "Journée du héros national Patrice Emery Lumumba"),
    (4, 6, "Journée du combat de Simon Kimbangu et de la conscience africaine"),
    (5, 1, "Fête du travail"),
    (5, 17, "Journée de la révolution et de la libération"),
    (6, 30, "Fête de l'indépendance"),
    (8, 1, "Fête des parents"),
    (12, 25, "Noël"),
)
YEARS = (2026, 2027)


def days():
    return [(dt.date(year, month, day), name) for year in YEARS for month, day, name in FIXED]


def seed(apps, schema_editor):
    Holiday = apps.get_model("dunning", "PublicHoliday")
    for day, name in days():
        Holiday.objects.get_or_create(day=day, defaults={"name": name})


def unseed(apps, schema_editor):
    apps.get_model("dunning", "PublicHoliday").objects.filter(
        day__in=[day for day, _name in days()]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("dunning", "0002_default_policies")]

    operations = [migrations.RunPython(seed, unseed)]
