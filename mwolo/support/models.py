from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mwolo.core.models import TimeStampedModel
from mwolo.core.permissions import AccessPath
from mwolo.metering.models import EnergyField


class WorkOrder(TimeStampedModel):
    """A technician's job at a site: install, replace or remove a meter, or read it by hand.

    Planned by the agency, done on site; completing it runs the metering service that
    changes the meter, with the register the technician read.
    """

    access = AccessPath(agency="agency", client="site__client")

    class Kind(models.TextChoices):
        INSTALL = "install", _("Install a meter")
        REPLACE = "replace", _("Replace a meter")
        REMOVE = "remove", _("Remove a meter")
        READ = "read", _("Read a meter")

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    number = models.CharField(_("number"), max_length=20, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PLANNED, editable=False
    )
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        related_name="work_orders",
        verbose_name=_("agency"),
        editable=False,
    )
    site = models.ForeignKey(
        "crm.Site", on_delete=models.PROTECT, related_name="work_orders", verbose_name=_("site")
    )
    meter = models.ForeignKey(
        "metering.Meter",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="work_orders",
        verbose_name=_("meter"),
        help_text=_(
            "Install: the meter from stock to install (may be chosen on site). Otherwise: "
            "the meter at the site."
        ),
    )
    new_meter = models.ForeignKey(
        "metering.Meter",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replacing_work_orders",
        verbose_name=_("new meter"),
        help_text=_("Replace: the meter from stock that takes the old one's place."),
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="work_orders",
        verbose_name=_("technician"),
    )
    scheduled_for = models.DateField(_("scheduled for"), null=True, blank=True)
    instructions = models.TextField(_("instructions"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("created by"),
        editable=False,
    )

    completed_at = models.DateTimeField(_("done at"), null=True, editable=False)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("done by"),
        editable=False,
    )
    register_kwh = EnergyField(_("register read (kWh)"), null=True, editable=False)
    new_register_kwh = EnergyField(_("new meter's register (kWh)"), null=True, editable=False)
    report = models.TextField(_("technician's report"), blank=True, editable=False)
    cancel_reason = models.CharField(
        _("reason for cancelling"), max_length=200, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("work order")
        verbose_name_plural = _("work orders")
        ordering = ["-created_at"]
        permissions = [("complete_workorder", _("Can complete work orders"))]
        indexes = [models.Index(fields=["agency", "status", "scheduled_for"])]

    def __str__(self) -> str:
        return f"{self.number} – {self.get_kind_display()}"
