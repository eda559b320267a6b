"""A step comes at least a day after the previous one: an invoice takes one step a day.

Steps saved with a gap of 0 days (the old default, never refused) get 1. The pass enforces
one step per invoice per day whatever a step says; this keeps the policies telling the truth.
"""

import django.core.validators
from django.db import migrations, models


def at_least_one_day(apps, schema_editor):
    Step = apps.get_model("dunning", "DunningStep")
    Step.objects.filter(min_days_after_previous__lt=1).update(min_days_after_previous=1)


class Migration(migrations.Migration):
    dependencies = [("dunning", "0004_schedule_dunning")]

    operations = [
        migrations.RunPython(at_least_one_day, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="dunningstep",
            name="min_days_after_previous",
            field=models.PositiveSmallIntegerField(
                default=1,
                help_text=(
                    "At least 1 day. A client who is late already gets the steps in order, "
                    "this far apart."
                ),
                validators=[
                    django.core.validators.MinValueValidator(
                        1, message="At least 1 day: an invoice takes one step a day at most."
                    ),
                    django.core.validators.MaxValueValidator(60),
                ],
                verbose_name="at least (days) after the previous step",
            ),
        ),
    ]
