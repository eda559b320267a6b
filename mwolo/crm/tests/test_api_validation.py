"""Bad input on every API write: a 400 naming the fields, nothing written, never a 500."""

from decimal import Decimal
from typing import Any

import pytest
from django.db import models
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.crm.models import Client, ConnectionRequest, Site
from mwolo.crm.tests.factories import ClientFactory, ConnectionRequestFactory, SiteFactory
from mwolo.geo.tests.factories import address, commune, territory

pytestmark = pytest.mark.django_db

HUGE_ID = 10**30  # beyond any database integer: must be "unknown", not a crash
MISSING = object()  # marks a key to drop from the payload


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))


@pytest.fixture
def api(gombe) -> APIClient:
    client = APIClient()
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    return client


def address_ids(commune_name: str = "Gombe", territory_name: str = "Kinshasa") -> dict[str, Any]:
    place = address(commune_name, territory_name)
    return {
        "province": place["province"].pk,
        "territory": place["territory"].pk,
        "commune": place["commune"].pk,
        "address_line": place["address_line"],
    }


def snapshot(*model_classes: type[models.Model]) -> list[list[dict[str, Any]]]:
    return [list(m.objects.order_by("pk").values()) for m in model_classes]


def with_overrides(payload: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**payload, **overrides}
    return {key: value for key, value in merged.items() if value is not MISSING}


def assert_refused(response, fields: set[str]) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert fields <= set(body), body
    for field in fields:
        assert body[field], body
        assert all(isinstance(message, str) and message for message in body[field]), body


BAD_PHONES = [
    pytest.param({"phone": "0812"}, {"phone"}, id="phone-too-short"),
    pytest.param({"phone": "+33612345678"}, {"phone"}, id="phone-foreign"),
    pytest.param({"phone": "+243 12 345 6789"}, {"phone"}, id="phone-not-congolese-mobile"),
    pytest.param({"phone": {"number": "0812345678"}}, {"phone"}, id="phone-wrong-type"),
    pytest.param({"phone": MISSING}, {"phone"}, id="phone-missing"),
]
BAD_FLAG = pytest.param({"is_active": "maybe"}, {"is_active"}, id="boolean-wrong-type")
# Lambdas: the ids exist only once the test database holds the reference data.
BAD_ADDRESS_AND_TYPES = [
    pytest.param(
        lambda: {"commune": commune("Kampemba", "Lubumbashi").pk}, {"commune"}, id="commune-chain"
    ),
    pytest.param(
        lambda: {"territory": territory("Goma").pk, "commune": None},
        {"territory"},
        id="territory-chain",
    ),
    pytest.param({"province": "Kinshasa"}, {"province"}, id="province-wrong-type"),
    pytest.param({"territory": 999_999}, {"territory"}, id="territory-unknown"),
    pytest.param({"commune": HUGE_ID}, {"commune"}, id="commune-huge-id"),
    pytest.param({"agency": 999_999}, {"agency"}, id="agency-unknown"),
    pytest.param({"agency": [1]}, {"agency"}, id="agency-wrong-type"),
    pytest.param({"address_line": MISSING}, {"address_line"}, id="address-missing"),
    pytest.param({"address_line": "x" * 256}, {"address_line"}, id="address-too-long"),
    pytest.param({"address_line": "12\x00 avenue"}, {"address_line"}, id="null-character"),
]


def resolve(overrides: Any) -> dict[str, Any]:
    return overrides() if callable(overrides) else overrides


# --- Clients ------------------------------------------------------------------------------


def client_payload(agency) -> dict[str, Any]:
    return {
        "kind": "person",
        "first_name": "Espérance",
        "last_name": "Mbuyi",
        "phone": "+243812345678",
        "agency": agency.pk,
        **address_ids(),
    }


CLIENT_ONLY = [
    *BAD_PHONES,
    BAD_FLAG,
    pytest.param({"first_name": ""}, {"first_name"}, id="person-without-first-name"),
    pytest.param({"kind": "company"}, {"company_name"}, id="company-without-name"),
    pytest.param({"kind": "alien"}, {"kind"}, id="kind-unknown"),
    pytest.param({"rccm": "RCCM 1234"}, {"rccm"}, id="rccm-format"),
    pytest.param({"email": "not-an-email"}, {"email"}, id="email-format"),
    pytest.param({"preferred_channel": "email"}, {"email"}, id="email-channel-without-email"),
    pytest.param({"phone_alt": "+2431"}, {"phone_alt"}, id="other-phone"),
]


@pytest.mark.parametrize(("overrides", "fields"), BAD_ADDRESS_AND_TYPES + CLIENT_ONLY)
def test_bad_client_creation_is_refused(api, gombe, overrides, fields):
    before = snapshot(Client)

    response = api.post(
        "/api/clients/", with_overrides(client_payload(gombe), resolve(overrides)), format="json"
    )

    assert_refused(response, fields)
    assert snapshot(Client) == before


