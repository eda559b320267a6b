"""Delivery over real sockets: SMTP to the sink, SMS to the Africa's Talking fake."""

import io
import socket

import pytest
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from mwolo.notifications import services
from mwolo.notifications.events import EVENTS
from mwolo.notifications.models import Notification
from mwolo.notifications.services import Attachment, notification_send

pytestmark = pytest.mark.django_db


def _invoice_pdf() -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "Facture FA-2026-000123 - 1 250 000,00 CDF")
    page.save()
    return buffer.getvalue()


def _deliver(notification: Notification) -> Notification:
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    return notification


def test_an_invoice_email_with_its_pdf_arrives_over_smtp(email_client, smtp_sink):
    pdf = _invoice_pdf()
    [email, sms] = notification_send(
        client=email_client,
        event="invoice_issued",
        context=dict(EVENTS["invoice_issued"].example),
        attachments=[Attachment("FA-2026-000123.pdf", pdf)],
    )

    assert _deliver(email).status == Notification.Status.SENT
    [received] = smtp_sink.messages()
    assert received["To"] == "jean.mukendi@example.cd"
    assert received["Subject"] == "Votre facture FA-2026-000123 – Mwolo Energy"
    assert received["Message-ID"] == email.provider_message_id
    assert received["Reply-To"] == email_client.agency.email
    text = received.get_body(preferencelist=("plain",)).get_content()
    assert "Montant à payer : 1 250 000,00 CDF" in text
    assert "Référence de paiement : MW-0001234-2611" in text
    [attachment] = received.iter_attachments()
    assert attachment.get_filename() == "FA-2026-000123.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf
    reader = PdfReader(io.BytesIO(attachment.get_content()))
    assert "FA-2026-000123" in reader.pages[0].extract_text()
    # The SMS summary carries no attachment.
    assert not sms.attachments.exists()


def test_a_retried_email_sends_the_same_attachment(email_client, smtp_sink, settings):
    [email] = notification_send(
        client=email_client,
        event="invoice_issued",
        context=dict(EVENTS["invoice_issued"].example),
        attachments=[Attachment("FA-2026-000123.pdf", b"%PDF-1.4 stored")],
        channels=["email"],
    )
    settings.EMAIL_PORT = _closed_port()
    assert _deliver(email).status == Notification.Status.FAILED

    settings.EMAIL_PORT = smtp_sink.port
    Notification.objects.filter(pk=email.pk).update(next_attempt_at=email.created_at)
    assert _deliver(email).status == Notification.Status.SENT
    [received] = smtp_sink.messages()
    assert [a.get_content() for a in received.iter_attachments()] == [b"%PDF-1.4 stored"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_smtp_server_is_retried_later(email_client, smtp_sink, settings):
    settings.EMAIL_PORT = _closed_port()
    [email] = notification_send(
        client=email_client, event="reminder", context=dict(EVENTS["reminder"].example)
    )

    email = _deliver(email)

    assert email.status == Notification.Status.FAILED
    assert email.attempts == 1
    assert "SMTP" in email.last_error
    assert email.next_attempt_at is not None
    assert smtp_sink.messages() == []


def _sms(client, event="prepaid_token"):
    [sms] = notification_send(client=client, event=event, context=dict(EVENTS[event].example))
    return sms


def test_an_sms_goes_through_africas_talking(sms_client, sms_gateway):
    sms = _deliver(_sms(sms_client))

    [sent] = sms_gateway.messages
    assert sent.to == "+243812345678"
    assert sent.sender == "MWOLO"
    assert sent.message == (
        "Mwolo Energy: code 123 456 789 pour le compteur SIM-000123: 150 kWh "
        "(45 000,00 CDF). Tapez ce code sur le compteur."
    )
    assert sms.status == Notification.Status.SENT
    assert sms.provider_message_id == sent.message_id
    assert sms.provider_message_id.startswith("ATXid_")


def test_a_number_the_gateway_rejects_is_given_up_at_once(sms_client, sms_gateway):
    sms_gateway.reject("+243812345678", 403)

    sms = _deliver(_sms(sms_client))

    assert sms.status == Notification.Status.GIVEN_UP
    assert sms.attempts == 1
    assert "403 InvalidPhoneNumber" in sms.last_error
    assert sms_gateway.messages == []


def test_an_empty_balance_at_the_gateway_is_retried(sms_client, sms_gateway):
    sms_gateway.reject("+243812345678", 405)

    sms = _deliver(_sms(sms_client))

    assert sms.status == Notification.Status.FAILED
    assert "InsufficientBalance" in sms.last_error


def test_a_gateway_server_error_is_retried_and_then_sent(sms_client, sms_gateway):
    sms_gateway.fail_next(500)
    sms = _deliver(_sms(sms_client))
    assert sms.status == Notification.Status.FAILED
    assert "HTTP 500" in sms.last_error

    later = sms.next_attempt_at
    services.notification_deliver(notification_id=sms.pk, now=later)
    sms.refresh_from_db()

    assert sms.status == Notification.Status.SENT
    assert sms.attempts == 2
    assert len(sms_gateway.messages) == 1


def test_a_wrong_api_key_is_retried_until_an_operator_fixes_it(sms_client, sms_gateway, settings):
    settings.AFRICASTALKING_API_KEY = "wrong-key"

    sms = _deliver(_sms(sms_client))

    assert sms.status == Notification.Status.FAILED
    assert "HTTP 401" in sms.last_error


def test_an_unreachable_gateway_is_retried(sms_client, sms_gateway, settings):
    settings.AFRICASTALKING_API_URL = f"http://127.0.0.1:{_closed_port()}"

    sms = _deliver(_sms(sms_client))

    assert sms.status == Notification.Status.FAILED
    assert "unreachable" in sms.last_error
