"""Clients, sites and connection requests over the API: what a successful call does and
what it costs in queries (the permission matrix and bad input have their own modules)."""

from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.crm.models import Client, ConnectionRequest, PartyKind, Site
from mwolo.crm.tests.factories import ClientFactory, ConnectionRequestFactory, SiteFactory
from mwolo.geo.tests.factories import address, commune

pytestmark = pytest.mark.django_db

PASSWORD = "motdepasse-solide-2026"
ROWS = 20


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))


@pytest.fixture
def manager(gombe):
    return EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)


def logged_in(user) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


def address_ids(commune_name: str = "Gombe", territory_name: str = "Kinshasa") -> dict[str, Any]:
    place = address(commune_name, territory_name)
    return {
        "province": place["province"].pk,
        "territory": place["territory"].pk,
        "commune": place["commune"].pk,
        "address_line": place["address_line"],
    }


def client_user(client_file: Client):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
    client_file.user = user
    client_file.save()
    return user


# --- Lists cost the same number of queries whatever their length --------------------------


@pytest.fixture
def crowded(gombe, lubumbashi):
    """ROWS clients, sites and requests in each of two agencies."""
    for agency in (gombe, lubumbashi):
        for _ in range(ROWS):
            SiteFactory(agency=agency)
            ConnectionRequestFactory(agency=agency)
    return gombe


@pytest.mark.parametrize("url", ["/api/clients/", "/api/sites/", "/api/connection-requests/"])
@pytest.mark.parametrize("who", ["administrator", "agency_manager"])
def test_lists_do_not_grow_with_rows(crowded, django_assert_max_num_queries, url, who):
    user = AdministratorFactory() if who == "administrator" else EmployeeFactory(agency=crowded)
    api = logged_in(user)

    # Session, user, permissions (user, groups), agencies, count, page: no query per row.
    with django_assert_max_num_queries(8):
        response = api.get(url, {"page_size": 100})

    assert response.status_code == 200
    assert len(response.json()["results"]) == (2 * ROWS if who == "administrator" else ROWS)


def test_a_clients_lists_cost_no_query_per_row(gombe, django_assert_max_num_queries):
    owner = ClientFactory(agency=gombe)
    for _ in range(ROWS):
        SiteFactory(agency=gombe, client=owner)
    api = logged_in(client_user(owner))

    for url in ("/api/sites/", "/api/clients/"):
        with django_assert_max_num_queries(9):
            response = api.get(url, {"page_size": 100})
        assert response.status_code == 200
    assert api.get("/api/sites/").json()["count"] == ROWS


# --- Search, filters, ordering ------------------------------------------------------------


def test_clients_are_searched_by_number_name_and_phone(gombe, manager):
    wanted = ClientFactory(
        agency=gombe, number="CL-0000777", last_name="Tshisekedi", phone="+243851112233"
    )
    ClientFactory(agency=gombe, last_name="Mbemba", phone="+243829998877")
    api = logged_in(manager)

    for term in ("CL-0000777", "tshisek", "851112233"):
        found = api.get("/api/clients/", {"search": term}).json()["results"]
        assert [row["id"] for row in found] == [wanted.pk], term


def test_clients_are_filtered_by_agency_kind_and_activity(gombe, lubumbashi):
    company = ClientFactory(agency=gombe, kind=PartyKind.COMPANY, company_name="Brasimba SA")
    inactive = ClientFactory(agency=gombe, is_active=False)
    elsewhere = ClientFactory(agency=lubumbashi)
    api = logged_in(AdministratorFactory())

    def ids(**params):
        return {row["id"] for row in api.get("/api/clients/", params).json()["results"]}

    assert ids(kind="company") == {company.pk}
    assert ids(is_active="false") == {inactive.pk}
    assert ids(agency=lubumbashi.pk) == {elsewhere.pk}


def test_sites_are_filtered_by_client_and_ordered(gombe, manager):
    owner = ClientFactory(agency=gombe)
    first = SiteFactory(agency=gombe, client=owner, reference="ST-0000002")
    second = SiteFactory(agency=gombe, client=owner, reference="ST-0000001")
    SiteFactory(agency=gombe)
    api = logged_in(manager)

    results = api.get("/api/sites/", {"client": owner.pk, "ordering": "reference"}).json()
    assert [row["id"] for row in results["results"]] == [second.pk, first.pk]


def test_connection_requests_are_filtered_by_status(gombe, manager):
    pending = ConnectionRequestFactory(agency=gombe)
    ConnectionRequestFactory(agency=gombe, status=ConnectionRequest.Status.REJECTED)
    api = logged_in(manager)

    results = api.get("/api/connection-requests/", {"status": "pending"}).json()["results"]
    assert [row["id"] for row in results] == [pending.pk]


# --- Writes -------------------------------------------------------------------------------


def test_a_new_client_gets_a_number_and_a_normalised_phone(gombe, manager):
    api = logged_in(manager)
    payload = {
        "kind": "person",
        "first_name": "Espérance",
        "last_name": "Mbuyi",
        "phone": "0812345678",
        "agency": gombe.pk,
        **address_ids(),
    }

    response = api.post("/api/clients/", payload, format="json")

    assert response.status_code == 201, response.json()
    created = Client.objects.get(pk=response.json()["id"])
    assert response.json()["number"] == created.number == "CL-0000001"
    assert created.phone.as_e164 == "+243812345678"
    assert response.json()["display_name"] == "Espérance Mbuyi"


