from django.db import models
from django.utils.translation import gettext_lazy as _


class Sequence(models.Model):
    """A named counter for gap-free document numbers (see ``core.numbering``)."""

    key = models.CharField(_("key"), max_length=64, unique=True)
    last_value = models.PositiveBigIntegerField(_("last value"), default=0)

    class Meta:
        verbose_name = _("numbering sequence")
        verbose_name_plural = _("numbering sequences")

    def __str__(self) -> str:
        return f"{self.key} = {self.last_value}"


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
