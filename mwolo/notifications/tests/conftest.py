import datetime as dt

import pytest

from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.crm.tests.factories import ClientFactory
from mwolo.geo.tests.factories import commune

# A moment to send at; retries are computed from it (never from the wall clock).
T0 = dt.datetime(2026, 12, 16, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe", phone="+243815550000")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )


@pytest.fixture
def sms_client(gombe):
    """Prefers SMS (the default), French (the default), no email address."""
    return ClientFactory(
        agency=gombe, first_name="Marie", last_name="Kabila", phone="+243812345678"
    )


@pytest.fixture
def email_client(gombe):
    return ClientFactory(
        agency=gombe,
        first_name="Jean",
        last_name="Mukendi",
        email="jean.mukendi@example.cd",
        preferred_channel="email",
        phone="+243998765432",
    )
