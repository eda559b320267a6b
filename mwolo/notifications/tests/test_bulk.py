"""Messages written in bulk (``notifications_send_bulk``, for the dunning pass) are the very
rows ``notification_send`` writes for the same input: channels, language, recipient and
rendered text — and both refuse the same mistakes, writing nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mwolo.core.exceptions import ApplicationError
from mwolo.crm.models import PartyKind
from mwolo.crm.tests.factories import ClientFactory
from mwolo.notifications.events import EVENTS
from mwolo.notifications.models import MessageTemplate, Notification
from mwolo.notifications.services import Notice, notification_send, notifications_send_bulk

pytestmark = pytest.mark.django_db

# What the outbox row says, the idempotency key's prefix aside.
COMPARED = (
    "client_id",
    "channel",
    "recipient",
    "event",
    "language",
    "subject",
    "body",
    "status",
    "attempts",
    "last_error",
    "provider_message_id",
    "related_type_id",
    "related_id",
)


@pytest.fixture
def clients(gombe, lubumbashi, sms_client, email_client):
    """Every combination that changes a message: channel, language, no address, a firm,
    an agency in the other time zone."""
    return [
        sms_client,
        email_client,
        ClientFactory(
            agency=gombe,
            first_name="John",
            last_name="Smith",
            email="john.smith@example.com",
            preferred_channel="email",
            preferred_language="en",
        ),
        ClientFactory(agency=gombe, preferred_channel="email", email=""),  # SMS after all
        ClientFactory(
            agency=lubumbashi,
            kind=PartyKind.COMPANY,
            first_name="",
            last_name="",
            middle_name="",
            company_name="Brasserie du Katanga SARL",
            email="compta@brasserie.example.cd",
            preferred_channel="email",
            preferred_language="en",
        ),
    ]


def cases(clients) -> list[tuple]:
    """(client, event, context, channels) for every event and channel choice."""
    found = []
    for client in clients:
        for event in EVENTS.values():
            context = dict(event.example)
            for channels in (None, ["sms"], ["email", "sms"]):
                found.append((client, event.key.value, context, channels))
    # Values written the client's way: a large amount, a moment in the agency's zone.
    found.append(
        (
            clients[2],
            "payment_receipt",
            {
                **EVENTS["payment_receipt"].example,
                "amount": Decimal("1250000.50"),
                "paid_at": dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC),
            },
            None,
        )
    )
    return found


def rows(prefix: str) -> list[tuple]:
    return sorted(
        (key.removeprefix(prefix), *values)
        for key, *values in Notification.objects.filter(
            idempotency_key__startswith=prefix
        ).values_list("idempotency_key", *COMPARED)
    )


def test_both_ways_write_the_same_rows_for_the_same_input(clients):
    related = clients[0]  # any model: a generic link
    for index, (client, event, context, channels) in enumerate(cases(clients)):
        notification_send(
            client=client,
            event=event,
            context=context,
            channels=channels,
            related=related,
            idempotency_key=f"one:{index}",
        )
    notifications_send_bulk(
        notices=[
            Notice(
                client_id=client.pk,
                event=event,
                context=context,
                idempotency_key=f"bulk:{index}",
                related=(type(related), related.pk),
                channels=channels,
            )
            for index, (client, event, context, channels) in enumerate(cases(clients))
        ]
    )

    one, bulk = rows("one:"), rows("bulk:")
    assert len(one) > len(cases(clients))  # some events went by email and SMS
    assert bulk == one
    assert {row[5] for row in one} == {"fr", "en"}  # both languages were compared


def test_a_key_used_already_writes_nothing_more_either_way(email_client):
    context = dict(EVENTS["final_notice"].example)
    [email] = notification_send(
        client=email_client,
        event="final_notice",
        context=context,
        channels=["email"],
        idempotency_key="final_notice:1",
    )

    ids = notifications_send_bulk(
        notices=[
            Notice(
                client_id=email_client.pk,
                event="final_notice",
                context=context,
                idempotency_key="final_notice:1",
                related=(type(email_client), email_client.pk),
            )
        ]
    )

    # The email existed: only the SMS is new.
    assert list(
        Notification.objects.filter(idempotency_key="final_notice:1")
        .order_by("pk")
        .values_list("channel", flat=True)
    ) == ["email", "sms"]
    assert ids == [Notification.objects.get(idempotency_key="final_notice:1", channel="sms").pk]
    assert (
        notifications_send_bulk(
            notices=[
                Notice(
                    client_id=email_client.pk,
                    event="final_notice",
                    context=context,
                    idempotency_key="final_notice:1",
                    related=(type(email_client), email_client.pk),
                )
            ]
        )
        == []
    )
    assert Notification.objects.filter(idempotency_key="final_notice:1").count() == 2
    assert email.pk in Notification.objects.values_list("pk", flat=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"context": {"invoice_number": "FA-1"}},
            "Valeurs incorrectes pour l'événement « reminder » (manquantes",
        ),
        ({"channels": ["fax"]}, "Canal inconnu : fax."),
        ({"event": "birthday"}, "Événement inconnu « birthday »."),
    ],
)
def test_both_ways_refuse_the_same_mistakes_and_write_nothing(sms_client, change, message):
    call = {"event": "reminder", "context": dict(EVENTS["reminder"].example), "channels": None}
    call.update(change)

    with pytest.raises(ApplicationError) as one:
        notification_send(client=sms_client, idempotency_key="one", **call)
    with pytest.raises(ApplicationError) as bulk:
        notifications_send_bulk(
            notices=[
                Notice(
                    client_id=sms_client.pk,
                    idempotency_key="bulk",
                    related=(type(sms_client), sms_client.pk),
                    **call,
                )
            ]
        )

    assert str(one.value.message).startswith(message)
    assert bulk.value.message == one.value.message
    assert not Notification.objects.exists()


def test_a_missing_template_is_the_same_error_either_way(sms_client):
    MessageTemplate.objects.filter(event="reconnection", channel="sms", language="fr").delete()
    context = dict(EVENTS["reconnection"].example)

    with pytest.raises(ApplicationError) as one:
        notification_send(client=sms_client, event="reconnection", context=context)
    with pytest.raises(ApplicationError) as bulk:
        notifications_send_bulk(
            notices=[
                Notice(
                    client_id=sms_client.pk,
                    event="reconnection",
                    context=context,
                    idempotency_key="x",
                    related=(type(sms_client), sms_client.pk),
                )
            ]
        )

    assert bulk.value.message == one.value.message
    assert not Notification.objects.exists()


def test_the_bulk_way_costs_the_same_queries_for_2_or_40_messages(clients):
    def queries(count: int) -> int:
        notices = [
            Notice(
                client_id=clients[index % len(clients)].pk,
                event="reminder",
                context=dict(EVENTS["reminder"].example),
                idempotency_key=f"{count}:{index}",
                related=(type(clients[0]), clients[0].pk),
            )
            for index in range(count)
        ]
        with CaptureQueriesContext(connection) as captured:
            notifications_send_bulk(notices=notices)
        return len(captured.captured_queries)

    queries(1)  # content types and templates looked up once per process
    assert queries(2) == queries(40)
