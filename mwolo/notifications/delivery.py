"""Handing a message to the outside world: email through Django, SMS through a gateway.

Email goes through Django's email framework, so ``EMAIL_BACKEND`` decides: SMTP (the local
sink under ``make run``, a real server in production), an anymail provider, or locmem in
tests. SMS goes through Africa's Talking when ``AFRICASTALKING_USERNAME`` and
``AFRICASTALKING_API_KEY`` are set, else through the console backend (logged, and kept in
the outbox), so a development or test machine never texts anyone.

Africa's Talking is spoken over HTTP with httpx rather than through the ``africastalking``
SDK: the SDK hard-codes its host (no way to point it at a test server but patching a
private attribute), raises the same exception for a rejected request and a server error
(we must tell "retry" from "give up"), and takes a JSON reply for text when the content
type carries a charset. See docs/notifications.md.

Every failure is a ``DeliveryError`` saying whether trying again later may succeed.
"""

import logging
import smtplib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import make_msgid, parseaddr

import httpx
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


# --- Email --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email, e.g. ``Attachment("FA-2026-000123.pdf", pdf_bytes)``."""

    filename: str
    content: bytes
    content_type: str = "application/pdf"


def email_send(
    *,
    to: str,
    subject: str,
    body: str,
    files: Sequence[Attachment] = (),
    reply_to: str = "",
) -> str:
    """Send a plain-text email; return its Message-ID. Raises ``DeliveryError``."""
    # Our own Message-ID, in the sender's domain: the outbox keeps it to trace the email.
    sender_domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2]
    message_id = make_msgid(domain=sender_domain or "localhost")
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=[reply_to] if reply_to else None,
        headers={"Message-ID": message_id},
        connection=get_connection(fail_silently=False),
    )
    for file in files:
        message.attach(file.filename, file.content, file.content_type)
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as error:
        raise DeliveryError(f"recipient refused: {error.recipients}", retryable=False) from error
    except smtplib.SMTPDataError as error:
        # 5xx: the server refuses this message for good (size, content); 4xx: try later.
        raise DeliveryError(
            f"SMTP {error.smtp_code}: {error.smtp_error!r}", retryable=error.smtp_code < 500
        ) from error
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"SMTP: {error}", retryable=True) from error
    # Providers (anymail) report their own id; SMTP servers keep ours.
    status = getattr(message, "anymail_status", None)
    return str(getattr(status, "message_id", None) or message_id)


# --- SMS ----------------------------------------------------------------------------------


class SmsBackend:
    """Sends one SMS and returns the gateway's message id, or raises ``DeliveryError``."""

    def send(self, *, to: str, text: str) -> str:
        raise NotImplementedError


class ConsoleSmsBackend(SmsBackend):
    """No gateway configured: the message is logged; the outbox keeps its text."""

    def send(self, *, to: str, text: str) -> str:
        message_id = f"console-{uuid.uuid4().hex}"
        logger.info("SMS to %s (%s): %s", to, message_id, text)
        return message_id


# Africa's Talking per-recipient status codes. 100–102: accepted. The others: whether a
# later attempt may succeed (credit topped up, a route back, a gateway recovered) or not.
AT_ACCEPTED = frozenset({100, 101, 102})
AT_RETRYABLE = frozenset({401, 405, 407, 500, 501, 502})  # risk hold, balance, route, gateway
AT_STATUS_NAMES = {
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}


class AfricasTalkingSmsBackend(SmsBackend):
    """``POST {api_url}/version1/messaging`` of Africa's Talking's SMS API."""

    def __init__(
        self, *, username: str, api_key: str, api_url: str, sender_id: str, timeout: float
    ) -> None:
        self.username = username
        self.api_key = api_key
        self.url = api_url.rstrip("/") + "/version1/messaging"
        self.sender_id = sender_id
        self.timeout = timeout

    def send(self, *, to: str, text: str) -> str:
        form = {"username": self.username, "to": to, "message": text}
        if self.sender_id:
            form["from"] = self.sender_id
        try:
            response = httpx.post(
                self.url,
                data=form,
                headers={"apiKey": self.api_key, "Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as error:
            raise DeliveryError(f"Africa's Talking unreachable: {error}", retryable=True) from error
        if response.status_code >= 300:
            # Credentials (401/403) and rate limits (429) are fixed by waiting or by an
            # operator; other 4xx say this request itself is wrong.
            retryable = response.status_code >= 500 or response.status_code in {401, 403, 429}
            raise DeliveryError(
                f"Africa's Talking HTTP {response.status_code}: {response.text[:300]}",
                retryable=retryable,
            )
        try:
            data = response.json()["SMSMessageData"]
            recipients = data["Recipients"]
        except (ValueError, KeyError, TypeError) as error:
            raise DeliveryError(
                f"Africa's Talking: unexpected reply {response.text[:300]!r}", retryable=True
            ) from error
        if not recipients:
            # The whole request was refused (e.g. an unknown sender id): an operator's fix.
            raise DeliveryError(
                f"Africa's Talking: {data.get('Message', 'no recipient accepted')}",
                retryable=True,
            )
        recipient = recipients[0]
        code = int(recipient.get("statusCode", 0))
        if code in AT_ACCEPTED:
            return str(recipient.get("messageId", ""))
        name = recipient.get("status") or AT_STATUS_NAMES.get(code, "unknown")
        raise DeliveryError(
            f"Africa's Talking refused {to}: {code} {name}", retryable=code in AT_RETRYABLE
        )


def sms_backend() -> SmsBackend:
    """Africa's Talking when configured, the console otherwise (read at each call)."""
    if settings.AFRICASTALKING_USERNAME and settings.AFRICASTALKING_API_KEY:
        return AfricasTalkingSmsBackend(
            username=settings.AFRICASTALKING_USERNAME,
            api_key=settings.AFRICASTALKING_API_KEY,
            api_url=settings.AFRICASTALKING_API_URL,
            sender_id=settings.AFRICASTALKING_SENDER_ID,
            timeout=settings.NOTIFICATIONS_SMS_TIMEOUT,
        )
    return ConsoleSmsBackend()
