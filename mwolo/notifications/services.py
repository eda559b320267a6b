"""Telling clients: the one way to send a message, its delivery, retries and templates.

``notification_send`` is what every other app calls. It writes the outbox rows in the
caller's transaction and queues their delivery when that transaction commits, so a message
never leaves for something that was rolled back. ``notifications_send_bulk`` writes the
same rows for thousands of messages at once (the dunning pass), by the same rules.
Delivery (``notification_deliver``) claims a row, talks to the provider outside any
transaction (a slow SMTP server never holds a database lock), then records the outcome.
Failures are retried with backoff by ``notifications_deliver_due``, which beat runs every
minute and ``manage.py send_notifications --as-of`` runs by hand.

Delivery is at least once: a worker that dies after the provider accepted a message but
before recording it sends it again once its claim lapses (``SENDING_LEASE``).
"""

import datetime as dt
import logging
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import IntegrityError, models, transaction
from django.db.models import CharField
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from mwolo.accounts.models import User
from mwolo.agencies.models import Agency
from mwolo.core import clock
from mwolo.core.bulk import among, rows_insert
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import visible_to
from mwolo.crm.models import Channel, Client

from .delivery import Attachment, DeliveryError, email_send, sms_backend
from .events import EVENTS, Event
from .models import Language, MessageTemplate, Notification, NotificationAttachment
from .rendering import TemplateError, render

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "Attachment",
    "DeliveryReport",
    "Notice",
    "message_template_save",
    "notification_deliver",
    "notification_send",
    "notifications_deliver_due",
    "notifications_retry",
    "notifications_send_bulk",
]

logger = logging.getLogger(__name__)

# Waits after the 1st, 2nd… failed attempt; the attempt after the last wait is the last.
RETRY_DELAYS = tuple(dt.timedelta(minutes=m) for m in (1, 5, 30, 120, 360))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A claimed row whose worker vanished is tried again after this (longer than any timeout).
SENDING_LEASE = dt.timedelta(minutes=10)
DUE_STATUSES = (Notification.Status.QUEUED, Notification.Status.FAILED, Notification.Status.SENDING)
RETRY_PERMISSION = "notifications.retry_notification"


# --- Sending ------------------------------------------------------------------------------
#
# One set of rules for both ways of writing messages: ``notification_send`` (one message,
# with attachments) and ``notifications_send_bulk`` (thousands at once, for the dunning
# pass, in a fixed number of queries). What a message becomes — its event's checks, its
# channels, language, common variables, recipient and texts — is decided by the functions
# below and nowhere else.


def _event(key: str) -> Event:
    event = EVENTS.get(key)
    if event is None:
        raise ApplicationError(
            _("Unknown event “%(event)s”. Known events: %(known)s.")
            % {"event": key, "known": ", ".join(sorted(EVENTS))}
        )
    return event


def _check_context(event: Event, context: Mapping[str, Any]) -> None:
    missing = set(event.variables) - set(context)
    unexpected = set(context) - set(event.variables)
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(_("missing: %(names)s") % {"names": ", ".join(sorted(missing))})
        if unexpected:
            problems.append(_("unexpected: %(names)s") % {"names": ", ".join(sorted(unexpected))})
        raise ApplicationError(
            _("Wrong context for the event “%(event)s” (%(problems)s).")
            % {"event": event.key.value, "problems": "; ".join(problems)}
        )


CHANNELS = frozenset(Channel.values)
LANGUAGES = frozenset(Language.values)


def _channels(client: Client, event: Event, wanted: Collection[str] | None) -> list[str]:
    """Email only where the client has an address; never nothing: SMS reaches everyone."""
    if wanted is None:
        wanted = [client.preferred_channel]
        if event.sms_always:
            wanted.append(Channel.SMS)
    unknown = set(wanted) - CHANNELS
    if unknown:
        raise ApplicationError(
            _("Unknown channel: %(names)s.") % {"names": ", ".join(sorted(unknown))}
        )
    chosen = [
        channel.value
        for channel in (Channel.EMAIL, Channel.SMS)
        if channel in wanted and (channel != Channel.EMAIL or client.email)
    ]
    return chosen or [Channel.SMS.value]


