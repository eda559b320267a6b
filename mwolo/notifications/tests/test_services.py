"""Sending a message: channels, language, idempotency, the outbox's life and its retries."""

import datetime as dt
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import transaction

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.crm.tests.factories import ClientFactory, SiteFactory
from mwolo.notifications import services
from mwolo.notifications.events import EVENTS
from mwolo.notifications.models import Notification, NotificationAttachment
from mwolo.notifications.selectors import related_messages
from mwolo.notifications.services import Attachment, notification_send

from .conftest import T0
from .factories import NotificationFactory

pytestmark = pytest.mark.django_db


def _send(client, event="reminder", **kwargs):
    return notification_send(
        client=client, event=event, context=dict(EVENTS[event].example), **kwargs
    )


def _status(notification):
    notification.refresh_from_db()
    return notification.status


# --- Channels and language ------------------------------------------------------------------


def test_a_client_who_prefers_sms_gets_an_sms_in_french(sms_client):
    [sms] = _send(sms_client)

    assert sms.channel == "sms"
    assert sms.recipient == "+243812345678"
    assert sms.language == "fr"
    assert sms.body.startswith("Mwolo Energy: rappel. La facture FA-2026-000123")
    assert sms.subject == ""
    assert sms.status == Notification.Status.QUEUED


def test_a_client_who_prefers_email_gets_an_email_in_their_language(email_client):
    email_client.preferred_language = "en"
    email_client.save()

    [email] = _send(email_client)

    assert email.channel == "email"
    assert email.recipient == "jean.mukendi@example.cd"
    assert email.subject == "Reminder: invoice FA-2026-000123 is unpaid"
    assert email.body.startswith("Dear Jean Mukendi")


def test_urgent_events_also_go_by_sms_to_clients_who_read_email(email_client):
    messages = _send(email_client, event="final_notice")

    assert [m.channel for m in messages] == ["email", "sms"]
    assert messages[1].body.startswith("Mwolo Energy: DERNIER AVIS.")


def test_without_an_email_address_the_message_goes_by_sms(gombe):
    # Preferring email without an address is refused by the form, but may be in old data.
    client = ClientFactory(agency=gombe, preferred_channel="email", email="")

    assert [m.channel for m in _send(client)] == ["sms"]
    assert [m.channel for m in _send(client, event="final_notice")] == ["sms"]
    assert [m.channel for m in _send(client, channels=["email"])] == ["sms"]


def test_the_caller_may_ask_for_both_channels(sms_client, email_client):
    assert [m.channel for m in _send(email_client, channels=["sms", "email"])] == [
        "email",
        "sms",
    ]
    assert [m.channel for m in _send(sms_client, channels=["sms", "email"])] == ["sms"]


def test_the_common_values_come_from_the_client_and_the_agency(email_client):
    [email] = _send(email_client)

    assert "Numéro client : " + email_client.number in email.body
    assert email.body.endswith("L'équipe Mwolo Energy\nAgence Gombe · +243 815 550 000")


# --- Bad input writes nothing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "invoice_paid"}, "Événement inconnu « invoice_paid »"),
        ({"context": {"invoice_number": "FA-1"}}, "manquantes : amount_due"),
        (
            {"context": {**EVENTS["reminder"].example, "amount": Decimal(1)}},
            "inattendues : amount",
        ),
        ({"channels": ["whatsapp"]}, "Canal inconnu : whatsapp"),
        (
            {"attachments": [Attachment("../secret.pdf", b"%PDF")], "channels": ["email"]},
            "Nom de pièce jointe invalide",
        ),
    ],
)
def test_bad_input_is_refused_clearly_and_writes_nothing(email_client, kwargs, message):
    arguments = {
        "client": email_client,
        "event": "reminder",
        "context": dict(EVENTS["reminder"].example),
        **kwargs,
    }

    with pytest.raises(ApplicationError) as error:
        notification_send(**arguments)

    assert message in error.value.message
    assert not Notification.objects.exists()
    assert not NotificationAttachment.objects.exists()


