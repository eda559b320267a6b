"""Chasing overdue invoices: policies and their steps, what was sent, promises, exemptions,
and the disconnections dunning decided (with the meter commands that carried them out).

Written by ``services`` only (the admin edits policies, steps and public holidays).
"""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from mwolo.billing.models import Currency, MoneyField
from mwolo.core.models import TimeStampedModel
from mwolo.core.permissions import AccessPath
from mwolo.crm.models import SiteCategory


class Action(models.TextChoices):
    REMIND = "remind", _("Reminder")
    FINAL_NOTICE = "final_notice", _("Final notice")
    DISCONNECT = "disconnect", _("Disconnection")


# The message each action sends (a key of ``mwolo.notifications.events.EVENTS``).
EVENT_OF_ACTION = {
    Action.REMIND: "reminder",
    Action.FINAL_NOTICE: "final_notice",
    Action.DISCONNECT: "disconnection",
}


class StepChannel(models.TextChoices):
    PREFERRED = "preferred", _("The client's preferred channel")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email (SMS when the client has no address)")
    BOTH = "both", _("Email and SMS")


# What ``notification_send(channels=…)`` gets for each choice (None: the client's own).
CHANNELS_OF_STEP: dict[str, list[str] | None] = {
    StepChannel.PREFERRED: None,
    StepChannel.SMS: ["sms"],
    StepChannel.EMAIL: ["email"],
    StepChannel.BOTH: ["email", "sms"],
}


