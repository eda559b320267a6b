"""Nightly purge of expired sessions, in the beat schedule that staff edit in the admin."""

from django.db import migrations


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _created = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="Africa/Kinshasa",
    )
    PeriodicTask.objects.get_or_create(
        name="Purge expired sessions",
        defaults={
            "task": "core.sessions_purge_expired",
            "crontab": nightly,
            "description": "Deletes expired login sessions every night at 02:30 (Kinshasa).",
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="Purge expired sessions"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