def test_a_missing_template_is_an_error_and_writes_nothing(sms_client):
    from mwolo.notifications.models import MessageTemplate

    MessageTemplate.objects.filter(event="reminder", channel="sms", language="fr").delete()

    with pytest.raises(ApplicationError, match="Aucun modèle sms en fr"):
        _send(sms_client)
    assert not Notification.objects.exists()


# --- Idempotency and the caller's transaction -----------------------------------------------


def test_the_same_idempotency_key_sends_nothing_twice(
    email_client, django_capture_on_commit_callbacks
):
    key = "reminder:42:2"
    with django_capture_on_commit_callbacks(execute=True):
        first = _send(email_client, event="final_notice", idempotency_key=key)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = _send(email_client, event="final_notice", idempotency_key=key)

    assert [n.pk for n in second] == [n.pk for n in first]
    assert callbacks == []
    assert Notification.objects.count() == 2
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 2


class RollbackError(Exception):
    pass


def _send_then_fail(client):
    with transaction.atomic():
        _send(client)
        raise RollbackError


def test_nothing_is_sent_for_a_transaction_that_rolls_back(
    email_client, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RollbackError),
    ):
        _send_then_fail(email_client)

    assert callbacks == []
    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_a_message_is_linked_to_what_it_is_about(sms_client, gombe):
    site = SiteFactory(agency=gombe, client=sms_client)
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    [sms] = notification_send(
        client=sms_client,
        event="reconnection",
        context={"site_reference": site.reference},
        related=site,
    )

    assert sms.related == site
    assert list(related_messages(obj=site, user=manager)) == [sms]


# --- Delivery and the outbox ----------------------------------------------------------------


