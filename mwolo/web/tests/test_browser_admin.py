"""The back office (Jazzmin) in Chromium: every asset comes from our own server (no CDN)."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from mwolo.accounts.tests.factories import UserFactory
from mwolo.core.testing.browser import assert_no_external_requests, external_requests
from mwolo.crm.tests.factories import ClientFactory

pytestmark = pytest.mark.browser

PASSWORD = "motdepasse-solide-2026"  # UserFactory's


def test_the_admin_loads_nothing_from_other_hosts(page, live_server, requested_urls):
    UserFactory(username="direction", is_staff=True, is_superuser=True)
    ClientFactory(first_name="Merveille", last_name="Tshibangu")

    page.goto(reverse("admin:login"), wait_until="networkidle")
    assert_no_external_requests(requested_urls, live_server.url)

    page.fill("input[name=username]", "direction")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form [type=submit]").click()
    page.wait_for_url(f"{live_server.url}{reverse('admin:index')}")
    page.wait_for_load_state("networkidle")
    expect(page.locator("body")).to_contain_text("Mwolo Energy")
    assert_no_external_requests(requested_urls, live_server.url)

    page.goto(reverse("admin:crm_client_changelist"), wait_until="networkidle")
    expect(page.locator("#result_list")).to_contain_text("Tshibangu")
    assert_no_external_requests(requested_urls, live_server.url)
    # The recording works: the theme's own stylesheets and scripts were requested.
    assert any("/static/vendor/" in url for url in requested_urls)


def test_an_external_request_would_be_caught(page, live_server, requested_urls):
    """The guard itself: a page that asks a CDN is reported (and the request aborted)."""
    page.goto(reverse("web:home"))
    page.set_content('<link rel="stylesheet" href="https://cdn.example.com/x.css">')
    page.wait_for_load_state("networkidle")

    assert external_requests(requested_urls, live_server.url) == ["https://cdn.example.com/x.css"]
