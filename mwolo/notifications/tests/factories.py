import factory
from django.utils import timezone

from mwolo.crm.models import Channel
from mwolo.crm.tests.factories import ClientFactory
from mwolo.notifications.models import MessageTemplate, Notification


class NotificationFactory(factory.django.DjangoModelFactory):
    """An outbox row as ``notification_send`` writes it: an SMS reminder, queued."""

    class Meta:
        model = Notification

    client = factory.SubFactory(ClientFactory)
    channel = Channel.SMS
    recipient = factory.LazyAttribute(lambda o: o.client.phone.as_e164)
    event = "reminder"
    language = "fr"
    body = "Mwolo Energy: rappel. La facture FA-2026-000123 est impayée."
    status = Notification.Status.QUEUED
    next_attempt_at = factory.LazyFunction(timezone.now)
    created_at = factory.LazyFunction(timezone.now)


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    """The seeded template of an event (migrations load one per event, channel, language)."""

    class Meta:
        model = MessageTemplate
        django_get_or_create = ("event", "channel", "language")

    event = "reconnection"
    channel = Channel.SMS
    language = "fr"
    body = "Le courant du site {{ site_reference }} est rétabli."
