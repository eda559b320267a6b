"""The invoice backlog every fifteen minutes, on the beat schedule staff edit in the admin."""

from django.db import migrations

NAME = "Deliver invoices left undelivered"


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_fifteen_minutes, _created = IntervalSchedule.objects.get_or_create(
        every=15, period="minutes"
    )
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "billing.invoices_backlog",
            "interval": every_fifteen_minutes,
            "description": (
                "Renders the PDF and sends the 'invoice issued' notice of open invoices a "
                "crash or a lost task left without them (issued in the last week)."
            ),
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_payment_entries"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
