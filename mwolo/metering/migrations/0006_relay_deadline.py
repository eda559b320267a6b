"""A switch-off for dunning happens only before its deadline, the end of the day's window.

Meters wanted off for dunning before deadlines existed get the moment of that decision:
past, so reconciliation no longer switches them off at any hour; the next allowed day's
dunning pass sends a new command to those not off yet.
"""

from django.db import migrations, models
from django.db.models import F


def decided_before(apps, schema_editor):
    Meter = apps.get_model("metering", "Meter")
    Meter.objects.filter(relay_wanted="off", relay_wanted_reason="dunning").update(
        relay_deadline=F("relay_wanted_at")
    )


class Migration(migrations.Migration):
    dependencies = [("metering", "0005_reading_sources_measured_only")]

    operations = [
        migrations.AddField(
            model_name="meter",
            name="relay_deadline",
            field=models.DateTimeField(
                editable=False,
                help_text="Empty: at any time.",
                null=True,
                verbose_name="switched off only until",
            ),
        ),
        migrations.RunPython(decided_before, migrations.RunPython.noop),
    ]
