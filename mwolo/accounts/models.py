from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.utils.translation import gettext_lazy as _

from mwolo.core.permissions import AccessPath
from mwolo.core.phones import DrcMobileField


class UserManager(DjangoUserManager["User"]):
    def get_queryset(self) -> models.QuerySet["User"]:
        # The agency's province gives the time zone on every request (a client's own agency).
        return (
            super()
            .get_queryset()
            .select_related("agency__province", "client_profile__agency__province")
        )


class User(AbstractUser):
    """Anyone who logs in: an employee (with a home agency) or a client (with a client file).

    What a user may do comes from their roles (groups); which agencies' records they see
    comes from ``agency`` and ``additional_agencies`` (see ``mwolo.core.permissions``).
    """

    access = AccessPath(agency="agency")

    phone = DrcMobileField(_("mobile phone"), blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=5, choices=settings.LANGUAGES, default="fr"
    )
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        verbose_name=_("home agency"),
        help_text=_("Every employee belongs to one agency. Empty for clients."),
    )
    additional_agencies = models.ManyToManyField(
        "agencies.Agency",
        blank=True,
        related_name="+",
        verbose_name=_("additional agencies"),
        help_text=_("Other agencies whose records this employee may see and handle."),
    )

    objects = UserManager()  # type: ignore[misc]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    @property
    def display_time_zone(self) -> str | None:
        """The time zone of the employee's home agency, or of the client's agency."""
        if self.agency_id:
            return self.agency.time_zone  # type: ignore[union-attr]
        # A user without a client file raises RelatedObjectDoesNotExist, an AttributeError.
        client = getattr(self, "client_profile", None)
        return client.agency.time_zone if client is not None else None
