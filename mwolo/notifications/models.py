"""Message templates staff edit, and the outbox: every message sent to a client."""

from zoneinfo import ZoneInfo

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from mwolo.core.models import TimeStampedModel
from mwolo.core.permissions import AccessPath
from mwolo.core.storage import private_storage
from mwolo.crm.models import Channel

from .events import EVENTS, EventKey
from .rendering import TemplateError, non_gsm7_characters, render, sms_length


class Language(models.TextChoices):
    FRENCH = "fr", _("French")
    ENGLISH = "en", _("English")


class MessageTemplate(TimeStampedModel):
    """The text of one event, for one channel, in one language (Django template syntax)."""

    event = models.CharField(_("event"), max_length=32, choices=EventKey.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=5, choices=Language.choices)
    subject = models.CharField(
        _("subject"), max_length=200, blank=True, help_text=_("Emails only.")
    )
    body = models.TextField(_("text"))

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["event", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "channel", "language"], name="notifications_template_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} · {self.get_channel_display()} · {self.language}"

    def clean(self) -> None:
        """Each text must render with the event's variables: a syntax error or an unknown
        name is reported on its field, so a broken template is never saved."""
        event = EVENTS.get(self.event)
        if event is None:
            return  # the choices validation reports it
        errors: dict[str, str] = {}
        fields = ["body"]
        if self.channel == Channel.EMAIL:
            fields.insert(0, "subject")
            if not self.subject.strip():
                errors["subject"] = str(_("An email needs a subject."))
        elif self.subject.strip():
            errors["subject"] = str(_("An SMS has no subject: leave it empty."))
        for name in fields:
            if name in errors:
                continue
            try:
                self.render_example(name)
            except TemplateError as error:
                errors[name] = str(error)
        if errors:
            raise ValidationError(errors)

    def render_example(self, field: str = "body") -> str:
        """``field`` rendered with the event's example (times in Kinshasa's zone)."""
        return render(
            getattr(self, field),
            EVENTS[self.event].full_example(),
            language=self.language,
            zone=ZoneInfo("Africa/Kinshasa"),
        )

    def example_sms_summary(self) -> str:
        """For staff: the example's length as an operator counts it."""
        text = self.render_example()
        length = sms_length(text)
        summary = _("%(units)d of %(limit)d characters (%(encoding)s), %(parts)d SMS") % {
            "units": length.units,
            "limit": length.single_limit,
            "encoding": length.encoding,
            "parts": length.parts,
        }
        if length.encoding != "GSM-7":
            summary += " — " + _("not GSM-7 because of: %(chars)s") % {
                "chars": non_gsm7_characters(text)
            }
        return str(summary)


class Notification(models.Model):
    """One message to one client on one channel: what was sent, to whom, and how it went.

    ``queued`` → ``sending`` → ``sent``; a failed attempt makes it ``failed`` with the next
    attempt planned (backoff), until the last attempt, or an error retrying cannot fix,
    makes it ``given_up``. Written by ``services`` only; staff read it.
    """

    access = AccessPath(agency="client__agency", client="client")

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("message status", "Queued")
        SENDING = "sending", pgettext_lazy("message status", "Sending")
        SENT = "sent", pgettext_lazy("message status", "Sent")
        FAILED = "failed", pgettext_lazy("message status", "Failed, will retry")
        GIVEN_UP = "given_up", pgettext_lazy("message status", "Given up")

    client = models.ForeignKey(
        "crm.Client",
        on_delete=models.PROTECT,
        related_name="notifications",
        verbose_name=_("client"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    recipient = models.CharField(
        _("recipient"), max_length=254, help_text=_("Phone number (E.164) or email address.")
    )
    event = models.CharField(_("event"), max_length=32, choices=EventKey.choices)
    language = models.CharField(_("language"), max_length=5, choices=Language.choices)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    provider_message_id = models.CharField(_("provider's message id"), max_length=200, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    idempotency_key = models.CharField(
        _("idempotency key"),
        max_length=200,
        blank=True,
        help_text=_("Set by the sender: the same key never sends twice on a channel."),
    )
    related_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("about (type)"),
    )
    related_id = models.PositiveBigIntegerField(_("about (id)"), null=True, blank=True)
    related = GenericForeignKey("related_type", "related_id")
    created_at = models.DateTimeField(_("created at"), db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("outbox")
        ordering = ["-created_at", "-pk"]
        permissions = [("retry_notification", _("Can retry sending a message"))]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key", "channel"],
                condition=~models.Q(idempotency_key=""),
                name="notifications_idempotency_key_unique",
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["client", "-created_at"]),
            models.Index(fields=["related_type", "related_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.recipient} ({self.get_status_display()})"

    @property
    def summary(self) -> str:
        """The subject of an email, the first line of an SMS."""
        return self.subject or self.body.split("\n", 1)[0]


class NotificationAttachment(models.Model):
    """A file sent with an email (an invoice's PDF), kept so a retry sends the same file."""

    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="attachments",
        verbose_name=_("message"),
    )
    filename = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("content type"), max_length=100)
    # Private storage: invoices and receipts are personal data, never published by the web
    # server. The service names each file notifications/<year>/<month>/<uuid>/<filename>.
    file = models.FileField(_("file"), storage=private_storage, max_length=300)
    size = models.PositiveIntegerField(_("size (bytes)"))

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.filename
