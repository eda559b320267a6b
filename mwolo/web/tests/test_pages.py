"""Public pages for anonymous visitors: languages, agencies, page basics, query counts."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from mwolo.agencies.models import OpeningHours
from mwolo.agencies.selectors import agencies_public_list, agency_opening_days
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.crm.tests.factories import ConnectionRequestFactory
from mwolo.geo.tests.factories import commune

pytestmark = pytest.mark.django_db

Weekday = OpeningHours.Weekday


def open_on(agency, days, opens_at: str, closes_at: str) -> None:
    for day in days:
        OpeningHours.objects.create(
            agency=agency,
            weekday=day,
            opens_at=dt.time.fromisoformat(opens_at),
            closes_at=dt.time.fromisoformat(closes_at),
        )


def usual_week(agency) -> None:
    """Weekdays 08:00–12:00 and 13:30–16:30, Saturday morning, closed on Sunday."""
    weekdays = [Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY]
    open_on(agency, [*weekdays, Weekday.FRIDAY], "08:00", "12:00")
    open_on(agency, [*weekdays, Weekday.FRIDAY], "13:30", "16:30")
    open_on(agency, [Weekday.SATURDAY], "08:00", "12:00")


@pytest.fixture
def thanks_url():
    request = ConnectionRequestFactory(reference="DR-2026-000007")
    return reverse("web:connection_request_thanks", args=[request.reference])


PAGES = ["/", "/raccordement/"]


@pytest.mark.parametrize("url", PAGES)
def test_pages_are_french_by_default_even_for_an_english_browser(client, url):
    AgencyFactory()
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    html = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Language"] == "fr"
    assert '<html lang="fr">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<title>" in html
    assert "· Mwolo Energy</title>" in html
    # The switch offers both languages, each named in its own language.
    assert "Français" in html
    assert "English" in html


@pytest.mark.parametrize("url", PAGES)
def test_pages_are_english_after_switching(client, url):
    AgencyFactory()
    switched = client.post(reverse("set_language"), {"language": "en", "next": url})
    assert switched.status_code == 302
    assert switched["Location"] == url

    response = client.get(url)

    html = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Language"] == "en"
    assert '<html lang="en">' in html
    assert "Apply for a connection" in html


def test_the_form_speaks_french_then_english(client):
    french = client.get("/raccordement/").content.decode()
    assert "Particulier" in french

    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.get("/raccordement/").content.decode()
    assert "Person" in english
    assert "Particulier" not in english


def test_the_thanks_page_renders_in_both_languages(client, thanks_url):
    french = client.get(thanks_url)
    assert french.status_code == 200
    assert '<html lang="fr">' in french.content.decode()

    client.post(reverse("set_language"), {"language": "en", "next": thanks_url})
    english = client.get(thanks_url).content.decode()
    assert '<html lang="en">' in english
    assert "What happens next" in english


def test_the_home_page_calls_to_apply_and_lists_active_agencies(client):
    gombe = AgencyFactory(
        code="KIN-GOM",
        name="Agence Gombe",
        address_line="1, boulevard du 30 Juin",
        phone="+243815550000",
        email="gombe@mwolo.cd",
    )
    usual_week(gombe)
    AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )
    AgencyFactory(code="KIN-OLD", name="Agence fermée", is_active=False)

    html = client.get("/").content.decode()

    assert f'href="{reverse("web:connection_request")}"' in html
    assert "Agence Gombe" in html
    assert "1, boulevard du 30 Juin" in html
    assert "Gombe, Kinshasa" in html
    assert "Kampemba, Lubumbashi, Haut-Katanga" in html  # commune, city, province
    assert '<a href="tel:+243815550000">+243 815 550 000</a>' in html
    assert '<a href="mailto:gombe@mwolo.cd">gombe@mwolo.cd</a>' in html
    assert "Agence fermée" not in html
    # Opening hours, days of equal hours merged, in French.
    assert "<dt>Lundi – Vendredi</dt>" in html
    assert '08:00–12:00</span><span class="slot">13:30–16:30' in html
    assert "<dt>Samedi</dt>" in html
    assert "<dt>Dimanche</dt>" in html


def test_the_home_page_without_agencies_says_so(client):
    response = client.get("/")

    assert response.status_code == 200
    assert 'class="empty"' in response.content.decode()


def test_the_home_page_takes_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    places = [commune("Gombe"), commune("Kampemba", "Lubumbashi"), commune("Goma", "Goma")]
    for number in range(8):
        agency = AgencyFactory(code=f"AG-{number}", commune=places[number % len(places)])
        usual_week(agency)

    # The agencies with their places, then all their opening hours.
    with django_assert_max_num_queries(2):
        response = client.get("/")

    assert response.status_code == 200
    assert response.content.decode().count('class="agency"') == 8


def test_pages_load_nothing_from_elsewhere_and_need_no_javascript(client, thanks_url):
    AgencyFactory()
    for url in [*PAGES, thanks_url]:
        html = client.get(url).content.decode()
        assert "<script" not in html
        for target in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert target.startswith(("/", "#", "tel:", "mailto:")), (url, target)


def test_opening_days_merge_equal_neighbours_and_show_closed_days():
    agency = AgencyFactory()
    usual_week(agency)
    open_on(agency, [Weekday.SUNDAY], "09:00", "11:00")

    [listed] = agencies_public_list()
    week = agency_opening_days(listed)

    assert [(days.first, days.last) for days in week] == [
        (Weekday.MONDAY, Weekday.FRIDAY),
        (Weekday.SATURDAY, Weekday.SATURDAY),
        (Weekday.SUNDAY, Weekday.SUNDAY),
    ]
    assert week[0].slots == (
        (dt.time(8), dt.time(12)),
        (dt.time(13, 30), dt.time(16, 30)),
    )


def test_an_agency_without_published_hours_has_no_week():
    AgencyFactory()

    [listed] = agencies_public_list()

    assert agency_opening_days(listed) == []


def test_a_closed_day_between_open_days_is_listed():
    agency = AgencyFactory()
    open_on(agency, [Weekday.MONDAY, Weekday.TUESDAY, Weekday.THURSDAY], "08:00", "16:00")

    week = agency_opening_days(agencies_public_list()[0])

    assert [(d.first, d.last, d.is_closed) for d in week] == [
        (Weekday.MONDAY, Weekday.TUESDAY, False),
        (Weekday.WEDNESDAY, Weekday.WEDNESDAY, True),
        (Weekday.THURSDAY, Weekday.THURSDAY, False),
        (Weekday.FRIDAY, Weekday.SUNDAY, True),
    ]
