"""Reads of the outbox, scoped like every record: staff see their agencies' messages, a
client their own, anyone else nothing."""

from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import models

from mwolo.accounts.models import User
from mwolo.core.permissions import visible_to
from mwolo.crm.models import Client

from .events import EVENTS
from .models import Notification

# What a timeline shows; the body only for an SMS's first line.
_TIMELINE_FIELDS = (
    "pk",
    "client_id",
    "created_at",
    "sent_at",
    "channel",
    "event",
    "status",
    "recipient",
    "subject",
    "body",
    "attempts",
    "last_error",
)


def client_messages(
    *, client: Client | int, user: User | AnonymousUser
) -> models.QuerySet[Notification]:
    """Every message sent (or being sent) to ``client`` that ``user`` may see, newest
    first: the client's timeline. One query however many rows."""
    client_id = client if isinstance(client, int) else client.pk
    return (
        visible_to(Notification.objects.filter(client_id=client_id), user)
        .only(*_TIMELINE_FIELDS)
        .order_by("-created_at", "-pk")
    )


def related_messages(
    *, obj: models.Model, user: User | AnonymousUser
) -> models.QuerySet[Notification]:
    """The messages about ``obj`` (an invoice, a payment, a ticket) ``user`` may see."""
    return (
        visible_to(
            Notification.objects.filter(
                related_type=ContentType.objects.get_for_model(obj), related_id=obj.pk
            ),
            user,
        )
        .only(*_TIMELINE_FIELDS)
        .order_by("-created_at", "-pk")
    )


def template_variables(event: str) -> dict[str, str]:
    """What a template of ``event`` may use: name → description (for staff)."""
    return {name: str(label) for name, label in EVENTS[event].all_variables().items()}