@pytest.mark.parametrize(("overrides", "fields"), BAD_ADDRESS_AND_TYPES + CLIENT_ONLY)
def test_bad_client_change_is_refused(api, gombe, overrides, fields):
    existing = ClientFactory(agency=gombe)
    before = snapshot(Client)
    changes = {k: v for k, v in resolve(overrides).items() if v is not MISSING}
    if not changes:  # a missing field is no error in a partial change: blank it in a full one
        response = api.put(
            f"/api/clients/{existing.pk}/",
            with_overrides(client_payload(gombe), resolve(overrides)),
            format="json",
        )
    else:
        response = api.patch(f"/api/clients/{existing.pk}/", changes, format="json")

    assert_refused(response, fields)
    assert snapshot(Client) == before


def test_a_duplicate_client_number_is_refused(api, gombe):
    ClientFactory(agency=gombe, number="CL-0000042")
    before = snapshot(Client)

    response = api.post(
        "/api/clients/", {**client_payload(gombe), "number": "CL-0000042"}, format="json"
    )

    assert_refused(response, {"number"})
    assert response.json()["number"] == ["Un client porte déjà ce numéro."]
    assert snapshot(Client) == before


def test_a_client_cannot_be_filed_under_an_agency_outside_the_scope(api, lubumbashi):
    before = snapshot(Client)
    payload = {**client_payload(lubumbashi), **address_ids("Kampemba", "Lubumbashi")}

    response = api.post("/api/clients/", payload, format="json")

    assert_refused(response, {"agency"})
    assert snapshot(Client) == before


def test_a_client_cannot_be_moved_to_an_agency_outside_the_scope(api, gombe, lubumbashi):
    existing = ClientFactory(agency=gombe)
    before = snapshot(Client)

    response = api.patch(
        f"/api/clients/{existing.pk}/",
        {"agency": lubumbashi.pk, **address_ids("Kampemba", "Lubumbashi")},
        format="json",
    )

    assert_refused(response, {"agency"})
    assert snapshot(Client) == before


def test_an_empty_client_names_every_required_field(api):
    response = api.post("/api/clients/", {}, format="json")

    assert_refused(response, {"kind", "phone", "agency", "province", "territory", "address_line"})
    assert not Client.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("[1, 2]", "application/json", id="a-list"),
        pytest.param('"text"', "application/json", id="a-string"),
        pytest.param("{not json", "application/json", id="malformed-json"),
        pytest.param("<client/>", "application/xml", id="unsupported-media-type"),
    ],
)
def test_a_body_that_is_not_an_object_is_refused(api, body, content_type):
    response = api.generic("POST", "/api/clients/", body, content_type=content_type)

    assert response.status_code in (400, 415)
    assert response.json()
    assert not Client.objects.exists()


# --- Sites --------------------------------------------------------------------------------


def site_payload(owner: Client) -> dict[str, Any]:
    return {
        "client": owner.pk,
        "agency": owner.agency_id,
        "category": "residential",
        "latitude": "-4.3050",
        "longitude": "15.3100",
        **address_ids(),
    }


SITE_ONLY = [
    BAD_FLAG,
    pytest.param({"latitude": "48.85", "longitude": "2.35"}, {"latitude"}, id="gps-in-paris"),
    pytest.param({"latitude": "15.30", "longitude": "-4.32"}, {"longitude"}, id="gps-swapped"),
    pytest.param({"longitude": None}, {"longitude"}, id="gps-half"),
    pytest.param({"latitude": "north"}, {"latitude"}, id="gps-wrong-type"),
    pytest.param({"latitude": "-4.1234567"}, {"latitude"}, id="gps-too-precise"),
    pytest.param({"category": "palace"}, {"category"}, id="category-unknown"),
    pytest.param({"client": 999_999}, {"client"}, id="client-unknown"),
    pytest.param({"client": "CL-0000001"}, {"client"}, id="client-wrong-type"),
    pytest.param({"client": MISSING}, {"client"}, id="client-missing"),
    pytest.param(
        lambda: {**address_ids("Kampemba", "Lubumbashi"), "latitude": None, "longitude": None},
        {"agency"},
        id="province-not-served-by-agency",
    ),
]


@pytest.mark.parametrize(("overrides", "fields"), BAD_ADDRESS_AND_TYPES + SITE_ONLY)
def test_bad_site_creation_is_refused(api, gombe, overrides, fields):
    owner = ClientFactory(agency=gombe)
    before = snapshot(Site)

    response = api.post(
        "/api/sites/", with_overrides(site_payload(owner), resolve(overrides)), format="json"
    )

    assert_refused(response, fields)
    assert snapshot(Site) == before


@pytest.mark.parametrize(("overrides", "fields"), SITE_ONLY)
def test_bad_site_change_is_refused(api, gombe, overrides, fields):
    existing = SiteFactory(agency=gombe, latitude=Decimal("-4.305"), longitude=Decimal("15.31"))
    before = snapshot(Site)
    changes = {k: v for k, v in resolve(overrides).items() if v is not MISSING}
    if not changes:
        response = api.put(
            f"/api/sites/{existing.pk}/",
            with_overrides(site_payload(existing.client), resolve(overrides)),
            format="json",
        )
    else:
        response = api.patch(f"/api/sites/{existing.pk}/", changes, format="json")

    assert_refused(response, fields)
    assert snapshot(Site) == before


