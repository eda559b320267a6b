"""Pytest fixtures for tests that send messages to clients, over real sockets.

Loaded by the root ``conftest.py`` (``pytest_plugins``).

- ``smtp_sink``: the SMTP sink of ``make run`` (``sandbox.smtp``) on a free port, in a
  thread, with Django's email settings pointed at it for the test (SMTP backend, no TLS);
  ``smtp_sink.messages()`` returns what arrived as parsed ``email.message.EmailMessage``
  objects (``iter_attachments()`` gives the files), oldest first.
- ``sms_gateway``: the Africa's Talking fake (``sandbox.sms``) on a free port, with the SMS
  settings pointed at it (username ``mwolo-test``, key ``test-api-key``);
  ``sms_gateway.messages`` lists the SMS it accepted, ``reject(number, status_code)`` and
  ``fail_next(http_status, times)`` make it refuse.
- Default message templates come back after a flush (transactional tests, live servers),
  as the migrations loaded them.
"""

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps

from sandbox.sms import FakeAfricasTalking
from sandbox.smtp import SmtpSink

_templates_migration = importlib.import_module(
    "mwolo.notifications.migrations.0002_default_templates"
)
SMS_USERNAME = "mwolo-test"
SMS_API_KEY = "test-api-key"


@pytest.fixture
def smtp_sink(settings, tmp_path: Path) -> Iterator[SmtpSink]:
    sink = SmtpSink(folder=tmp_path / "mail", quiet=True).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = sink.host
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    sink.stop()


@pytest.fixture
def sms_gateway(settings) -> Iterator[FakeAfricasTalking]:
    gateway = FakeAfricasTalking(username=SMS_USERNAME, api_key=SMS_API_KEY, quiet=True).start()
    settings.AFRICASTALKING_USERNAME = SMS_USERNAME
    settings.AFRICASTALKING_API_KEY = SMS_API_KEY
    settings.AFRICASTALKING_API_URL = gateway.url
    settings.AFRICASTALKING_SENDER_ID = "MWOLO"
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _message_templates_after_flush(request):
    marker = request.node.get_closest_marker("django_db")
    if (
        (marker is not None and marker.kwargs.get("transaction", False))
        or "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
    ):
        request.getfixturevalue("transactional_db")
        _templates_migration.load_default_templates(apps)
