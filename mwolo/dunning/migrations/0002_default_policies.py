"""The default ladder for every agency, and a gentler one for public services."""

from django.db import migrations

DEFAULT = "Politique par défaut"
PUBLIC = "Services publics (sans coupure)"


def seed(apps, schema_editor):
    Policy = apps.get_model("dunning", "DunningPolicy")
    Step = apps.get_model("dunning", "DunningStep")
    default, created = Policy.objects.get_or_create(
        agency=None, site_category="", defaults={"name": DEFAULT}
    )
    if created:
        # Reminders on D+3 and D+7, the final notice on D+12, the cut on D+14: a client
        # found late walks them in order, two days apart at least.
        for position, days, action, gap in (
            (1, 3, "remind", 0),
            (2, 7, "remind", 2),
            (3, 12, "final_notice", 2),
            (4, 14, "disconnect", 2),
        ):
            Step.objects.create(
                policy=default,
                position=position,
                days_after_due=days,
                action=action,
                min_days_after_previous=gap,
            )
    public, created = Policy.objects.get_or_create(
        agency=None,
        site_category="public",
        defaults={"name": PUBLIC},
    )
    if created:
        # Hospitals, public lighting, water pumping: reminded, never cut.
        for position, days, gap in ((1, 3, 0), (2, 7, 2), (3, 14, 2)):
            Step.objects.create(
                policy=public,
                position=position,
                days_after_due=days,
                action="remind",
                min_days_after_previous=gap,
            )


def unseed(apps, schema_editor):
    Policy = apps.get_model("dunning", "DunningPolicy")
    Policy.objects.filter(agency=None, name__in=[DEFAULT, PUBLIC]).delete()


class Migration(migrations.Migration):
    dependencies = [("dunning", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
