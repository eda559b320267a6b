"""The daily pass at 09:00 in each of the DRC's two time zones, on the beat schedule staff
edit in the admin (an agency's zone follows its province)."""

import json

from django.db import migrations

ZONES = ("Africa/Kinshasa", "Africa/Lubumbashi")


def name(zone):
    return f"Dunning ({zone})"


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for zone in ZONES:
        nine, _created = CrontabSchedule.objects.get_or_create(
            minute="0",
            hour="9",
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=zone,
        )
        PeriodicTask.objects.get_or_create(
            name=name(zone),
            defaults={
                "task": "dunning.dunning_run_zone",
                "crontab": nine,
                "kwargs": json.dumps({"time_zone": zone}),
                "description": (
                    "Reminders, final notices, disconnections and reconnections of the "
                    f"agencies in {zone}, every day at 09:00 local time."
                ),
            },
        )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[name(zone) for zone in ZONES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0003_public_holidays"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
