"""Dunning's messages to clients, written in bulk into the one outbox.

A dunning pass tells tens of thousands of clients something on the same morning.
``notification_send`` writes one message in about five queries and compiles its template
each time (about 4.5 ms a message on PostgreSQL): 100 000 reminders would take minutes.
``notices_send`` writes the very rows ``notification_send`` would — same channel rule,
language, templates, common variables, rendering and idempotency keys, taken from
``mwolo.notifications`` — in a fixed number of queries, each template compiled once.
Delivery is asynchronous as for every message: after commit, one task per batch of rows
delivers them with ``notification_deliver`` (and the per-minute retry sweeps up the rest).
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import CharField
from django.db.models.functions import Cast
from django.template import Context, Template
from django.utils import translation
from django.utils.translation import gettext as _

from mwolo.agencies.models import Agency
from mwolo.core import clock
from mwolo.core.bulk import rows_insert
from mwolo.core.exceptions import ApplicationError
from mwolo.crm.models import Channel, Client
from mwolo.notifications.events import COMMON_VARIABLES, EVENTS
from mwolo.notifications.models import Language, MessageTemplate, Notification

# The notification service's own rules, so that a message written here is exactly the one
# ``notification_send`` would write (they are not public: this is their one other user).
from mwolo.notifications.rendering import _ENGINE, TemplateError, format_value, render
from mwolo.notifications.services import _channels, _check_context, _common_context

from .selectors import among

DELIVERY_BATCH = 200  # messages per delivery task
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


@dataclass(frozen=True)
class Notice:
    """One message to send: ``notification_send``'s arguments, for one client."""

    client_id: int
    event: str
    context: Mapping[str, Any]
    idempotency_key: str
    related: tuple[type[models.Model], int]  # what the message is about: model and id
    channels: Sequence[str] | None = None


class _Templates:
    """The templates of the events in play, fetched once and compiled once."""

    def __init__(self, events: set[str]) -> None:
        self.rows = {
            (row.event, row.channel, row.language): row
            for row in MessageTemplate.objects.filter(event__in=events)
        }
        self.compiled: dict[str, Template] = {}

    def get(self, event: str, channel: str, language: str) -> MessageTemplate:
        template = self.rows.get((event, channel, language))
        if template is None:
            raise ApplicationError(
                _("No %(channel)s template in %(language)s for the event “%(event)s”.")
                % {"channel": channel, "language": language, "event": event}
            )
        return template

    def render(
        self,
        template: MessageTemplate,
        field: str,
        values: dict[str, Any],
        *,
        language: str,
        zone: ZoneInfo,
    ) -> str:
        """``rendering.render`` of ``template.<field>`` with the template compiled once."""
        source = getattr(template, field)
        compiled = self.compiled.get(source)
        try:
            if compiled is None:
                compiled = self.compiled[source] = _ENGINE.from_string(source)
            formatted = {
                name: format_value(value, language=language, zone=zone)
                for name, value in values.items()
            }
            return compiled.render(Context(formatted, autoescape=False)).strip()
        except Exception:
            # A broken template: the public renderer raises the error that names the
            # problem, turned into the same ApplicationError as notification_send's.
            try:
                render(source, values, language=language, zone=zone)
            except TemplateError as error:
                raise ApplicationError(
                    _("The template “%(template)s” is broken: %(error)s")
                    % {"template": template, "error": error}
                ) from error
            raise


# What the channel rule and the common variables read of a client.
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


class _CommonContext:
    """``notification_send``'s common variables of a client, the agency's part computed
    once per agency (formatting its phone number costs more than the rest of a message).
    Should the notification service add a variable, every message gets its own call."""

    KNOWN = frozenset({"client_name", "client_number", "agency_name", "agency_phone"})

    def __init__(self) -> None:
        self.by_agency: dict[int, dict[str, Any]] = {}
        self.shared = set(COMMON_VARIABLES) == self.KNOWN

    def __call__(self, client: Client) -> dict[str, Any]:
        if not self.shared:
            return _common_context(client)
        agency = self.by_agency.get(client.agency_id)
        if agency is None:
            agency = self.by_agency[client.agency_id] = _common_context(client)
        return {**agency, "client_name": client.display_name, "client_number": client.number}


LANGUAGES = frozenset(Language.values)


def _clients(ids: set[int]) -> dict[int, Client]:
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


def notices_send(*, notices: Sequence[Notice]) -> list[int]:
    """Write the outbox rows of ``notices`` in the caller's transaction; returns their ids.

    Exactly what ``notification_send`` guarantees for each notice (channels, language,
    texts rendered now, idempotency: a key already used on a channel writes nothing on it),
    with a fixed number of queries whatever the number of notices. Delivery is queued on
    commit. Raises ``ApplicationError`` (and the caller's transaction writes nothing) for a
    context that does not fit its event or a missing or broken template.
    """
    if not notices:
        return []
    clients = _clients({notice.client_id for notice in notices})
    keys = [notice.idempotency_key for notice in notices]
    used = set(
        Notification.objects.filter(among("idempotency_key", keys))
        .exclude(idempotency_key="")  # the unique index covers non-empty keys only
        .values_list("idempotency_key", "channel")
    )
    templates = _Templates({notice.event for notice in notices})
    related_types = {
        model: ContentType.objects.get_for_model(model).pk
        for model in {notice.related[0] for notice in notices}
    }
    now = clock.now()
    common_context = _CommonContext()
    by_language: dict[str, list[tuple[Notice, Client]]] = defaultdict(list)
    for notice in notices:
        client = clients[notice.client_id]
        language = (
            client.preferred_language if client.preferred_language in LANGUAGES else Language.FRENCH
        )
        by_language[language].append((notice, client))
    rows: list[tuple] = []
    for language, batch in by_language.items():
        with translation.override(language):
            for notice, client in batch:
                spec = EVENTS[notice.event]
                _check_context(spec, notice.context)
                values = {**common_context(client), **notice.context}
                zone = ZoneInfo(client.agency.time_zone)
                for channel in _channels(client, spec, notice.channels):
                    if (notice.idempotency_key, channel) in used:
                        continue
                    template = templates.get(notice.event, channel, language)
                    email = channel == Channel.EMAIL
                    subject = (
                        templates.render(template, "subject", values, language=language, zone=zone)
                        if email
                        else ""
                    )
                    rows.append(
                        (
                            client.pk,
                            channel,
                            client.email if email else client.phone_e164,  # type: ignore[attr-defined]
                            notice.event,
                            language,
                            " ".join(subject.split()),  # a subject is one line
                            templates.render(
                                template, "body", values, language=language, zone=zone
                            ),
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
    from .tasks import notices_deliver

    def deliver() -> None:
        for start in range(0, len(ids), DELIVERY_BATCH):
            notices_deliver.delay(ids[start : start + DELIVERY_BATCH])

    transaction.on_commit(deliver)
    return ids
