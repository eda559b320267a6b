"""Who may do what on /api/clients/, /api/sites/ and /api/connection-requests/.

Each row of a matrix is one kind of user; each column one request on a record of their own
agency (a client: their own record) or of another agency (a client: another client's
record). Every refused write is checked to have changed nothing in the database.
"""

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import models
from rest_framework.test import APIClient

from mwolo.accounts.models import User
from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.crm.models import Client, ConnectionRequest, Site
from mwolo.crm.tests.factories import ClientFactory, ConnectionRequestFactory, SiteFactory
from mwolo.geo.tests.factories import address, commune

pytestmark = pytest.mark.django_db

ACTORS = ["anonymous", *(role.value for role in Role)]


@dataclass
class World:
    """Two agencies, each with clients, sites and connection requests."""

    gombe: Any
    lubumbashi: Any
    client_own: Client  # in Gombe; the client user logs in as this one
    client_neighbour: Client  # another client of Gombe
    client_other: Client  # in Lubumbashi
    site_own: Site
    site_neighbour: Site
    site_other: Site
    request_own: ConnectionRequest
    request_other: ConnectionRequest


@pytest.fixture
def world() -> World:
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    client_own = ClientFactory(agency=gombe)
    client_neighbour = ClientFactory(agency=gombe)
    client_other = ClientFactory(agency=lubumbashi)
    return World(
        gombe=gombe,
        lubumbashi=lubumbashi,
        client_own=client_own,
        client_neighbour=client_neighbour,
        client_other=client_other,
        site_own=SiteFactory(agency=gombe, client=client_own),
        site_neighbour=SiteFactory(agency=gombe, client=client_neighbour),
        site_other=SiteFactory(agency=lubumbashi, client=client_other),
        request_own=ConnectionRequestFactory(agency=gombe),
        request_other=ConnectionRequestFactory(agency=lubumbashi),
    )


def actor_user(actor: str, world: World) -> User | None:
    if actor == "anonymous":
        return None
    if actor == Role.ADMINISTRATOR:
        return AdministratorFactory()
    if actor == Role.CLIENT:
        user = UserFactory()
        user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
        world.client_own.user = user
        world.client_own.save()
        return user
    return EmployeeFactory(role=Role(actor), agency=world.gombe)