def test_a_site_cannot_be_given_to_a_client_outside_the_scope(api, gombe, lubumbashi):
    foreign_client = ClientFactory(agency=lubumbashi)
    before = snapshot(Site)

    response = api.post(
        "/api/sites/",
        {**site_payload(foreign_client), "agency": gombe.pk},
        format="json",
    )

    # Refused as an unknown id: the answer does not reveal that the client exists.
    assert_refused(response, {"client"})
    unknown = api.post(
        "/api/sites/", {**site_payload(foreign_client), "client": 999_999}, format="json"
    )
    assert response.json()["client"] == [
        m.replace("999999", str(foreign_client.pk)) for m in unknown.json()["client"]
    ]
    assert snapshot(Site) == before


def test_a_duplicate_site_reference_is_refused(api, gombe):
    SiteFactory(agency=gombe, reference="ST-0000042")
    owner = ClientFactory(agency=gombe)
    before = snapshot(Site)

    response = api.post(
        "/api/sites/", {**site_payload(owner), "reference": "ST-0000042"}, format="json"
    )

    assert_refused(response, {"reference"})
    assert snapshot(Site) == before


# --- Connection requests ------------------------------------------------------------------


def submission(agency) -> dict[str, Any]:
    return {
        "kind": "person",
        "first_name": "Fiston",
        "last_name": "Kasongo",
        "phone": "+243970001122",
        "category": "residential",
        "agency": agency.pk,
        **address_ids(),
    }


REQUEST_ONLY = [
    *BAD_PHONES,
    pytest.param({"kind": "company"}, {"company_name"}, id="company-without-name"),
    pytest.param({"last_name": " "}, {"last_name"}, id="blank-last-name"),
    pytest.param({"category": MISSING}, {"category"}, id="category-missing"),
    pytest.param({"latitude": "-4.31"}, {"longitude"}, id="gps-half"),
    pytest.param({"latitude": "48.85", "longitude": "2.35"}, {"latitude"}, id="gps-in-paris"),
    pytest.param({"message": "x" * 2001}, {"message"}, id="message-too-long"),
    pytest.param({"preferred_language": "ln"}, {"preferred_language"}, id="language-unknown"),
]


@pytest.mark.parametrize(("overrides", "fields"), BAD_ADDRESS_AND_TYPES + REQUEST_ONLY)
def test_bad_public_submission_is_refused(gombe, overrides, fields):
    overrides = resolve(overrides)
    before = snapshot(ConnectionRequest)

    response = APIClient().post(
        "/api/connection-requests/",
        with_overrides(submission(gombe), overrides),
        format="json",
    )

    assert_refused(response, fields)
    assert snapshot(ConnectionRequest) == before


def test_a_request_to_a_closed_agency_is_refused(gombe):
    closed = AgencyFactory(code="KIN-OLD", is_active=False)

    response = APIClient().post("/api/connection-requests/", submission(closed), format="json")

    assert_refused(response, {"agency"})
    assert not ConnectionRequest.objects.exists()


def test_a_request_must_go_to_an_agency_serving_its_province(lubumbashi):
    response = APIClient().post("/api/connection-requests/", submission(lubumbashi), format="json")

    assert_refused(response, {"agency"})
    assert not ConnectionRequest.objects.exists()


@pytest.fixture
def pending(gombe):
    return ConnectionRequestFactory(agency=gombe)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({"existing_client": 999_999}, {"existing_client"}, id="unknown-client"),
        pytest.param({"existing_client": HUGE_ID}, {"existing_client"}, id="huge-id"),
        pytest.param({"existing_client": "CL-1"}, {"existing_client"}, id="wrong-type"),
        pytest.param("foreign", {"existing_client"}, id="client-outside-the-scope"),
    ],
)
def test_bad_approval_is_refused(api, pending, lubumbashi, body, fields):
    if body == "foreign":
        body = {"existing_client": ClientFactory(agency=lubumbashi).pk}
    before = snapshot(ConnectionRequest, Client, Site)

    response = api.post(f"/api/connection-requests/{pending.pk}/approve/", body, format="json")

    assert_refused(response, fields)
    assert snapshot(ConnectionRequest, Client, Site) == before


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="missing"),
        pytest.param({"reason": "   "}, id="blank"),
        pytest.param({"reason": None}, id="null"),
        pytest.param({"reason": ["a"]}, id="wrong-type"),
        pytest.param({"reason": "x" * 2001}, id="too-long"),
    ],
)
def test_a_rejection_needs_a_reason(api, pending, body):
    before = snapshot(ConnectionRequest)

    response = api.post(f"/api/connection-requests/{pending.pk}/reject/", body, format="json")

    assert_refused(response, {"reason"})
    assert snapshot(ConnectionRequest) == before