class DunningPolicy(TimeStampedModel):
    """How an agency (or every agency) chases the invoices of a site category (or all).

    The most specific active policy wins: agency and category, then agency, then
    category, then the default (no agency, no category).
    """

    access = AccessPath(agency="agency")

    name = models.CharField(_("name"), max_length=100)
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("agency"),
        help_text=_("Empty: every agency."),
    )
    site_category = models.CharField(
        _("site category"),
        max_length=12,
        choices=SiteCategory.choices,
        blank=True,
        help_text=_("Empty: every category."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    minimum_cdf = MoneyField(
        _("minimum amount (CDF)"),
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("An invoice whose amount left to pay is not above this is not chased."),
    )
    minimum_usd = MoneyField(
        _("minimum amount (USD)"),
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    quiet_weekends = models.BooleanField(
        _("no disconnection on Saturdays and Sundays"), default=True
    )
    quiet_public_holidays = models.BooleanField(
        _("no disconnection on public holidays"), default=True
    )
    disconnection_cutoff = models.TimeField(
        _("no disconnection from"),
        null=True,
        blank=True,
        default=dt.time(15, 0),
        help_text=_(
            "Local time after which nobody is cut that day, so that a client who pays is "
            "supplied again the same day. Empty: any time."
        ),
    )
    promise_max_days = models.PositiveSmallIntegerField(
        _("longest promise to pay (days)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(180)],
    )

    class Meta:
        verbose_name = _("dunning policy")
        verbose_name_plural = _("dunning policies")
        ordering = [F("agency__code").asc(nulls_first=True), "site_category"]
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "site_category"], name="dunning_policy_unique"
            ),
            models.UniqueConstraint(
                fields=["site_category"],
                condition=Q(agency__isnull=True),
                name="dunning_policy_unique_all_agencies",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def minimum(self, currency: str) -> Decimal:
        return self.minimum_usd if currency == Currency.USD else self.minimum_cdf


class DunningStep(models.Model):
    """One rung of a policy's ladder: what happens how many days after the due date."""

    access = AccessPath(agency="policy__agency")

    policy = models.ForeignKey(
        DunningPolicy, on_delete=models.CASCADE, related_name="steps", verbose_name=_("policy")
    )
    position = models.PositiveSmallIntegerField(_("position"))
    days_after_due = models.PositiveSmallIntegerField(
        _("days after the due date"), validators=[MaxValueValidator(365)]
    )
    action = models.CharField(_("action"), max_length=12, choices=Action.choices)
    channel = models.CharField(
        _("channel"), max_length=10, choices=StepChannel.choices, default=StepChannel.PREFERRED
    )
    min_days_after_previous = models.PositiveSmallIntegerField(
        _("at least (days) after the previous step"),
        default=1,
        validators=[
            MinValueValidator(
                1, message=_("At least 1 day: an invoice takes one step a day at most.")
            ),
            MaxValueValidator(60),
        ],
        help_text=_(
            "At least 1 day. A client who is late already gets the steps in order, this far apart."
        ),
    )

    class Meta:
        verbose_name = _("dunning step")
        verbose_name_plural = _("dunning steps")
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="dunning_step_unique")
        ]

    def __str__(self) -> str:
        return _("D+%(days)d: %(action)s") % {
            "days": self.days_after_due,
            "action": self.get_action_display(),
        }

    @property
    def event(self) -> str:
        return EVENT_OF_ACTION[Action(self.action)]


class PublicHoliday(models.Model):
    """A day nobody is disconnected (when the policy says so)."""

    day = models.DateField(_("day"), unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("public holiday")
        verbose_name_plural = _("public holidays")
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day:%d/%m/%Y} – {self.name}"


class DunningExemption(TimeStampedModel):
    """A client, or one of their sites, that dunning treats gently.

    - *no disconnection*: reminders still go, but the ladder stops before the final notice
      (hospitals, public lighting, water pumping, or a staff decision);
    - *hold*: the whole ladder waits until the end date (a disputed bill, a staff override).

    Granting either reconnects what dunning had cut.
    """

    access = AccessPath(agency="client__agency")

    class Effect(models.TextChoices):
        NO_DISCONNECTION = "no_disconnection", _("No disconnection (reminders still go)")
        HOLD = "hold", _("Ladder held (nothing is sent)")

    client = models.ForeignKey(
        "crm.Client",
        on_delete=models.PROTECT,
        related_name="dunning_exemptions",
        verbose_name=_("client"),
    )
    site = models.ForeignKey(
        "crm.Site",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dunning_exemptions",
        verbose_name=_("site"),
        help_text=_("Empty: every site of the client."),
    )
    effect = models.CharField(_("effect"), max_length=16, choices=Effect.choices)
    reason = models.CharField(_("reason"), max_length=300)
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(
        _("until"), null=True, blank=True, help_text=_("Last day; empty: until ended.")
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("granted by"),
    )

    class Meta:
        verbose_name = _("dunning exemption")
        verbose_name_plural = _("dunning exemptions")
        ordering = ["-starts_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=F("starts_on")),
                name="dunning_exemption_dates_in_order",
            ),
            models.CheckConstraint(
                condition=~Q(effect="hold") | Q(ends_on__isnull=False),
                name="dunning_hold_has_an_end",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_effect_display()} – {self.site or self.client}"


class PromiseToPay(TimeStampedModel):
    """A client's word to pay by a date: the ladder waits for them until then.

    Covers one invoice, or all the client's invoices when none is named. After the date it
    is *kept* when the client paid the amount since (or owes nothing overdue), otherwise
    *broken*: the ladder resumes and what the promise reconnected is cut again.
    """

    access = AccessPath(agency="client__agency", client="client")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        KEPT = "kept", _("Kept")
        BROKEN = "broken", _("Broken")

    client = models.ForeignKey(
        "crm.Client",
        on_delete=models.PROTECT,
        related_name="promises_to_pay",
        verbose_name=_("client"),
    )
    invoice = models.ForeignKey(
        "billing.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invoice"),
        help_text=_("Empty: every invoice of the client."),
    )
    promised_on = models.DateField(_("pays by"))
    amount = MoneyField(_("amount promised"), validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    reason = models.CharField(_("reason"), max_length=300)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    settled_on = models.DateField(_("settled on"), null=True, blank=True)

    class Meta:
        verbose_name = _("promise to pay")
        verbose_name_plural = _("promises to pay")
        ordering = ["-promised_on", "-pk"]
        indexes = [models.Index(fields=["status", "promised_on"])]

    def __str__(self) -> str:
        return _("%(client)s: %(amount)s %(currency)s by %(day)s") % {
            "client": self.client,
            "amount": self.amount,
            "currency": self.currency,
            "day": f"{self.promised_on:%d/%m/%Y}",
        }


class Disconnection(models.Model):
    """One episode of a site cut by dunning, from the decision to the reconnection.

    The meters switched and their commands are in ``DisconnectionMeter``; the head-end
    updates the commands (sent, acknowledged, failed), so their state is read from there.
    """

    access = AccessPath(agency="agency", client="client")

    class ClosedReason(models.TextChoices):
        CLEARED = "cleared", _("Overdue balance cleared")
        PROMISE = "promise", _("Promise to pay")
        EXEMPTION = "exemption", _("Exemption granted")
        OVERRIDE = "override", _("Staff decision")

    site = models.ForeignKey(
        "crm.Site", on_delete=models.PROTECT, related_name="disconnections", verbose_name=_("site")
    )
    client = models.ForeignKey(
        "crm.Client", on_delete=models.PROTECT, related_name="+", verbose_name=_("client")
    )
    agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, related_name="+", verbose_name=_("agency")
    )
    invoice = models.ForeignKey(
        "billing.Invoice",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("invoice"),
        help_text=_("The invoice whose ladder reached the disconnection."),
    )
    opened_on = models.DateField(_("day"))
    opened_at = models.DateTimeField(_("decided at"))
    amount_due = MoneyField(_("overdue amount"))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    resumes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="resumed_by",
        verbose_name=_("cut again after"),
        help_text=_("The episode a broken promise to pay had ended."),
    )
    closed_at = models.DateTimeField(_("reconnected at"), null=True, blank=True)
    closed_reason = models.CharField(
        _("reconnected because"), max_length=10, choices=ClosedReason.choices, blank=True
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reconnected by"),
    )
    close_note = models.CharField(_("reason given"), max_length=300, blank=True)
    promise = models.ForeignKey(
        PromiseToPay,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reconnections",
        verbose_name=_("promise to pay"),
    )

    class Meta:
        verbose_name = _("disconnection")
        verbose_name_plural = _("disconnections")
        ordering = ["-opened_at", "-pk"]
        constraints = [
            # One episode at a time per site: a second overdue invoice joins the open one.
            models.UniqueConstraint(
                fields=["site"],
                condition=Q(closed_at__isnull=True),
                name="dunning_one_open_disconnection_per_site",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True, closed_reason="")
                | (Q(closed_at__isnull=False) & ~Q(closed_reason="")),
                name="dunning_disconnection_closed_with_reason",
            ),
        ]
        indexes = [models.Index(fields=["client", "closed_at"])]
        permissions = [
            ("override", _("Can reconnect a site or hold the ladder by hand, with a reason"))
        ]

    def __str__(self) -> str:
        return _("%(site)s cut on %(day)s") % {
            "site": self.site.reference,
            "day": f"{self.opened_on:%d/%m/%Y}",
        }

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class DisconnectionMeter(models.Model):
    """A meter switched by a disconnection, with the commands that cut and restored it.

    No command means the meter already reported that state when dunning decided. A
    disconnect command lives until the end of its day's allowed window; a meter not off by
    then gets a new one on the next allowed day (``cut_command`` is the latest).
    """

    access = AccessPath(agency="disconnection__agency", client="disconnection__client")

    disconnection = models.ForeignKey(
        Disconnection,
        on_delete=models.CASCADE,
        related_name="meters",
        verbose_name=_("disconnection"),
        db_index=False,  # the unique (disconnection, meter) index serves
    )
    meter = models.ForeignKey(
        "metering.Meter", on_delete=models.PROTECT, related_name="+", verbose_name=_("meter")
    )
    cut_command = models.ForeignKey(
        "metering.MeterCommand",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("disconnect command"),
    )
    cut_commands = models.PositiveSmallIntegerField(
        _("disconnect commands"),
        default=0,
        help_text=_(
            "More than one: the meter was not off at the end of the day's window (offline, "
            "or refused it) and was sent another on a later allowed day."
        ),
    )
    restore_command = models.ForeignKey(
        "metering.MeterCommand",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reconnect command"),
    )

    class Meta:
        verbose_name = _("meter switched")
        verbose_name_plural = _("meters switched")
        constraints = [
            models.UniqueConstraint(
                fields=["disconnection", "meter"], name="dunning_disconnection_meter_unique"
            )
        ]

    def __str__(self) -> str:
        return str(self.meter_id)


