"""A visitor in Chromium with JavaScript turned off: the public site must work without it."""

from typing import Any

import pytest
from playwright.sync_api import expect

from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.testing.browser import assert_no_external_requests
from mwolo.crm.models import ConnectionRequest
from mwolo.web.tests.browser_steps import fill_the_form

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    return {"java_script_enabled": False, "viewport": PHONE}


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


def test_a_visitor_applies_from_the_home_page_and_gets_a_reference(
    page, live_server, requested_urls, gombe
):
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#agencies")).to_contain_text("Agence Gombe")

    page.locator(".hero a.button-cta").click()
    page.wait_for_url("**/raccordement/")
    # Company fields only show for a company, by CSS alone.
    expect(page.locator("#id_company_name")).to_be_hidden()
    page.check("input[name=kind][value=company]")
    expect(page.locator("#id_company_name")).to_be_visible()
    page.check("input[name=kind][value=person]")

    fill_the_form(page, gombe)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url("**/raccordement/merci/**")

    request = ConnectionRequest.objects.get()
    assert request.status == ConnectionRequest.Status.PENDING
    assert (request.first_name, request.phone.as_e164) == ("Espérance", "+243812345678")
    expect(page.locator(".reference")).to_have_text(request.reference)
    assert page.url.endswith(f"/raccordement/merci/{request.reference}/")
    assert_no_external_requests(requested_urls, live_server.url)


def test_a_bad_phone_is_shown_next_to_the_field(page, live_server, gombe):
    page.goto("/raccordement/")
    fill_the_form(page, gombe, phone="0812")
    page.locator("form.form button[type=submit]").click()
    page.wait_for_load_state()

    phone_field = page.locator(".field", has=page.locator("#id_phone"))
    expect(phone_field.locator("#id_phone_error")).to_contain_text(
        "attendu +243 suivi de 9 chiffres"
    )
    expect(page.locator("#id_phone")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_phone")).to_have_value("0812")  # the answers are kept
    expect(page.locator("#id_first_name")).to_have_value("Espérance")
    # The summary at the top links to the field.
    expect(page.locator(".error-summary a[href='#id_phone']")).to_be_visible()
    assert not ConnectionRequest.objects.exists()


def test_the_language_switch_works_without_javascript(page, live_server, gombe):
    page.goto("/raccordement/")
    page.locator(".lang-switch button[value=en]").click()
    page.wait_for_url("**/raccordement/")

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("label[for=id_kind_0]")).to_contain_text("Person")
    expect(page.locator(".lang-switch button[value=en]")).to_have_attribute("aria-current", "true")