def test_an_email_leaves_with_its_attachment_and_is_marked_sent(
    email_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        [email] = _send(
            email_client,
            event="invoice_issued",
            channels=["email"],
            attachments=[Attachment("FA-2026-000123.pdf", b"%PDF-1.4 invoice")],
        )

    [sent] = mail.outbox
    assert sent.to == ["jean.mukendi@example.cd"]
    assert sent.subject == "Votre facture FA-2026-000123 – Mwolo Energy"
    assert sent.attachments == [("FA-2026-000123.pdf", b"%PDF-1.4 invoice", "application/pdf")]
    assert sent.reply_to == [email_client.agency.email]
    email.refresh_from_db()
    assert email.status == Notification.Status.SENT
    assert email.attempts == 1
    assert email.provider_message_id == sent.extra_headers["Message-ID"]
    assert email.sent_at is not None
    assert email.next_attempt_at is None


def test_without_a_gateway_an_sms_is_logged_and_marked_sent(
    sms_client, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level("INFO", logger="mwolo.notifications.delivery")
    with django_capture_on_commit_callbacks(execute=True):
        [sms] = _send(sms_client)

    sms.refresh_from_db()
    assert sms.status == Notification.Status.SENT
    assert sms.provider_message_id.startswith("console-")
    assert "SMS to +243812345678" in caplog.text


def test_a_message_already_sent_is_not_sent_again(email_client):
    [email] = _send(email_client)
    services.notification_deliver(notification_id=email.pk)

    assert services.notification_deliver(notification_id=email.pk) is None
    assert len(mail.outbox) == 1


# --- Retries with backoff, from --as-of -----------------------------------------------------


def _deliver_as_of(moment: dt.datetime) -> tuple[int, int, int]:
    """``manage.py send_notifications --as-of moment``: (sent, failed, given up)."""
    out = StringIO()
    call_command("send_notifications", as_of=moment.isoformat(), stdout=out)
    found = re.fullmatch(
        r"(\d+) sent, (\d+) failed \(will retry\), (\d+) given up\.\n", out.getvalue()
    )
    assert found, out.getvalue()
    sent, failed, given_up = map(int, found.groups())
    return sent, failed, given_up


def test_failed_sms_are_retried_with_backoff_then_given_up(sms_client, sms_gateway):
    sms_gateway.fail_next(503, times=10)
    [sms] = _send(sms_client)
    Notification.objects.filter(pk=sms.pk).update(next_attempt_at=T0, created_at=T0)

    moment = T0
    for attempt, delay in enumerate(services.RETRY_DELAYS, start=1):
        assert _deliver_as_of(moment) == (0, 1, 0)
        sms.refresh_from_db()
        assert (sms.status, sms.attempts) == (Notification.Status.FAILED, attempt)
        assert sms.next_attempt_at == moment + delay
        assert "HTTP 503" in sms.last_error
        # Not due a second before the next attempt: nothing is tried.
        assert _deliver_as_of(moment + delay - dt.timedelta(seconds=1)) == (0, 0, 0)
        moment += delay

    assert _deliver_as_of(moment) == (0, 0, 1)
    sms.refresh_from_db()
    assert (sms.status, sms.attempts) == (Notification.Status.GIVEN_UP, services.MAX_ATTEMPTS)
    assert sms.next_attempt_at is None
    assert _deliver_as_of(moment + dt.timedelta(days=1)) == (0, 0, 0)
    assert sms_gateway.messages == []


def test_a_retry_that_succeeds_sends_once_and_running_again_sends_nothing(sms_client, sms_gateway):
    sms_gateway.fail_next(500)
    [sms] = _send(sms_client)
    Notification.objects.filter(pk=sms.pk).update(next_attempt_at=T0)

    assert _deliver_as_of(T0) == (0, 1, 0)
    assert _status(sms) == Notification.Status.FAILED
    later = T0 + dt.timedelta(minutes=1)
    assert _deliver_as_of(later) == (1, 0, 0)
    assert _deliver_as_of(later) == (0, 0, 0)

    assert len(sms_gateway.messages) == 1
    sms.refresh_from_db()
    assert sms.sent_at == later
    assert sms.last_error == ""


def test_a_claim_whose_worker_vanished_is_taken_over_after_its_lease(sms_client):
    stuck = NotificationFactory(
        client=sms_client,
        status=Notification.Status.SENDING,
        attempts=1,
        next_attempt_at=T0 + services.SENDING_LEASE,
    )

    assert _deliver_as_of(T0 + dt.timedelta(minutes=5)) == (0, 0, 0)
    assert _deliver_as_of(T0 + services.SENDING_LEASE) == (1, 0, 0)
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == (Notification.Status.SENT, 2)


@pytest.mark.parametrize("as_of", ["demain", "2026-12-16T09:00", "2026-13-45T09:00:00+01:00"])
def test_send_notifications_refuses_a_bad_as_of(as_of):
    with pytest.raises(CommandError, match="--as-of"):
        call_command("send_notifications", as_of=as_of)


# --- Staff's "retry now" --------------------------------------------------------------------


def test_retry_now_sends_a_given_up_message_to_the_corrected_number(
    sms_client, gombe, sms_gateway, django_capture_on_commit_callbacks
):
    given_up = NotificationFactory(
        client=sms_client,
        recipient="+243810000000",
        status=Notification.Status.GIVEN_UP,
        attempts=services.MAX_ATTEMPTS,
        next_attempt_at=None,
    )
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    with django_capture_on_commit_callbacks(execute=True):
        queued = services.notifications_retry(notification_ids=[given_up.pk], actor=manager)

    assert queued == 1
    given_up.refresh_from_db()
    assert given_up.status == Notification.Status.SENT
    assert [m.to for m in sms_gateway.messages] == ["+243812345678"]


def test_retry_now_leaves_sent_messages_and_other_agencies_alone(sms_client, lubumbashi):
    sent = NotificationFactory(client=sms_client, status=Notification.Status.SENT)
    failed = NotificationFactory(client=sms_client, status=Notification.Status.FAILED)
    foreign_manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=lubumbashi)
    cashier = EmployeeFactory(role=Role.CASHIER, agency=sms_client.agency)

    assert (
        services.notifications_retry(notification_ids=[sent.pk, failed.pk], actor=foreign_manager)
        == 0
    )
    with pytest.raises(ApplicationError):
        services.notifications_retry(notification_ids=[failed.pk], actor=cashier)
    assert _status(failed) == Notification.Status.FAILED
    assert _status(sent) == Notification.Status.SENT