class Reminder(models.Model):
    """A step of the ladder taken for an invoice: at most once per invoice and step."""

    access = AccessPath(agency="invoice__agency", client="invoice__client")

    invoice = models.ForeignKey(
        "billing.Invoice",
        on_delete=models.PROTECT,
        related_name="dunning_reminders",
        verbose_name=_("invoice"),
        db_index=False,  # the unique (invoice, step) index serves
    )
    step = models.ForeignKey(
        DunningStep, on_delete=models.PROTECT, related_name="reminders", verbose_name=_("step")
    )
    sent_on = models.DateField(_("day"))
    created_at = models.DateTimeField(_("created at"))
    days_overdue = models.PositiveSmallIntegerField(_("days overdue"))
    amount_due = MoneyField(_("amount left to pay"))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    cut_announced_on = models.DateField(
        _("disconnection announced for"),
        null=True,
        blank=True,
        help_text=_("A final notice: the day it named. Nobody is cut before it."),
    )
    disconnection = models.ForeignKey(
        Disconnection,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reminders",
        verbose_name=_("disconnection"),
    )

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        ordering = ["-sent_on", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "step"], name="dunning_reminder_unique")
        ]
        indexes = [
            # The pass reads each invoice's latest step: one probe of this index.
            models.Index(fields=["invoice", "sent_on", "id"], name="dunning_reminder_latest")
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} · {self.step}"
