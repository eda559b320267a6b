"""The agency pages of the back office: staff see and edit their own agency, not others."""

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from mwolo.accounts.tests.factories import EmployeeFactory, PortalUserFactory
from mwolo.agencies.models import Agency
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.crm.tests.factories import ClientFactory
from mwolo.geo.tests.factories import commune

pytestmark = pytest.mark.django_db


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe", phone="+243815550000")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR",
        name="Agence Lubumbashi",
        phone="+243995550000",
        commune=commune("Kampemba", "Lubumbashi"),
    )


@pytest.fixture
def manager(client, gombe):
    user = EmployeeFactory(username="manager.gombe", role=Role.AGENCY_MANAGER, agency=gombe)
    client.force_login(user)
    return user


def agency_form(agency: Agency, **overrides) -> dict:
    data = {
        "code": agency.code,
        "name": agency.name,
        "is_active": "on",
        "phone": str(agency.phone),
        "email": agency.email,
        "province": agency.province_id,
        "territory": agency.territory_id,
        "commune": agency.commune_id or "",
        "address_line": agency.address_line,
        "latitude": "",
        "longitude": "",
        "opening_hours-TOTAL_FORMS": "0",
        "opening_hours-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_a_manager_sees_only_their_agency(client, manager, gombe, lubumbashi):
    listing = client.get(reverse("admin:agencies_agency_changelist"))

    assert listing.status_code == 200
    assert "KIN-GOM" in listing.content.decode()
    assert "LSH-CTR" not in listing.content.decode()
    assert client.get(reverse("admin:agencies_agency_auditlog", args=[gombe.pk])).status_code == 200
    opened = client.get(reverse("admin:agencies_agency_change", args=[lubumbashi.pk]), follow=True)
    assert opened.redirect_chain[-1][0] == reverse("admin:index")
    assert "LSH-CTR" not in opened.content.decode()
    history = client.get(reverse("admin:agencies_agency_auditlog", args=[lubumbashi.pk]))
    assert history.status_code == 404


def test_a_manager_edits_their_agency_and_the_change_is_recorded(client, manager, gombe):
    response = client.post(
        reverse("admin:agencies_agency_change", args=[gombe.pk]),
        agency_form(gombe, phone="+243815551234"),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    gombe.refresh_from_db()
    assert gombe.phone.as_e164 == "+243815551234"
    entry = LogEntry.objects.get_for_object(gombe).get(action=LogEntry.Action.UPDATE)
    assert entry.actor == manager


def test_a_manager_cannot_edit_another_agency(client, manager, lubumbashi):
    response = client.post(
        reverse("admin:agencies_agency_change", args=[lubumbashi.pk]),
        agency_form(lubumbashi, phone="+243815551234", name="Agence reprise"),
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    lubumbashi.refresh_from_db()
    assert (lubumbashi.name, lubumbashi.phone.as_e164) == ("Agence Lubumbashi", "+243995550000")
    assert (
        not LogEntry.objects.get_for_object(lubumbashi)
        .filter(action=LogEntry.Action.UPDATE)
        .exists()
    )


def test_a_manager_cannot_add_or_delete_agencies(client, manager, gombe):
    assert client.get(reverse("admin:agencies_agency_add")).status_code == 403
    deleted = client.post(reverse("admin:agencies_agency_delete", args=[gombe.pk]), {"post": "yes"})
    assert deleted.status_code == 403
    assert Agency.objects.filter(pk=gombe.pk).exists()


@pytest.mark.parametrize("role", [Role.CASHIER, Role.HR_OFFICER])
def test_other_staff_read_their_agency_without_editing_it(client, gombe, lubumbashi, role):
    client.force_login(EmployeeFactory(role=role, agency=gombe))

    listing = client.get(reverse("admin:agencies_agency_changelist"))
    page = client.get(reverse("admin:agencies_agency_change", args=[gombe.pk]))
    changed = client.post(
        reverse("admin:agencies_agency_change", args=[gombe.pk]), agency_form(gombe, name="X")
    )

    assert listing.status_code == 200
    assert "LSH-CTR" not in listing.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert changed.status_code == 403
    gombe.refresh_from_db()
    assert gombe.name == "Agence Gombe"


@pytest.mark.parametrize("who", ["anonymous", "client"])
@pytest.mark.parametrize("page", ["changelist", "change", "auditlog"])
def test_visitors_and_clients_do_not_reach_the_agency_pages(client, gombe, who, page):
    if who == "client":
        portal_user = PortalUserFactory()
        ClientFactory(agency=gombe, user=portal_user)
        client.force_login(portal_user)
    args = [] if page == "changelist" else [gombe.pk]

    response = client.get(reverse(f"admin:agencies_agency_{page}", args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
