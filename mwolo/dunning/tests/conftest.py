import importlib

import pytest
from django.apps import apps

from mwolo.billing.tests.factories import tariff
from mwolo.crm.models import SiteCategory

_policies = importlib.import_module("mwolo.dunning.migrations.0002_default_policies")
_holidays = importlib.import_module("mwolo.dunning.migrations.0003_public_holidays")
_gaps = importlib.import_module("mwolo.dunning.migrations.0005_step_gap_at_least_one_day")


@pytest.fixture(autouse=True)
def _dunning_defaults_after_flush(request):
    """Transactional tests start from a flushed database: the default policies and the
    holidays come back, as the migrations loaded them."""
    marker = request.node.get_closest_marker("django_db")
    if (marker is not None and marker.kwargs.get("transaction", False)) or (
        "transactional_db" in request.fixturenames
    ):
        request.getfixturevalue("transactional_db")
        _policies.seed(apps, None)
        _gaps.at_least_one_day(apps, None)
        _holidays.seed(apps, None)


@pytest.fixture
def residential(db):
    """2 500 CDF a month; the first 50 kWh at 100 CDF, the rest at 200 CDF; VAT 16 %."""
    return tariff()


@pytest.fixture
def public_tariff(db):
    return tariff(code="PUB-2026", category=SiteCategory.PUBLIC)
