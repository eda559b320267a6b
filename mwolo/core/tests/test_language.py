"""French first: the browser's language does not switch the platform to English."""

import pytest
from django.urls import reverse

from mwolo.accounts.tests.factories import EmployeeFactory

pytestmark = pytest.mark.django_db


def test_an_english_browser_still_gets_french(client):
    page = client.get(reverse("admin:login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert page["Content-Language"] == "fr"
    assert "Bienvenue" in page.content.decode()


def test_the_language_switch_gives_english(client):
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = client.get(reverse("admin:login"))
    assert page["Content-Language"] == "en"
    assert "Welcome to the Mwolo Energy back office" in page.content.decode()


def test_a_user_who_prefers_english_gets_english(client):
    client.force_login(EmployeeFactory(preferred_language="en"))
    page = client.get(reverse("admin:index"))
    assert page["Content-Language"] == "en"


def test_times_show_in_the_agencys_zone_for_staff_and_clients(client):
    from django.utils import timezone

    from mwolo.accounts.tests.factories import PortalUserFactory
    from mwolo.agencies.tests.factories import AgencyFactory
    from mwolo.crm.tests.factories import ClientFactory
    from mwolo.geo.tests.factories import address, commune

    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    portal_user = PortalUserFactory()
    ClientFactory(agency=lubumbashi, user=portal_user, **address("Kampemba", "Lubumbashi"))
    seen = {}

    for who, user in (
        ("employee", EmployeeFactory(agency=lubumbashi)),
        ("client", portal_user),
    ):
        client.force_login(user)
        response = client.get(reverse("admin:login"))
        seen[who] = response.wsgi_request.user.display_time_zone
    assert seen == {"employee": "Africa/Lubumbashi", "client": "Africa/Lubumbashi"}
    assert timezone.get_current_timezone_name() == "Africa/Kinshasa"  # restored after
