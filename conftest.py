"""Fixtures shared by the whole suite.

Reference data (provinces, localities) is loaded once per test database and again for
tests that flush the database (transactional tests, live servers). Role groups need nothing:
they are synced after every migrate and flush (``post_migrate``).
"""

import importlib
import io
import shutil

import pytest
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.core.servers.basehttp import WSGIServer

pytest_plugins = [
    "mwolo.core.testing.browser",
    "mwolo.core.testing.mqtt",
    "mwolo.core.testing.operators",
    "mwolo.core.testing.notifications",
]

# Operators send callbacks in bursts (fifty copies at once in a test): Django's listen
# backlog of 10 makes the live server reset the connections beyond it under load.
WSGIServer.request_queue_size = 128

_provinces_migration = importlib.import_module("mwolo.geo.migrations.0002_drc_provinces")


def _load_reference_data() -> None:
    _provinces_migration.load_provinces(apps, None)
    call_command("import_localities", stdout=io.StringIO())


@pytest.fixture(scope="session", autouse=True)
def _uploads_removed_after_the_run():
    yield
    for folder in (settings.MEDIA_ROOT, settings.PRIVATE_MEDIA_ROOT):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Rate-limit counters live in the cache, which outlives each test's database."""
    cache.clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        _load_reference_data()


@pytest.fixture(autouse=True)
def _reference_data_after_flush(request):
    """Transactional tests start from a flushed database: reload what migrations loaded."""
    marker = request.node.get_closest_marker("django_db")
    marked_transactional = marker is not None and marker.kwargs.get("transaction", False)
    if (
        marked_transactional
        or "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
    ):
        request.getfixturevalue("transactional_db")
        _load_reference_data()
