"""Pytest fixtures that drive Debian's Chromium through Playwright against ``live_server``.

Loaded by the root ``conftest.py`` (``pytest_plugins``). Never downloads a browser: the
machine has no internet, and CI installs ``chromium`` with apt-get.

- ``browser``: one Chromium for the whole session (per xdist worker);
- ``page``: a fresh browser context and page for one test, whose every request URL is
  appended to ``requested_urls``; requests to any other host than the live server are
  aborted at once (and still recorded), so a forgotten CDN link fails fast and visibly;
- ``browser_context_options``: keyword arguments of that context (viewport, JavaScript
  off…); override the fixture in a test module to change them;
- ``assert_no_external_requests(urls, live_server_url)``: the check that goes with it;
- ``screenshots``: the folder for a test's screenshots: ``$MWOLO_SCREENSHOTS_DIR`` when set
  (for a person to look at), else the test's temporary directory.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright
from pytest_django.live_server_helper import LiveServer

CHROMIUM = "/usr/bin/chromium"
# Without these Chromium stalls on refused connections to Google services (no internet).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 15_000
# Schemes that never leave the browser.
_LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-error"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an asyncio loop in this thread for the whole session;
    # Django would otherwise refuse every ORM call made by the test itself.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MWOLO_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def requested_urls() -> list[str]:
    """Every URL the ``page`` fixture's browser context requested, in order."""
    return []


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def external_requests(urls: list[str], live_server_url: str) -> list[str]:
    """The URLs that went to another host than the live server."""
    allowed = _origin(live_server_url)
    return [
        url
        for url in urls
        if urlsplit(url).scheme not in _LOCAL_SCHEMES and _origin(url) != allowed
    ]


def assert_no_external_requests(urls: list[str], live_server_url: str) -> None:
    outside = external_requests(urls, live_server_url)
    if outside:
        pytest.fail(f"requests to other hosts than {live_server_url}: {outside}")


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def page(
    browser: Browser,
    live_server: LiveServer,
    requested_urls: list[str],
    browser_context_options: dict[str, Any],
) -> Iterator[Page]:
    """A page in a fresh context (no cookies) whose relative URLs go to the live server."""
    server_url = live_server.url
    context = browser.new_context(
        **{"base_url": server_url, "locale": "fr-CD", **browser_context_options}
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.on("request", lambda request: requested_urls.append(request.url))

    def leaves_the_server(url: str) -> bool:
        return urlsplit(url).scheme not in _LOCAL_SCHEMES and _origin(url) != _origin(server_url)

    def abort(route: Route) -> None:
        route.abort("blockedbyclient")

    context.route(leaves_the_server, abort)
    browser_page = context.new_page()
    try:
        yield browser_page
    finally:
        context.close()