def test_the_number_is_set_once(gombe, manager):
    existing = ClientFactory(agency=gombe, number="CL-0000042")
    api = logged_in(manager)

    response = api.patch(f"/api/clients/{existing.pk}/", {"number": "CL-9"}, format="json")

    assert response.status_code == 200
    existing.refresh_from_db()
    assert existing.number == "CL-0000042"


def test_a_site_is_registered_for_a_client(gombe, manager):
    owner = ClientFactory(agency=gombe)
    api = logged_in(manager)
    payload = {
        "client": owner.pk,
        "agency": gombe.pk,
        "category": "commercial",
        "latitude": "-4.3050",
        "longitude": "15.3100",
        **address_ids(),
    }

    response = api.post("/api/sites/", payload, format="json")

    assert response.status_code == 201, response.json()
    site = Site.objects.get(pk=response.json()["id"])
    assert site.client == owner
    assert site.reference == response.json()["reference"] == "ST-0000001"
    assert response.json()["client_number"] == owner.number


def test_an_api_change_made_with_a_token_names_its_author_in_the_audit_trail(gombe):
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe, username="chef.gombe")
    existing = ClientFactory(agency=gombe)
    api = APIClient()
    token = api.post(
        "/api/auth/token/", {"username": "chef.gombe", "password": PASSWORD}, format="json"
    ).json()["access"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api.patch(f"/api/clients/{existing.pk}/", {"first_name": "Gloire"}, format="json")

    assert response.status_code == 200
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(Client),
        object_pk=str(existing.pk),
        action=LogEntry.Action.UPDATE,
    )
    assert entry.actor == manager


# --- Connection requests ------------------------------------------------------------------


def submission(agency, **overrides) -> dict[str, Any]:
    return {
        "kind": "person",
        "first_name": "Fiston",
        "last_name": "Kasongo",
        "phone": "+243970001122",
        "email": "fiston@example.cd",
        "category": "residential",
        "agency": agency.pk,
        "latitude": "-4.3100",
        "longitude": "15.3000",
        "message": "Maison neuve, compteur prépayé souhaité.",
        **address_ids(),
        **overrides,
    }


def test_a_visitor_submits_a_request_and_gets_only_its_reference(gombe):
    ConnectionRequestFactory(agency=gombe, first_name="Secret")

    response = APIClient().post("/api/connection-requests/", submission(gombe), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body == {"reference": body["reference"], "status": "pending"}
    assert body["reference"].startswith("DR-")
    saved = ConnectionRequest.objects.get(reference=body["reference"])
    assert saved.display_name == "Fiston Kasongo"
    assert saved.phone.as_e164 == "+243970001122"


def test_the_public_form_is_throttled_per_address(gombe):
    api = APIClient()
    for _ in range(20):  # settings: "public_form": "20/hour"
        accepted = api.post("/api/connection-requests/", submission(gombe), format="json")
        assert accepted.status_code == 201
    before = ConnectionRequest.objects.count()

    refused = api.post("/api/connection-requests/", submission(gombe), format="json")

    assert refused.status_code == 429
    assert "detail" in refused.json()
    assert ConnectionRequest.objects.count() == before
    # Another address is not held back by the first one's flood.
    other = api.post(
        "/api/connection-requests/", submission(gombe), format="json", REMOTE_ADDR="41.243.7.7"
    )
    assert other.status_code == 201


def test_staff_reads_are_not_throttled(gombe, manager):
    api = logged_in(manager)
    for _ in range(25):
        assert api.get("/api/connection-requests/").status_code == 200


def test_approval_creates_client_and_site_and_a_second_approval_is_a_conflict(gombe, manager):
    request = ConnectionRequestFactory(agency=gombe, first_name="Blaise", last_name="Ilunga")
    api = logged_in(manager)
    url = f"/api/connection-requests/{request.pk}/approve/"

    first = api.post(url, {}, format="json")

    assert first.status_code == 200, first.json()
    assert first.json()["status"] == "approved"
    request.refresh_from_db()
    assert request.client.display_name == "Blaise Ilunga"
    assert first.json()["client"] == request.client_id
    assert first.json()["site"] == request.site_id
    assert first.json()["reviewed_by"] == manager.pk

    again = api.post(url, {}, format="json")
    rejected_after = api.post(
        f"/api/connection-requests/{request.pk}/reject/", {"reason": "Trop tard"}, format="json"
    )

    for refused in (again, rejected_after):
        assert refused.status_code == 409
        assert set(refused.json()) == {"detail"}
        assert refused.json()["detail"]
    assert Client.objects.count() == 1
    assert Site.objects.count() == 1
    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.APPROVED


def test_approval_can_reuse_an_existing_client(gombe, manager):
    existing = ClientFactory(agency=gombe)
    request = ConnectionRequestFactory(agency=gombe)
    api = logged_in(manager)

    response = api.post(
        f"/api/connection-requests/{request.pk}/approve/",
        {"existing_client": existing.pk},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["client"] == existing.pk
    assert Client.objects.count() == 1
    assert existing.sites.count() == 1


def test_rejection_records_the_reason(gombe, manager):
    request = ConnectionRequestFactory(agency=gombe)
    api = logged_in(manager)

    response = api.post(
        f"/api/connection-requests/{request.pk}/reject/",
        {"reason": "  Zone non desservie.  "},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["rejection_reason"] == "Zone non desservie."
    assert not Client.objects.exists()


def test_reviewing_an_unknown_request_is_not_found(manager):
    api = logged_in(manager)

    response = api.post("/api/connection-requests/987654/approve/", {}, format="json")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}
