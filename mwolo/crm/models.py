"""Clients, their service points (sites), and the connection requests they start from."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from mwolo.core.models import TimeStampedModel
from mwolo.core.permissions import AccessPath
from mwolo.core.phones import DrcMobileField, DrcPhoneField
from mwolo.core.storage import private_storage
from mwolo.core.validation import MaxUploadSize, collect_errors
from mwolo.geo.models import Address, GeoPoint

# RCCM numbers as the OHADA registries write them, e.g. CD/KNG/RCCM/14-B-01234.
rccm_validator = RegexValidator(
    r"^CD/[A-Z]{2,6}/RCCM/\d{2}-[A-Z]-\d{1,6}$",
    _("Write the RCCM number as on the register, e.g. CD/KNG/RCCM/14-B-01234."),
)


class PartyKind(models.TextChoices):
    PERSON = "person", _("Person")
    COMPANY = "company", _("Company or organisation")


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")


class SiteCategory(models.TextChoices):
    RESIDENTIAL = "residential", _("Residential")
    COMMERCIAL = "commercial", _("Commercial")
    INDUSTRIAL = "industrial", _("Industrial")
    PUBLIC = "public", _("Public service")


class Party(models.Model):
    """Who someone is and how to reach them: shared by clients and connection requests."""

    kind = models.CharField(_("kind"), max_length=10, choices=PartyKind.choices)
    first_name = models.CharField(_("first name"), max_length=80, blank=True)
    last_name = models.CharField(_("last name"), max_length=80, blank=True)
    middle_name = models.CharField(_("middle name (postnom)"), max_length=80, blank=True)
    company_name = models.CharField(_("company name"), max_length=160, blank=True)
    rccm = models.CharField(
        _("RCCM number"), max_length=40, blank=True, validators=[rccm_validator]
    )
    national_id = models.CharField(
        _("identity document number"),
        max_length=40,
        blank=True,
        help_text=_("Voter card, passport or national identity number."),
    )
    phone = DrcMobileField(
        _("mobile phone"), help_text=_("Used for SMS and mobile money, e.g. +243 81 234 5678.")
    )
    email = models.EmailField(_("email"), blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=5, choices=settings.LANGUAGES, default="fr"
    )

    class Meta:
        abstract = True

    @property
    def display_name(self) -> str:
        if self.kind == PartyKind.COMPANY:
            return self.company_name
        return " ".join(
            part for part in (self.first_name, self.last_name, self.middle_name) if part
        )

    def clean(self) -> None:
        collect_errors(super().clean, self._check_names)

    def _check_names(self) -> None:
        errors = {}
        if self.kind == PartyKind.PERSON:
            if not self.first_name.strip():
                errors["first_name"] = _("Enter the first name.")
            if not self.last_name.strip():
                errors["last_name"] = _("Enter the last name.")
        elif self.kind == PartyKind.COMPANY and not self.company_name.strip():
            errors["company_name"] = _("Enter the company name.")
        if errors:
            raise ValidationError(errors)


class Client(Party, Address, TimeStampedModel):
    access = AccessPath(agency="agency", client="pk")

    number = models.CharField(
        _("client number"),
        max_length=20,
        unique=True,
        blank=True,
        error_messages={"unique": _("A client with this number already exists.")},
        help_text=_("Given automatically when left empty."),
    )
    phone_alt = DrcPhoneField(_("other phone"), blank=True)
    preferred_channel = models.CharField(
        _("preferred channel"), max_length=10, choices=Channel.choices, default=Channel.SMS
    )
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        related_name="clients",
        verbose_name=_("agency"),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="client_profile",
        verbose_name=_("portal account"),
    )
    kyc_document = models.FileField(
        _("identity document (scan)"),
        upload_to="kyc/%Y/%m/",
        storage=private_storage,
        blank=True,
        validators=[
            FileExtensionValidator(["pdf", "jpg", "jpeg", "png"]),
            MaxUploadSize(megabytes=5),
        ],
        help_text=_("PDF, JPEG or PNG, 5 MB at most."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["last_name", "first_name"]),
            models.Index(fields=["company_name"]),
            models.Index(fields=["phone"]),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.number})"

    def clean(self) -> None:
        collect_errors(
            super().clean,
            self._check_channel,
            # A client is filed under an agency of the province they live in, as their
            # sites and connection requests are.
            lambda: validate_agency_serves_province(
                agency=self.agency if self.agency_id else None, province_id=self.province_id
            ),
        )

    def _check_channel(self) -> None:
        if self.preferred_channel == Channel.EMAIL and not self.email:
            raise ValidationError(
                {"email": _("Enter an email address, or choose SMS as the preferred channel.")}
            )


def validate_agency_serves_province(
    *, agency: "models.Model | None", province_id: int | None
) -> None:
    if agency is None or province_id is None:
        return
    if agency.province_id != province_id:  # type: ignore[attr-defined]
        raise ValidationError(
            {
                "agency": _("The agency %(agency)s does not serve this province.")
                % {"agency": agency}
            }
        )


class Site(Address, GeoPoint, TimeStampedModel):
    """A service point: where a meter is installed and electricity is delivered."""

    access = AccessPath(agency="agency", client="client")

    reference = models.CharField(
        _("site reference"),
        max_length=20,
        unique=True,
        blank=True,
        error_messages={"unique": _("A site with this reference already exists.")},
        help_text=_("Given automatically when left empty."),
    )
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="sites", verbose_name=_("client")
    )
    agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, related_name="sites", verbose_name=_("agency")
    )
    label = models.CharField(
        _("label"), max_length=120, blank=True, help_text=_("e.g. Home, Shop on avenue Kasa-Vubu.")
    )
    category = models.CharField(_("category"), max_length=12, choices=SiteCategory.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reference} – {self.label or self.address_line}"

    def clean(self) -> None:
        collect_errors(
            super().clean,
            lambda: validate_agency_serves_province(
                agency=self.agency if self.agency_id else None, province_id=self.province_id
            ),
        )


class ConnectionRequest(Party, Address, GeoPoint, TimeStampedModel):
    """A visitor's request for a new connection; staff approve (→ client + site) or reject."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    access = AccessPath(agency="agency")
    # What an applicant fills in (web form and API alike); the rest is the staff's.
    APPLICANT_FIELDS = (
        "kind",
        "first_name",
        "last_name",
        "middle_name",
        "company_name",
        "rccm",
        "national_id",
        "phone",
        "email",
        "preferred_language",
        "category",
        "province",
        "territory",
        "commune",
        "address_line",
        "latitude",
        "longitude",
        "agency",
        "message",
    )

    reference = models.CharField(_("reference"), max_length=20, unique=True, editable=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    category = models.CharField(_("site category"), max_length=12, choices=SiteCategory.choices)
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        related_name="connection_requests",
        verbose_name=_("agency"),
    )
    message = models.TextField(_("message"), blank=True, max_length=2000)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    rejection_reason = models.TextField(_("rejection reason"), blank=True)
    client = models.ForeignKey(
        Client,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="connection_requests",
        verbose_name=_("client"),
    )
    site = models.OneToOneField(
        Site,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="connection_request",
        verbose_name=_("site"),
    )

    class Meta:
        verbose_name = _("connection request")
        verbose_name_plural = _("connection requests")
        ordering = ["-created_at"]
        permissions = [("review_connectionrequest", _("Can approve or reject connection requests"))]

    def __str__(self) -> str:
        return f"{self.reference} – {self.display_name}"

    def clean(self) -> None:
        collect_errors(
            super().clean,
            lambda: validate_agency_serves_province(
                agency=self.agency if self.agency_id else None, province_id=self.province_id
            ),
        )
