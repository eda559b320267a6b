from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from mwolo.core.permissions import AccessPath
from mwolo.core.phones import DrcPhoneField
from mwolo.geo.models import Address, GeoPoint


class Agency(Address, GeoPoint):
    """A branch office: its staff, its clients' sites, its till and its time zone."""

    access = AccessPath(agency="pk")

    code = models.CharField(
        _("code"),
        max_length=12,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Z0-9-]{2,12}$",
                _("Use 2 to 12 capital letters, digits or dashes (e.g. KIN-GOM)."),
            )
        ],
    )
    name = models.CharField(_("name"), max_length=120)
    phone = DrcPhoneField(_("phone"))
    email = models.EmailField(_("email"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("agency")
        verbose_name_plural = _("agencies")
        ordering = ["name"]
        permissions = [("view_all_agencies", _("Can see the records of every agency"))]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def time_zone(self) -> str:
        """Local time of the agency, from its province (west: Kinshasa, east: Lubumbashi)."""
        return self.province.time_zone


class OpeningHours(models.Model):
    """One opening slot of an agency; a day may have two (morning and afternoon)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    access = AccessPath(agency="agency")

    agency = models.ForeignKey(
        Agency, on_delete=models.CASCADE, related_name="opening_hours", verbose_name=_("agency")
    )
    weekday = models.PositiveSmallIntegerField(_("day"), choices=Weekday.choices)
    opens_at = models.TimeField(_("opens at"))
    closes_at = models.TimeField(_("closes at"))

    class Meta:
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        ordering = ["agency", "weekday", "opens_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "weekday", "opens_at"], name="agencies_openinghours_unique_slot"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    def clean(self) -> None:
        super().clean()
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": _("Closing time must be after opening time.")})
