"""The API documents itself: an OpenAPI schema without warnings, Swagger UI without a CDN."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import EmployeeFactory

pytestmark = pytest.mark.django_db

DOCUMENTED_PATHS = [
    "/api/geo/provinces/",
    "/api/geo/territories/",
    "/api/geo/communes/",
    "/api/agencies/",
    "/api/agencies/{id}/",
    "/api/clients/",
    "/api/clients/{id}/",
    "/api/sites/",
    "/api/sites/{id}/",
    "/api/connection-requests/",
    "/api/connection-requests/{id}/",
    "/api/connection-requests/{id}/approve/",
    "/api/connection-requests/{id}/reject/",
    "/api/me/",
    "/api/auth/token/",
    "/api/auth/token/refresh/",
]


def test_the_schema_is_served_to_anyone_and_lists_every_endpoint():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Mwolo Energy Systems API"
    assert set(DOCUMENTED_PATHS) <= set(schema["paths"])
    # No deletes anywhere; the public lists are read-only.
    assert not any("delete" in operations for operations in schema["paths"].values())
    assert set(schema["paths"]["/api/agencies/"]) == {"get"}


def test_the_schema_builds_without_warnings(tmp_path: Path):
    # The same check as `manage.py spectacular --validate --fail-on-warn`.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )

    assert "/api/clients/" in (tmp_path / "schema.yaml").read_text()


def test_swagger_ui_uses_only_assets_served_by_the_app():
    api = APIClient()

    response = api.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert api.get(asset).status_code == 200, asset
    assert "//cdn" not in html
    assert "https://" not in html


def test_the_api_root_lists_the_endpoints_to_logged_in_users():
    api = APIClient()
    assert api.get("/api/").status_code == 401

    api.force_login(EmployeeFactory())
    response = api.get("/api/")

    assert response.status_code == 200
    assert {"clients", "sites", "connection-requests", "agencies"} <= set(response.json())