def api_for(user: User | None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_login(user)
    return api


def snapshot(*model_classes: type[models.Model]) -> list[list[dict[str, Any]]]:
    return [list(m.objects.order_by("pk").values()) for m in model_classes]


def matrix(columns: list[str], rows: dict[str, list[int]]) -> list[Any]:
    """Flatten a table of expected statuses into pytest parameters (actor, column, status)."""
    assert set(rows) == set(ACTORS), "every kind of user has a row"
    return [
        pytest.param(actor, column, status, id=f"{actor}-{column}")
        for actor, statuses in rows.items()
        for column, status in zip(columns, statuses, strict=True)
    ]


def address_ids(commune_name: str, territory_name: str) -> dict[str, Any]:
    place = address(commune_name, territory_name)
    return {
        "province": place["province"].pk,
        "territory": place["territory"].pk,
        "commune": place["commune"].pk,
        "address_line": place["address_line"],
    }


# --- Clients ------------------------------------------------------------------------------

CLIENT_COLUMNS = [
    "list",
    "get-own",
    "get-other",
    "create-own",
    "create-other",
    "patch-own",
    "patch-other",
    "put-own",
    "put-other",
    "delete-own",
]
CLIENT_MATRIX = {
    #                 list get  get  post post patch patch put  put  delete
    #                      own  oth  own  oth  own   oth   own  oth  own
    "anonymous":      [401, 401, 401, 401, 401, 401, 401, 401, 401, 401],
    "administrator":  [200, 200, 200, 201, 201, 200, 200, 200, 200, 405],
    "agency_manager": [200, 200, 404, 201, 400, 200, 404, 200, 404, 403],
    "billing_agent":  [200, 200, 404, 403, 403, 403, 403, 403, 403, 403],
    "cashier":        [200, 200, 404, 403, 403, 403, 403, 403, 403, 403],
    "technician":     [200, 200, 404, 403, 403, 403, 403, 403, 403, 403],
    "support_agent":  [200, 200, 404, 403, 403, 200, 404, 200, 404, 403],
    "hr_officer":     [403, 403, 403, 403, 403, 403, 403, 403, 403, 403],
    "client":         [200, 200, 404, 403, 403, 403, 403, 403, 403, 403],
}  # fmt: skip


def client_payload(agency: Any, place: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "kind": "person",
        "first_name": "Espérance",
        "last_name": "Mbuyi",
        "phone": "+243812345678",
        "agency": agency.pk,
        **place,
        **overrides,
    }


@pytest.mark.parametrize(("actor", "column", "expected"), matrix(CLIENT_COLUMNS, CLIENT_MATRIX))
def test_client_endpoint_permissions(world, actor, column, expected):
    user = actor_user(actor, world)
    api = api_for(user)
    other = world.client_neighbour if actor == "client" else world.client_other
    target = world.client_own if column.endswith("-own") else other
    before = snapshot(Client)

    if column == "list":
        response = api.get("/api/clients/")
    elif column.startswith("get"):
        response = api.get(f"/api/clients/{target.pk}/")
    elif column.startswith("create"):
        if column == "create-own":
            payload = client_payload(world.gombe, address_ids("Gombe", "Kinshasa"))
        else:
            payload = client_payload(world.lubumbashi, address_ids("Kampemba", "Lubumbashi"))
        response = api.post("/api/clients/", payload, format="json")
    elif column.startswith("patch"):
        response = api.patch(f"/api/clients/{target.pk}/", {"first_name": "Gloire"}, format="json")
    elif column.startswith("put"):
        payload = client_payload(
            target.agency,
            {
                "province": target.province_id,
                "territory": target.territory_id,
                "commune": target.commune_id,
                "address_line": target.address_line,
            },
            first_name="Gloire",
        )
        response = api.put(f"/api/clients/{target.pk}/", payload, format="json")
    else:
        response = api.delete(f"/api/clients/{target.pk}/")

    assert response.status_code == expected, response.content
    if column == "list" and expected == 200:
        listed = {row["id"] for row in response.json()["results"]}
        assert listed == expected_visible_clients(actor, world)
    if expected == 201:
        assert Client.objects.count() == len(before[0]) + 1
    elif expected == 200 and column.startswith(("patch", "put")):
        target.refresh_from_db()
        assert target.first_name == "Gloire"
    else:
        assert snapshot(Client) == before


def expected_visible_clients(actor: str, world: World) -> set[int]:
    if actor == "administrator":
        return {world.client_own.pk, world.client_neighbour.pk, world.client_other.pk}
    if actor == "client":
        return {world.client_own.pk}
    return {world.client_own.pk, world.client_neighbour.pk}


# --- Sites --------------------------------------------------------------------------------

SITE_COLUMNS = CLIENT_COLUMNS
SITE_MATRIX = {
    #                 list get  get  post post patch patch put  put  delete
    #                      own  oth  own  oth  own   oth   own  oth  own
    "anonymous":      [401, 401, 401, 401, 401, 401, 401, 401, 401, 401],
    "administrator":  [200, 200, 200, 201, 201, 200, 200, 200, 200, 405],
    "agency_manager": [200, 200, 404, 201, 400, 200, 404, 200, 404, 403],
    "billing_agent":  [200, 200, 404, 403, 403, 403, 403, 403, 403, 403],
    "cashier":        [200, 200, 404, 403, 403, 403, 403, 403, 403, 403],
    "technician":     [200, 200, 404, 403, 403, 200, 404, 200, 404, 403],
    "support_agent":  [200, 200, 404, 403, 403, 403, 403, 403, 403, 403],
    "hr_officer":     [403, 403, 403, 403, 403, 403, 403, 403, 403, 403],
    "client":         [200, 200, 404, 403, 403, 403, 403, 403, 403, 403],
}  # fmt: skip


def site_payload(site_client: Client, place: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "client": site_client.pk,
        "agency": site_client.agency_id,
        "category": "residential",
        "label": "Boutique",
        **place,
        **overrides,
    }


@pytest.mark.parametrize(("actor", "column", "expected"), matrix(SITE_COLUMNS, SITE_MATRIX))
def test_site_endpoint_permissions(world, actor, column, expected):
    user = actor_user(actor, world)
    api = api_for(user)
    other = world.site_neighbour if actor == "client" else world.site_other
    target = world.site_own if column.endswith("-own") else other
    before = snapshot(Site)

    if column == "list":
        response = api.get("/api/sites/")
    elif column.startswith("get"):
        response = api.get(f"/api/sites/{target.pk}/")
    elif column.startswith("create"):
        if column == "create-own":
            payload = site_payload(world.client_own, address_ids("Gombe", "Kinshasa"))
        else:
            payload = site_payload(world.client_other, address_ids("Kampemba", "Lubumbashi"))
        response = api.post("/api/sites/", payload, format="json")
    elif column.startswith("patch"):
        response = api.patch(f"/api/sites/{target.pk}/", {"label": "Atelier"}, format="json")
    elif column.startswith("put"):
        payload = site_payload(
            target.client,
            {
                "province": target.province_id,
                "territory": target.territory_id,
                "commune": target.commune_id,
                "address_line": target.address_line,
            },
            label="Atelier",
        )
        response = api.put(f"/api/sites/{target.pk}/", payload, format="json")
    else:
        response = api.delete(f"/api/sites/{target.pk}/")

    assert response.status_code == expected, response.content
    if column == "list" and expected == 200:
        listed = {row["id"] for row in response.json()["results"]}
        if actor == "administrator":
            assert listed == {world.site_own.pk, world.site_neighbour.pk, world.site_other.pk}
        elif actor == "client":
            assert listed == {world.site_own.pk}
        else:
            assert listed == {world.site_own.pk, world.site_neighbour.pk}
    if expected == 201:
        assert Site.objects.count() == len(before[0]) + 1
    elif expected == 200 and column.startswith(("patch", "put")):
        target.refresh_from_db()
        assert target.label == "Atelier"
    else:
        assert snapshot(Site) == before


# --- Connection requests ------------------------------------------------------------------

REQUEST_COLUMNS = [
    "submit",
    "list",
    "get-own",
    "get-other",
    "approve-own",
    "approve-other",
    "reject-own",
    "reject-other",
    "patch-own",
    "delete-own",
]
REQUEST_MATRIX = {
    #                 post list get  get  approve   reject    patch delete
    #                           own  oth  own  oth  own  oth  own   own
    "anonymous":      [201, 401, 401, 401, 401, 401, 401, 401, 401, 401],
    "administrator":  [201, 200, 200, 200, 200, 200, 200, 200, 405, 405],
    "agency_manager": [201, 200, 200, 404, 200, 404, 200, 404, 403, 403],
    "billing_agent":  [201, 403, 403, 403, 403, 403, 403, 403, 403, 403],
    "cashier":        [201, 403, 403, 403, 403, 403, 403, 403, 403, 403],
    "technician":     [201, 403, 403, 403, 403, 403, 403, 403, 403, 403],
    "support_agent":  [201, 200, 200, 404, 403, 403, 403, 403, 403, 403],
    "hr_officer":     [201, 403, 403, 403, 403, 403, 403, 403, 403, 403],
    "client":         [201, 403, 403, 403, 403, 403, 403, 403, 403, 403],
}  # fmt: skip


def submission(agency: Any) -> dict[str, Any]:
    return {
        "kind": "person",
        "first_name": "Fiston",
        "last_name": "Kasongo",
        "phone": "+243970001122",
        "category": "residential",
        "agency": agency.pk,
        **address_ids("Gombe", "Kinshasa"),
    }


@pytest.mark.parametrize(("actor", "column", "expected"), matrix(REQUEST_COLUMNS, REQUEST_MATRIX))
def test_connection_request_endpoint_permissions(world, actor, column, expected):
    user = actor_user(actor, world)
    api = api_for(user)
    target = world.request_own if column.endswith("-own") else world.request_other
    before = snapshot(ConnectionRequest, Client, Site)
    base = "/api/connection-requests/"

    if column == "submit":
        response = api.post(base, submission(world.gombe), format="json")
    elif column == "list":
        response = api.get(base)
    elif column.startswith("get"):
        response = api.get(f"{base}{target.pk}/")
    elif column.startswith("approve"):
        response = api.post(f"{base}{target.pk}/approve/", {}, format="json")
    elif column.startswith("reject"):
        response = api.post(
            f"{base}{target.pk}/reject/", {"reason": "Zone non desservie."}, format="json"
        )
    elif column.startswith("patch"):
        response = api.patch(f"{base}{target.pk}/", {"status": "approved"}, format="json")
    else:
        response = api.delete(f"{base}{target.pk}/")

    assert response.status_code == expected, response.content
    if column == "submit":
        # The applicant gets a reference and a status, nothing else.
        assert set(response.json()) == {"reference", "status"}
        assert ConnectionRequest.objects.count() == len(before[0]) + 1
        return
    if column == "list" and expected == 200:
        listed = {row["id"] for row in response.json()["results"]}
        if actor == "administrator":
            assert listed == {world.request_own.pk, world.request_other.pk}
        else:
            assert listed == {world.request_own.pk}
    target.refresh_from_db()
    if expected == 200 and column.startswith("approve"):
        assert target.status == ConnectionRequest.Status.APPROVED
        assert target.reviewed_by == user
        assert target.site is not None
    elif expected == 200 and column.startswith("reject"):
        assert target.status == ConnectionRequest.Status.REJECTED
        assert target.rejection_reason == "Zone non desservie."
    else:
        assert snapshot(ConnectionRequest, Client, Site) == before
