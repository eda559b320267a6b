"""A final notice keeps the day it named for the cut: nobody is cut before it, though the
policy changes since. (Notices sent before have none: their day is in their message.)"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dunning", "0006_disconnect_commands_count")]

    operations = [
        migrations.AddField(
            model_name="reminder",
            name="cut_announced_on",
            field=models.DateField(
                blank=True,
                help_text="A final notice: the day it named. Nobody is cut before it.",
                null=True,
                verbose_name="disconnection announced for",
            ),
        ),
    ]
