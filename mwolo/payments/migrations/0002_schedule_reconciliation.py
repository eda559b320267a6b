"""Mobile-money reconciliation every five minutes, on the beat schedule staff edit."""

from django.db import migrations


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_five_minutes, _created = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Reconcile mobile money",
        defaults={
            "task": "payments.intents_reconcile",
            "interval": every_five_minutes,
            "description": (
                "Asks the operators about every mobile-money request still pending, records "
                "what was paid and expires what timed out."
            ),
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="Reconcile mobile money"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
