"""Meter reconciliation every five minutes, on the beat schedule staff edit in the admin."""

from django.db import migrations


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_five_minutes, _created = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Reconcile meters",
        defaults={
            "task": "metering.meters_reconcile",
            "interval": every_five_minutes,
            "description": (
                "Re-sends a command wherever a meter's relay differs from the wanted state, "
                "raises alarms on repeated disagreement, marks silent meters offline."
            ),
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="Reconcile meters"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
