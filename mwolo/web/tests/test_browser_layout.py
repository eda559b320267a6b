"""Every public page at phone and desktop width: nothing wider than the screen."""

import datetime as dt
from pathlib import Path

import pytest
from playwright.sync_api import Page

from mwolo.agencies.models import OpeningHours
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.testing.browser import assert_no_external_requests
from mwolo.geo.tests.factories import commune
from mwolo.web.tests.browser_steps import fill_the_form

pytestmark = pytest.mark.browser

WIDTHS = {"phone": 390, "desktop": 1280}


def agencies() -> list:
    places = [
        ("KIN-GOM", "Agence Gombe", commune("Gombe")),
        ("KIN-LIM", "Agence Limete", commune("Limete")),
        ("LSH-CTR", "Agence Lubumbashi Centre", commune("Kampemba", "Lubumbashi")),
        ("GOM-CTR", "Agence Goma", commune("Goma", "Goma")),
    ]
    created = []
    for code, name, place in places:
        agency = AgencyFactory(code=code, name=name, commune=place)
        for weekday in range(5):
            for opens_at, closes_at in (("08:00", "12:00"), ("13:30", "16:30")):
                OpeningHours.objects.create(
                    agency=agency,
                    weekday=weekday,
                    opens_at=dt.time.fromisoformat(opens_at),
                    closes_at=dt.time.fromisoformat(closes_at),
                )
        OpeningHours.objects.create(
            agency=agency, weekday=5, opens_at=dt.time(8), closes_at=dt.time(12)
        )
        created.append(agency)
    return created


def snap(page: Page, folder: Path, name: str) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} is {overflow}px wider than the screen"
    page.screenshot(path=folder / f"{name}.png", full_page=True)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("device", WIDTHS)
def test_public_pages_fit_the_screen(
    page, live_server, requested_urls, screenshots, device, language
):
    page.set_viewport_size({"width": WIDTHS[device], "height": 844})
    gombe = agencies()[0]
    page.goto("/")
    if language != "fr":
        page.locator(f".lang-switch button[value={language}]").click()
        page.wait_for_load_state()
    suffix = f"{device}-{language}"
    snap(page, screenshots, f"home-{suffix}")

    page.goto("/raccordement/")
    snap(page, screenshots, f"form-{suffix}")

    fill_the_form(page, gombe, phone="0812", last_name="", latitude="48,85", longitude="2,35")
    page.check("input[name=kind][value=company]")
    page.locator("form.form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator(".errorlist").count() >= 3
    snap(page, screenshots, f"form-errors-{suffix}")

    page.check("input[name=kind][value=person]")
    fill_the_form(page, gombe)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url("**/raccordement/merci/**")
    snap(page, screenshots, f"thanks-{suffix}")
    assert_no_external_requests(requested_urls, live_server.url)
