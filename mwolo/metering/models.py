"""Meters, where they are installed, what they read, what we ask them to do.

The platform keeps, per meter, the relay state it *wants* (from billing, dunning, credit
and staff decisions) and the state the meter last *reported*; commands close the gap and
reconciliation notices when they stay apart (see ``services``).
"""

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mwolo.core.models import TimeStampedModel
from mwolo.core.permissions import AccessPath

SERIAL_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class EnergyField(models.DecimalField):
    """Energy in kWh to the watt-hour, as meters count it (Decimal, never float)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 3)
        super().__init__(*args, **kwargs)


class Relay(models.TextChoices):
    ON = "on", _("On (supplied)")
    OFF = "off", _("Off (cut)")


class PaymentMode(models.TextChoices):
    POSTPAID = "postpaid", _("Postpaid")
    PREPAID = "prepaid", _("Prepaid")


class Meter(TimeStampedModel):
    access = AccessPath(agency="agency", client="site__client")

    class RelayReason(models.TextChoices):
        NORMAL = "normal", _("Normal supply")
        DUNNING = "dunning", _("Unpaid bills")
        STAFF = "staff", _("Staff decision")

    serial = models.CharField(
        _("serial number"),
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(SERIAL_PATTERN, _("Letters, digits, - and _ only (64 at most)."))
        ],
        error_messages={"unique": _("A meter with this serial number already exists.")},
    )
    vendor = models.CharField(_("vendor"), max_length=80)
    hardware_model = models.CharField(_("model"), max_length=80)
    payment_mode = models.CharField(
        _("payment mode"), max_length=10, choices=PaymentMode.choices, default=PaymentMode.POSTPAID
    )
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        related_name="meters",
        verbose_name=_("agency"),
        help_text=_("The agency holding the meter: in stock, or serving its site."),
    )
    site = models.ForeignKey(
        "crm.Site",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="meters",
        verbose_name=_("installed at"),
        editable=False,
    )
    register_capacity_kwh = EnergyField(
        _("register capacity (kWh)"),
        default=Decimal("1000000"),
        validators=[MinValueValidator(Decimal("1"))],
        help_text=_("The register shows zero again when it reaches this value (e.g. 1000000)."),
    )
    firmware = models.CharField(_("firmware"), max_length=40, blank=True, editable=False)

    relay_wanted = models.CharField(
        _("relay wanted"), max_length=3, choices=Relay.choices, default=Relay.ON, editable=False
    )
    relay_wanted_reason = models.CharField(
        _("why"),
        max_length=10,
        choices=RelayReason.choices,
        default=RelayReason.NORMAL,
        editable=False,
    )
    relay_wanted_at = models.DateTimeField(_("wanted since"), null=True, editable=False)
    # A switch-off for unpaid bills happens only inside the day's window that dunning's
    # policy allows (services.meters_relay_request): its end, past which nothing sends it.
    relay_deadline = models.DateTimeField(
        _("switched off only until"),
        null=True,
        editable=False,
        help_text=_("Empty: at any time."),
    )
    relay_reported = models.CharField(
        _("relay reported"), max_length=3, choices=Relay.choices, blank=True, editable=False
    )
    relay_reported_at = models.DateTimeField(_("reported at"), null=True, editable=False)
    online = models.BooleanField(_("online"), default=False, editable=False)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, editable=False)
    # The newest valid reading, kept by the ingest to check the next ones in bulk.
    last_energy_kwh = EnergyField(_("last register (kWh)"), null=True, editable=False)
    last_reading_at = models.DateTimeField(_("last reading"), null=True, editable=False)
    credit_kwh = EnergyField(_("credit reported (kWh)"), null=True, editable=False)
    # Prepaid: the OpenPAYGO secret (encrypted) and how many tokens were generated.
    token_secret = models.TextField(_("token secret (encrypted)"), blank=True, editable=False)
    # OpenPAYGO: the count of the last token; a new device starts at 1.
    token_count = models.PositiveIntegerField(_("token count"), default=1, editable=False)
    disagreements = models.PositiveSmallIntegerField(
        _("reconciliations in disagreement"), default=0, editable=False
    )

    class Meta:
        verbose_name = _("meter")
        verbose_name_plural = _("meters")
        ordering = ["serial"]
        permissions = [
            ("switch_meter", _("Can connect or disconnect a meter remotely")),
            ("issue_token", _("Can issue prepaid tokens")),
        ]

    def __str__(self) -> str:
        return self.serial


class MeterInstallation(models.Model):
    """A meter's time at a site: its history of installs, replacements and removals."""

    access = AccessPath(agency="site__agency", client="site__client")

    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="installations", verbose_name=_("meter")
    )
    site = models.ForeignKey(
        "crm.Site", on_delete=models.PROTECT, related_name="installations", verbose_name=_("site")
    )
    installed_at = models.DateTimeField(_("installed at"))
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("installed by"),
    )
    installed_register_kwh = EnergyField(
        _("register at installation"),
    )
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("removed by"),
    )
    removed_register_kwh = EnergyField(_("register at removal"), null=True, blank=True)
    removal_reason = models.CharField(_("reason for removal"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("installation")
        verbose_name_plural = _("installations")
        ordering = ["-installed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["meter"],
                condition=Q(removed_at__isnull=True),
                name="metering_one_open_installation_per_meter",
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter} @ {self.site}"


class MeterReading(models.Model):
    """The cumulative register of a meter at a time: one per meter and time."""

    access = AccessPath(agency="meter__agency", client="meter__site__client")

    # Only what a meter's register really showed: an estimate lives on the invoice it
    # priced, never here, where it would become the baseline later readings are checked
    # against (docs/billing.md, "Estimates").
    class Source(models.TextChoices):
        TELEMETRY = "telemetry", _("Telemetry")
        TECHNICIAN = "technician", _("Technician")
        IMPORT = "import", _("Import")

    class Flag(models.TextChoices):
        NONE = "", _("None")
        BACKWARDS = "backwards", _("Lower than the previous reading")
        ROLLOVER = "rollover", _("Register rolled over")
        SPIKE = "spike", _("Implausible consumption")

    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="readings", verbose_name=_("meter")
    )
    taken_at = models.DateTimeField(_("taken at"))
    energy_kwh = EnergyField(
        _("register (kWh)"),
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    flag = models.CharField(_("flag"), max_length=10, choices=Flag.choices, blank=True)
    reviewed = models.BooleanField(
        _("reviewed"), default=False, help_text=_("A flagged reading checked by staff.")
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("reading")
        verbose_name_plural = _("readings")
        ordering = ["meter", "-taken_at"]
        constraints = [
            models.UniqueConstraint(fields=["meter", "taken_at"], name="metering_reading_unique")
        ]
        indexes = [
            models.Index(fields=["flag"], condition=~Q(flag=""), name="metering_reading_flagged")
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.taken_at:%Y-%m-%d %H:%M} {self.energy_kwh} kWh"


class MeterCommand(models.Model):
    """What we asked a meter to do, and what came of it (every command is kept)."""

    access = AccessPath(agency="meter__agency", client="meter__site__client")

    class Action(models.TextChoices):
        CONNECT = "connect", _("Connect")
        DISCONNECT = "disconnect", _("Disconnect")
        READ = "read", _("Read")
        TOKEN = "token", _("Apply a token")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        SUPERSEDED = "superseded", _("Superseded")

    class Source(models.TextChoices):
        STAFF = "staff", _("Staff")
        DUNNING = "dunning", _("Dunning")
        PAYMENT = "payment", _("Payment")
        RECONCILIATION = "reconciliation", _("Reconciliation")
        TOKEN = "token", _("Prepaid token")

    IN_FLIGHT = (Status.QUEUED, Status.SENT)
    RELAY_ACTIONS = (Action.CONNECT, Action.DISCONNECT)

    uuid = models.UUIDField(_("command id"), default=uuid.uuid4, unique=True, editable=False)
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="commands", verbose_name=_("meter")
    )
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    token = models.CharField(_("token"), max_length=20, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    source = models.CharField(_("source"), max_length=14, choices=Source.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    issued_at = models.DateTimeField(_("issued at"))
    expires_at = models.DateTimeField(_("expires at"))
    # The command's life, kept on its row (the head-end moves thousands of commands a
    # second with set-based updates, which the audit log's signals never see):
    # issued_at -> first_sent_at ... last_sent_at (attempts) -> acknowledged_at (the
    # meter's answer) -> closed_at (acknowledged, failed, expired, or superseded: the
    # command that replaced it points at it).
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    first_sent_at = models.DateTimeField(_("first sent at"), null=True, blank=True)
    last_sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), db_index=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    supersedes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        verbose_name=_("supersedes"),
    )
    relay_after = models.CharField(
        _("relay after"), max_length=3, choices=Relay.choices, blank=True
    )
    error = models.CharField(_("error"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("meter command")
        verbose_name_plural = _("meter commands")
        ordering = ["-issued_at"]
        constraints = [
            # At most one relay command on its way to a meter: a new decision supersedes it.
            models.UniqueConstraint(
                fields=["meter"],
                condition=Q(status__in=["queued", "sent"], action__in=["connect", "disconnect"]),
                name="metering_one_relay_command_in_flight",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.meter_id} ({self.get_status_display()})"


class MeterAlarm(models.Model):
    """Something about a meter that needs a person: open until the condition clears."""

    access = AccessPath(agency="meter__agency")

    class Kind(models.TextChoices):
        OFFLINE = "offline", _("Offline")
        DISAGREEMENT = "disagreement", _("Relay keeps disagreeing")
        TAMPER = "tamper", _("Tamper detected")
        COMMAND_FAILED = "command_failed", _("Command failed")

    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="alarms", verbose_name=_("meter")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    opened_at = models.DateTimeField(_("opened at"))
    last_seen_at = models.DateTimeField(_("last seen"))
    occurrences = models.PositiveIntegerField(_("occurrences"), default=1)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    details = models.CharField(_("details"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("meter alarm")
        verbose_name_plural = _("meter alarms")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "kind"],
                condition=Q(closed_at__isnull=True),
                name="metering_one_open_alarm_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} – {self.meter_id}"


class PrepaidToken(models.Model):
    """An OpenPAYGO token sold for a prepaid meter (the token itself is the credit)."""

    access = AccessPath(agency="meter__agency", client="meter__site__client")

    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="tokens", verbose_name=_("meter")
    )
    count = models.PositiveIntegerField(_("token count"))
    energy_kwh = models.PositiveIntegerField(_("credit (kWh)"))
    token = models.CharField(_("token"), max_length=20)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # A sale: what the client paid, in the tariff's currency, and the tariff that priced it.
    amount = models.DecimalField(
        _("amount charged"), max_digits=16, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    tariff = models.ForeignKey(
        "billing.Tariff",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tariff"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    command = models.OneToOneField(
        MeterCommand,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="prepaid_token",
        verbose_name=_("sent by command"),
    )

    class Meta:
        verbose_name = _("prepaid token")
        verbose_name_plural = _("prepaid tokens")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["meter", "count"], name="metering_token_unique_count")
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} #{self.count} {self.energy_kwh} kWh"


class HeadendRejection(models.Model):
    """Meter messages the head-end refused (malformed) or that changed nothing or came late
    (unknown serial or command, duplicate, late), counted per day and reason; the log has
    the details."""

    day = models.DateField(_("day"))
    reason = models.CharField(_("reason"), max_length=40)
    count = models.PositiveIntegerField(_("count"), default=0)
    last_topic = models.CharField(_("last topic"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("refused meter message")
        verbose_name_plural = _("refused meter messages")
        ordering = ["-day", "reason"]
        constraints = [
            models.UniqueConstraint(fields=["day", "reason"], name="metering_rejection_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.reason}: {self.count}"
