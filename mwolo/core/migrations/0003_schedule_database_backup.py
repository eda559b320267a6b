"""The nightly backup of the database, in the beat schedule that staff edit in the admin."""

from django.db import migrations

NAME = "Back up the database"


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    two, _created = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="2",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="Africa/Kinshasa",
    )
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "core.database_backup",
            "crontab": two,
            "description": (
                "Dumps the database into MWOLO_BACKUP_DIR every night at 02:00 (Kinshasa) "
                "and deletes the dumps older than MWOLO_BACKUP_KEEP_DAYS days."
            ),
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_schedule_session_purge"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
