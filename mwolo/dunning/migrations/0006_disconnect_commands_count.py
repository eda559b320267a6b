"""How many disconnect commands each meter of a disconnection was sent (one a day at most,
while the meter is not off): the rows made before count their command."""

from django.db import migrations, models


def counted(apps, schema_editor):
    DisconnectionMeter = apps.get_model("dunning", "DisconnectionMeter")
    DisconnectionMeter.objects.filter(cut_command__isnull=False).update(cut_commands=1)


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0005_step_gap_at_least_one_day"),
        ("metering", "0006_relay_deadline"),
    ]

    operations = [
        migrations.AddField(
            model_name="disconnectionmeter",
            name="cut_commands",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text=(
                    "More than one: the meter was not off at the end of the day's window "
                    "(offline, or refused it) and was sent another on a later allowed day."
                ),
                verbose_name="disconnect commands",
            ),
        ),
        migrations.RunPython(counted, migrations.RunPython.noop),
    ]
