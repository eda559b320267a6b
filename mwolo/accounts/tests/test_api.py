"""/api/me/ and the JWT endpoints, with the brute-force lock (axes) still in force."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.crm.tests.factories import ClientFactory
from mwolo.geo.tests.factories import commune

pytestmark = pytest.mark.django_db

PASSWORD = "motdepasse-solide-2026"
ADDRESS = "41.243.1.10"


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )


def obtain(api: APIClient, username: str, password: str):
    return api.post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=ADDRESS,
    )


def test_anonymous_users_have_no_profile():
    response = APIClient().get("/api/me/")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", [r for r in Role if r.is_employee and r is not Role.ADMINISTRATOR])
def test_an_employee_sees_their_roles_and_agencies(role, gombe, lubumbashi):
    AgencyFactory(code="KIN-LIM")  # an agency they do not work for
    employee = EmployeeFactory(role=role, agency=gombe, username="agent.gombe")
    employee.additional_agencies.add(lubumbashi)
    api = APIClient()
    api.force_login(employee)

    response = api.get("/api/me/")

    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "agent.gombe"
    assert body["roles"] == [{"code": role.value, "label": role.label}]
    assert body["agency"] == {"id": gombe.pk, "code": "KIN-GOM", "name": "Agence Gombe"}
    assert [a["code"] for a in body["agencies"]] == ["KIN-GOM", "LSH-CTR"]
    assert body["client_number"] is None


def test_an_administrator_sees_every_agency(gombe, lubumbashi):
    api = APIClient()
    api.force_login(AdministratorFactory())

    body = api.get("/api/me/").json()

    assert [r["code"] for r in body["roles"]] == ["administrator"]
    assert body["agency"] is None
    assert {a["code"] for a in body["agencies"]} == {"KIN-GOM", "LSH-CTR"}


def test_a_client_sees_their_client_number(gombe):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
    ClientFactory(agency=gombe, user=user, number="CL-0000007")
    ClientFactory(agency=gombe, number="CL-0000008")
    api = APIClient()
    api.force_login(user)

    body = api.get("/api/me/").json()

    assert body["roles"] == [{"code": "client", "label": Role.CLIENT.label}]
    assert body["client_number"] == "CL-0000007"
    assert body["agencies"] == []


def test_the_profile_is_read_only(gombe):
    employee = EmployeeFactory(agency=gombe, first_name="Jean")
    api = APIClient()
    api.force_login(employee)

    for method in ("post", "put", "patch", "delete"):
        assert getattr(api, method)("/api/me/", {"first_name": "X"}).status_code == 405
    employee.refresh_from_db()
    assert employee.first_name == "Jean"


def test_the_profile_costs_a_few_queries(gombe, django_assert_max_num_queries):
    employee = EmployeeFactory(agency=gombe)
    for number in range(20):
        employee.additional_agencies.add(AgencyFactory(code=f"AG-{number:02d}"))
    api = APIClient()
    api.force_login(employee)

    # Session, user, client file, roles, permissions (user, groups), agencies (ids, rows).
    with django_assert_max_num_queries(8):
        body = api.get("/api/me/").json()

    assert len(body["agencies"]) == 21


def test_a_token_obtained_with_a_password_opens_the_api(gombe):
    EmployeeFactory(agency=gombe, username="caissier.gombe", role=Role.CASHIER)
    api = APIClient()

    tokens = obtain(api, "caissier.gombe", PASSWORD)

    assert tokens.status_code == 200, tokens.content
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    me = api.get("/api/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "caissier.gombe"
    assert api.get("/api/clients/").status_code == 200

    refreshed = APIClient().post(
        "/api/auth/token/refresh/", {"refresh": tokens.json()["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["access"]


def test_a_token_login_is_recorded_and_clears_past_failures(gombe):
    user = EmployeeFactory(agency=gombe, username="caissier.gombe")
    api = APIClient()
    for _ in range(4):
        obtain(api, "caissier.gombe", "wrong")

    assert obtain(api, "caissier.gombe", PASSWORD).status_code == 200

    entry = AccessLog.objects.get(username="caissier.gombe")
    assert entry.ip_address == ADDRESS
    user.refresh_from_db()
    assert user.last_login is not None
    # The count starts again: four more mistakes do not lock the account.
    for _ in range(4):
        obtain(api, "caissier.gombe", "wrong")
    assert obtain(api, "caissier.gombe", PASSWORD).status_code == 200


def test_a_bad_token_is_a_401_not_a_403():
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = api.get("/api/me/")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_password_gets_no_token_and_is_recorded(gombe):
    EmployeeFactory(agency=gombe, username="caissier.gombe")

    response = obtain(APIClient(), "caissier.gombe", "wrong")

    assert response.status_code == 401
    assert "access" not in response.json()
    assert AccessFailureLog.objects.filter(username="caissier.gombe", ip_address=ADDRESS).exists()


def test_five_wrong_passwords_lock_the_token_endpoint_too(gombe):
    EmployeeFactory(agency=gombe, username="caissier.gombe")
    api = APIClient()
    attempts = [obtain(api, "caissier.gombe", "wrong").status_code for _ in range(5)]

    locked = obtain(api, "caissier.gombe", PASSWORD)

    # The fifth failure locks the account, and the user is told so (as on the admin login).
    assert attempts == [401, 401, 401, 401, 429]
    assert locked.status_code == 429
    assert locked.json() == {"detail": locked.json()["detail"]}
    assert "15" in locked.json()["detail"]
    assert AccessAttempt.objects.get(username="caissier.gombe").failures_since_start >= 5
    # The lock holds for that username from that address, not for everyone.
    other = EmployeeFactory(agency=gombe, username="caissier.limete")
    assert obtain(api, other.username, PASSWORD).status_code == 200