def _language(client: Client) -> str:
    return client.preferred_language if client.preferred_language in LANGUAGES else Language.FRENCH


def _agency_context(agency: Agency) -> dict[str, Any]:
    return {
        "agency_name": agency.name,
        "agency_phone": agency.phone.as_international if agency.phone else "",
    }


def _common_context(client: Client, agency: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The variables every message gets (``events.COMMON_VARIABLES``); ``agency``: the
    agency's part, when the caller computed it once for many clients of the agency."""
    return {
        "client_name": client.display_name,
        "client_number": client.number,
        **(agency if agency is not None else _agency_context(client.agency)),
    }


def _template_missing(event: str, channel: str, language: str) -> ApplicationError:
    return ApplicationError(
        _("No %(channel)s template in %(language)s for the event “%(event)s”.")
        % {"channel": channel, "language": language, "event": event}
    )


@dataclass(frozen=True)
class _Message:
    """One channel's message, as the outbox keeps it."""

    channel: str
    recipient: str
    subject: str
    body: str


def _message(
    *,
    client: Client,
    channel: str,
    template: MessageTemplate,
    values: Mapping[str, Any],
    language: str,
    phone: str,
) -> _Message:
    """The message of ``template`` to ``client`` by ``channel``: recipient (``phone`` is
    the client's, E.164) and texts rendered now, the subject on one line."""
    zone = ZoneInfo(client.agency.time_zone)
    email = channel == Channel.EMAIL
    try:
        subject = render(template.subject, values, language=language, zone=zone) if email else ""
        body = render(template.body, values, language=language, zone=zone)
    except TemplateError as error:
        raise ApplicationError(
            _("The template “%(template)s” is broken: %(error)s")
            % {"template": template, "error": error}
        ) from error
    return _Message(
        channel=channel,
        recipient=client.email if email else phone,
        subject=" ".join(subject.split()),
        body=body,
    )


@transaction.atomic
def notification_send(
    *,
    client: Client,
    event: str,
    context: Mapping[str, Any],
    attachments: Sequence[Attachment] = (),
    channels: Collection[str] | None = None,
    related: models.Model | None = None,
    idempotency_key: str | None = None,
) -> list[Notification]:
    """Tell ``client`` about ``event``: one outbox row per channel, delivered after commit.

    - ``context`` holds exactly the event's variables (``events.EVENTS[event].variables``);
      the client's name and number and the agency's name and phone are added here.
    - Channels: the client's preferred one, plus SMS for events marked ``sms_always``;
      or ``channels`` when given. Email only if the client has an address; SMS otherwise.
    - Texts come from the event's templates in the client's language, rendered now: the
      outbox keeps exactly what was sent. ``attachments`` go with emails only.
    - ``related``: the invoice, payment or ticket the message is about.
    - ``idempotency_key`` (e.g. ``reminder:<invoice id>:<step>``): a second call with the
      same key creates and sends nothing on a channel that already has it, and returns the
      existing rows. Enforced by a unique constraint, so concurrent callers are safe too.

    Runs inside the caller's transaction (a savepoint). Raises ``ApplicationError`` for an
    unknown event or channel, a context that does not match the event, or a missing or
    broken template, and then writes nothing.
    """
    spec = _event(event)
    _check_context(spec, context)
    chosen = _channels(client, spec, channels)
    language = _language(client)
    values = {**_common_context(client), **context}
    templates = {
        template.channel: template
        for template in MessageTemplate.objects.filter(
            event=event, language=language, channel__in=chosen
        )
    }
    related_type = ContentType.objects.get_for_model(related) if related is not None else None
    now = clock.now()
    results: list[Notification] = []
    created: list[Notification] = []
    for channel in chosen:
        if idempotency_key:
            existing = Notification.objects.filter(
                idempotency_key=idempotency_key, channel=channel
            ).first()
            if existing is not None:
                results.append(existing)
                continue
        if channel not in templates:
            raise _template_missing(event, channel, language)
        message = _message(
            client=client,
            channel=channel,
            template=templates[channel],
            values=values,
            language=language,
            phone=client.phone.as_e164,
        )
        notification = Notification(
            client=client,
            channel=channel,
            recipient=message.recipient,
            event=event,
            language=language,
            subject=message.subject,
            body=message.body,
            status=Notification.Status.QUEUED,
            next_attempt_at=now,
            idempotency_key=idempotency_key or "",
            related_type=related_type,
            related_id=related.pk if related is not None else None,
            created_at=now,
        )
        try:
            with transaction.atomic():
                notification.save()
        except IntegrityError:
            # Another caller with the same key committed first: theirs is the message.
            results.append(
                Notification.objects.get(idempotency_key=idempotency_key, channel=channel)
            )
            continue
        if channel == Channel.EMAIL:
            _attach(notification, attachments, now)
        results.append(notification)
        created.append(notification)
    from .tasks import notification_deliver_task

    for notification in created:
        transaction.on_commit(partial(notification_deliver_task.delay, notification.pk))
    return results


# --- Sending in bulk -----------------------------------------------------------------------

BULK_DELIVERY_BATCH = 200  # messages per delivery task
# The outbox row, as ``notification_send`` writes it.
_NOTIFICATION_FIELDS = (
    "client_id",
    "channel",
    "recipient",
    "event",
    "language",
    "subject",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "provider_message_id",
    "idempotency_key",
    "related_type_id",
    "related_id",
    "created_at",
    "updated_at",
)
# What the rules above read of a client.
_CLIENT_FIELDS = (
    "kind",
    "first_name",
    "last_name",
    "middle_name",
    "company_name",
    "number",
    "email",
    "preferred_channel",
    "preferred_language",
    "agency",
)


@dataclass(frozen=True)
class Notice:
    """One message for ``notifications_send_bulk``: ``notification_send``'s arguments, for
    one client (no attachments)."""

    client_id: int
    event: str
    context: Mapping[str, Any]
    idempotency_key: str
    related: tuple[type[models.Model], int]  # what the message is about: model and id
    channels: Sequence[str] | None = None


def _bulk_clients(ids: set[int]) -> dict[int, Client]:
    """The clients, each agency loaded once and shared (not once per client), and their
    phone as stored — E.164 (``PHONENUMBER_DB_FORMAT``) — without parsing it again."""
    clients = list(
        Client.objects.filter(among("pk", ids))
        .only(*_CLIENT_FIELDS)
        .annotate(phone_e164=Cast("phone", output_field=CharField()))
    )
    agencies = Agency.objects.select_related("province").in_bulk(
        {client.agency_id for client in clients}
    )
    for client in clients:
        client.agency = agencies[client.agency_id]
    return {client.pk: client for client in clients}


def notifications_send_bulk(*, notices: Sequence[Notice]) -> list[int]:
    """Write the outbox rows of ``notices`` in the caller's transaction; returns their ids.

    The rows ``notification_send`` would write for each notice — the same functions decide
    channels, language, variables, recipient and texts — and the same guarantees
    (idempotency: a key already used on a channel writes nothing on it; delivery queued
    on commit, one task per ``BULK_DELIVERY_BATCH`` messages), in a fixed number of
    queries whatever the number of notices, each template compiled once. Raises the same
    ``ApplicationError`` (and the caller's transaction writes nothing) for an unknown event
    or channel, a context that does not fit its event, or a missing or broken template.
    """
    if not notices:
        return []
    specs = {notice.event: _event(notice.event) for notice in notices}
    clients = _bulk_clients({notice.client_id for notice in notices})
    keys = [notice.idempotency_key for notice in notices]
    used = set(
        Notification.objects.filter(among("idempotency_key", keys))
        .exclude(idempotency_key="")  # the unique index covers non-empty keys only
        .values_list("idempotency_key", "channel")
    )
    templates = {
        (row.event, row.channel, row.language): row
        for row in MessageTemplate.objects.filter(event__in=specs)
    }
    related_types = {
        model: ContentType.objects.get_for_model(model).pk
        for model in {notice.related[0] for notice in notices}
    }
    agency_contexts: dict[int, dict[str, Any]] = {}
    now = clock.now()
    rows: list[tuple] = []
    for notice in notices:
        spec = specs[notice.event]
        _check_context(spec, notice.context)
        client = clients[notice.client_id]
        language = _language(client)
        agency = agency_contexts.get(client.agency_id)
        if agency is None:  # formatting the agency's phone costs more than a message
            agency = agency_contexts[client.agency_id] = _agency_context(client.agency)
        values = {**_common_context(client, agency), **notice.context}
        for channel in _channels(client, spec, notice.channels):
            if (notice.idempotency_key, channel) in used:
                continue
            template = templates.get((notice.event, channel, language))
            if template is None:
                raise _template_missing(notice.event, channel, language)
            message = _message(
                client=client,
                channel=channel,
                template=template,
                values=values,
                language=language,
                phone=client.phone_e164,  # type: ignore[attr-defined]
            )
            rows.append(
                (
                    client.pk,
                    channel,
                    message.recipient,
                    notice.event,
                    language,
                    message.subject,
                    message.body,
                    Notification.Status.QUEUED.value,
                    0,
                    now,
                    "",
                    "",
                    notice.idempotency_key,
                    related_types[notice.related[0]],
                    notice.related[1],
                    now,
                    now,
                )
            )
            used.add((notice.idempotency_key, channel))
    if not rows:
        return []
    rows_insert(Notification, _NOTIFICATION_FIELDS, rows)
    ids = list(
        Notification.objects.filter(among("idempotency_key", keys), created_at=now)
        .exclude(idempotency_key="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    from .tasks import notifications_deliver_batch_task

    def notifications_deliver_queue() -> None:
        for start in range(0, len(ids), BULK_DELIVERY_BATCH):
            notifications_deliver_batch_task.delay(ids[start : start + BULK_DELIVERY_BATCH])

    transaction.on_commit(notifications_deliver_queue)
    return ids


def _attach(
    notification: Notification, attachments: Iterable[Attachment], now: dt.datetime
) -> None:
    for attachment in attachments:
        if not attachment.filename or "/" in attachment.filename:
            raise ApplicationError(
                _("Invalid attachment name: %(name)r.") % {"name": attachment.filename}
            )
        row = NotificationAttachment(
            notification=notification,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=len(attachment.content),
        )
        folder = f"notifications/{now:%Y/%m}/{uuid.uuid4().hex}"
        row.file.save(
            f"{folder}/{attachment.filename}", ContentFile(attachment.content), save=False
        )
        row.save()


# --- Delivery -----------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    given_up: int = 0

    def count(self, notification: Notification | None) -> None:
        if notification is None:
            return
        if notification.status == Notification.Status.SENT:
            self.sent += 1
        elif notification.status == Notification.Status.FAILED:
            self.failed += 1
        elif notification.status == Notification.Status.GIVEN_UP:
            self.given_up += 1


@transaction.atomic
def _claim(notification_id: int, now: dt.datetime) -> Notification | None:
    notification = (
        Notification.objects.select_for_update(of=("self",))
        .select_related("client__agency")
        .filter(pk=notification_id, status__in=DUE_STATUSES, next_attempt_at__lte=now)
        .first()
    )
    if notification is None:
        return None
    notification.status = Notification.Status.SENDING
    notification.attempts += 1
    notification.next_attempt_at = now + SENDING_LEASE
    notification.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    return notification


def _hand_over(notification: Notification) -> str:
    if notification.channel == Channel.EMAIL:
        files = []
        for attachment in notification.attachments.all():
            with attachment.file.open("rb") as stored:
                files.append(
                    Attachment(attachment.filename, stored.read(), attachment.content_type)
                )
        return email_send(
            to=notification.recipient,
            subject=notification.subject,
            body=notification.body,
            files=files,
            reply_to=notification.client.agency.email,
        )
    return sms_backend().send(to=notification.recipient, text=notification.body)


def notification_deliver(
    *, notification_id: int, now: dt.datetime | None = None
) -> Notification | None:
    """Try to deliver one message if it is due at ``now``; return it, or ``None`` if it was
    not due (already sent, given up, planned later, or being sent by another worker).

    A success records the provider's message id; a failure plans the next attempt after
    ``RETRY_DELAYS[attempts - 1]``, or gives up after ``MAX_ATTEMPTS`` attempts or on an
    error that retrying cannot fix (an invalid number, a refused address). Never raises
    for a provider's failure: the outbox row says what happened.
    """
    now = now or clock.now()
    notification = _claim(notification_id, now)
    if notification is None:
        return None
    try:
        provider_id = _hand_over(notification)
    except DeliveryError as error:
        retry = error.retryable and notification.attempts < MAX_ATTEMPTS
        notification.status = Notification.Status.FAILED if retry else Notification.Status.GIVEN_UP
        notification.next_attempt_at = (
            now + RETRY_DELAYS[notification.attempts - 1] if retry else None
        )
        notification.last_error = error.message[:2000]
        logger.warning(
            "notification %s attempt %d failed (%s): %s",
            notification.pk,
            notification.attempts,
            notification.status,
            error.message,
        )
    else:
        notification.status = Notification.Status.SENT
        notification.next_attempt_at = None
        notification.provider_message_id = provider_id[:200]
        notification.sent_at = now
        notification.last_error = ""
    # Only our claim is recorded over: a worker whose lease lapsed does not overwrite the
    # outcome of the one that took over.
    Notification.objects.filter(
        pk=notification.pk,
        status=Notification.Status.SENDING,
        attempts=notification.attempts,
    ).update(
        status=notification.status,
        next_attempt_at=notification.next_attempt_at,
        last_error=notification.last_error,
        provider_message_id=notification.provider_message_id,
        sent_at=notification.sent_at,
        updated_at=clock.now(),
    )
    return notification


def notifications_deliver_due(
    *, now: dt.datetime | None = None, limit: int = 1000
) -> DeliveryReport:
    """Deliver every message due at ``now``: queued ones whose task was lost, failed ones
    whose next attempt has come, claims that lapsed. Idempotent: a second run at the same
    ``now`` finds nothing due (sent rows are done, failed ones are planned later)."""
    now = now or clock.now()
    due = list(
        Notification.objects.filter(status__in=DUE_STATUSES, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    report = DeliveryReport()
    for notification_id in due:
        report.count(notification_deliver(notification_id=notification_id, now=now))
    return report


@transaction.atomic
def notifications_retry(
    *, notification_ids: Iterable[int], actor: User, now: dt.datetime | None = None
) -> int:
    """Staff's "retry now": failed or given-up messages the actor may see are due at once,
    to the client's current phone or email (an address corrected since is used). Each gets
    one more attempt; a message given up is given up again if that attempt fails. Returns
    how many were queued; others (sent, queued, outside the actor's scope) are left alone.
    """
    if not actor.has_perm(RETRY_PERMISSION):
        raise ApplicationError(_("You may not retry messages."), status=403)
    now = now or clock.now()
    rows = (
        visible_to(Notification.objects.select_for_update(of=("self",)), actor)
        .select_related("client")
        .filter(
            pk__in=list(notification_ids),
            status__in=[Notification.Status.FAILED, Notification.Status.GIVEN_UP],
        )
        .order_by("pk")
    )
    from .tasks import notification_deliver_task

    queued = 0
    for notification in rows:
        client = notification.client
        current = client.email if notification.channel == Channel.EMAIL else client.phone.as_e164
        notification.recipient = current or notification.recipient
        notification.status = Notification.Status.QUEUED
        notification.next_attempt_at = now
        notification.save(update_fields=["recipient", "status", "next_attempt_at", "updated_at"])
        transaction.on_commit(partial(notification_deliver_task.delay, notification.pk))
        queued += 1
    return queued


# --- Templates ----------------------------------------------------------------------------


@transaction.atomic
def message_template_save(*, template: MessageTemplate, actor: User | None) -> MessageTemplate:
    """Save a template staff edited. Raises ``ValidationError`` on the field at fault (a
    syntax error, a variable the event does not provide, a subject on an SMS) and then
    writes nothing. Administrators only (``notifications.change_messagetemplate``)."""
    if actor is not None and not actor.has_perm("notifications.change_messagetemplate"):
        raise ApplicationError(_("Only administrators may change message texts."), status=403)
    template.full_clean()
    template.save()
    return template
