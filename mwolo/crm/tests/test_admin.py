"""The back office as staff use it: scoped lists, scoped forms, reviews, audit history."""

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.crm.models import Client, ConnectionRequest, Site
from mwolo.crm.tests.factories import ClientFactory, ConnectionRequestFactory, SiteFactory
from mwolo.geo.tests.factories import address, commune

pytestmark = pytest.mark.django_db


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )


@pytest.fixture
def manager(client, gombe):
    user = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)
    client.force_login(user)
    return user


def client_form(agency, **overrides):
    place = address("Gombe")
    data = {
        "number": "",
        "agency": agency.pk,
        "is_active": "on",
        "kind": "person",
        "first_name": "Merveille",
        "last_name": "Tshibangu",
        "middle_name": "",
        "company_name": "",
        "rccm": "",
        "national_id": "",
        "phone": "0851234567",
        "phone_alt": "",
        "email": "",
        "preferred_language": "fr",
        "preferred_channel": "sms",
        "province": place["province"].pk,
        "territory": place["territory"].pk,
        "commune": place["commune"].pk,
        "address_line": "7, avenue de la Justice",
        "user": "",
        "sites-TOTAL_FORMS": "0",
        "sites-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_the_client_list_shows_only_the_managers_agency(client, manager, gombe, lubumbashi):
    own = ClientFactory(agency=gombe, last_name="Mukendi")
    ClientFactory(agency=lubumbashi, last_name="Katumbi", **address("Kampemba", "Lubumbashi"))

    page = client.get(reverse("admin:crm_client_changelist"))

    assert page.status_code == 200
    assert own.number in page.content.decode()
    assert "Katumbi" not in page.content.decode()


def test_another_agencys_client_cannot_be_opened(client, manager, lubumbashi):
    foreign = ClientFactory(agency=lubumbashi, **address("Kampemba", "Lubumbashi"))

    page = client.get(reverse("admin:crm_client_change", args=[foreign.pk]), follow=True)

    assert foreign.number not in page.content.decode()
    assert page.redirect_chain[-1][0] == reverse("admin:index")
    history = client.get(reverse("admin:crm_client_auditlog", args=[foreign.pk]))
    assert history.status_code in {302, 404}


def test_adding_a_client_numbers_it_and_records_who_did_it(client, manager, gombe):
    response = client.post(reverse("admin:crm_client_add"), client_form(gombe))

    assert response.status_code == 302, response.content.decode()[:2000]
    created = Client.objects.get()
    assert created.number == "CL-0000001"
    entry = LogEntry.objects.get_for_object(created).get()
    assert entry.actor == manager
    assert entry.action == LogEntry.Action.CREATE


def test_a_client_cannot_be_filed_under_an_agency_outside_the_scope(client, manager, lubumbashi):
    response = client.post(reverse("admin:crm_client_add"), client_form(lubumbashi))

    assert response.status_code == 200
    assert "agency" in response.context["adminform"].form.errors
    assert not Client.objects.exists()


def test_a_client_of_gombe_cannot_be_filed_under_the_lubumbashi_agency(client, lubumbashi):
    client.force_login(AdministratorFactory())

    response = client.post(reverse("admin:crm_client_add"), client_form(lubumbashi))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["agency"] == [
        "L’agence Agence Lubumbashi (LSH-CTR) ne dessert pas cette province."
    ]
    assert not Client.objects.exists()


def test_bad_client_input_shows_field_errors_and_writes_nothing(client, manager, gombe):
    lubumbashi_commune = commune("Kampemba", "Lubumbashi")
    response = client.post(
        reverse("admin:crm_client_add"),
        client_form(gombe, phone="+33612345678", commune=lubumbashi_commune.pk),
    )

    errors = response.context["adminform"].form.errors
    assert "Seuls les numéros congolais (+243) sont acceptés." in errors["phone"]
    assert "commune" in errors
    assert not Client.objects.exists()


def test_changing_a_client_keeps_a_before_and_after(client, manager, gombe):
    existing = ClientFactory(agency=gombe, first_name="Divine")
    data = client_form(gombe, number=existing.number, first_name="Divine-Grâce")
    data.update({"phone": str(existing.phone)})

    response = client.post(reverse("admin:crm_client_change", args=[existing.pk]), data)

    assert response.status_code == 302
    change = LogEntry.objects.get_for_object(existing).filter(action=LogEntry.Action.UPDATE).get()
    assert change.changes_dict["first_name"] == ["Divine", "Divine-Grâce"]
    history = client.get(reverse("admin:crm_client_auditlog", args=[existing.pk]))
    assert "Divine-Grâce" in history.content.decode()


@pytest.mark.parametrize("role", [Role.CASHIER, Role.BILLING_AGENT, Role.TECHNICIAN])
def test_roles_without_add_permission_cannot_add_clients(client, gombe, role):
    client.force_login(EmployeeFactory(role=role, agency=gombe))

    assert client.get(reverse("admin:crm_client_changelist")).status_code == 200
    assert client.get(reverse("admin:crm_client_add")).status_code == 403
    assert client.post(reverse("admin:crm_client_add"), client_form(gombe)).status_code == 403
    assert not Client.objects.exists()


def test_hr_officer_does_not_see_clients(client, gombe):
    client.force_login(EmployeeFactory(role=Role.HR_OFFICER, agency=gombe))
    assert client.get(reverse("admin:crm_client_changelist")).status_code == 403


@pytest.mark.parametrize("who", ["anonymous", "client"])
def test_the_back_office_is_closed_to_visitors_and_clients(client, gombe, who):
    if who == "client":
        portal_user = UserFactory()
        ClientFactory(agency=gombe, user=portal_user)
        client.force_login(portal_user)

    response = client.get(reverse("admin:crm_client_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_approving_asks_for_confirmation_then_creates_client_and_site(client, manager, gombe):
    request = ConnectionRequestFactory(agency=gombe, first_name="Exaucé", last_name="Banza")
    url = reverse("admin:crm_connectionrequest_changelist")
    action = {"action": "approve_requests", "_selected_action": [request.pk]}

    confirmation = client.post(url, action)
    assert confirmation.status_code == 200
    assert "Exaucé Banza" in confirmation.content.decode()
    assert not Client.objects.exists()

    done = client.post(url, {**action, "confirm": "yes"}, follow=True)
    assert "1 demande approuvée." in done.content.decode()
    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.APPROVED
    assert Site.objects.get().client.display_name == "Exaucé Banza"


def test_rejecting_requires_a_reason(client, manager, gombe):
    request = ConnectionRequestFactory(agency=gombe)
    url = reverse("admin:crm_connectionrequest_changelist")
    action = {"action": "reject_requests", "_selected_action": [request.pk], "confirm": "yes"}

    without_reason = client.post(url, {**action, "rejection_reason": ""})
    assert without_reason.status_code == 200
    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.PENDING

    client.post(url, {**action, "rejection_reason": "Zone hors réseau"})
    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.REJECTED
    assert request.rejection_reason == "Zone hors réseau"


def test_reviewing_twice_reports_the_request_as_already_handled(client, manager, gombe):
    request = ConnectionRequestFactory(agency=gombe)
    url = reverse("admin:crm_connectionrequest_changelist")
    action = {"action": "approve_requests", "_selected_action": [request.pk], "confirm": "yes"}
    client.post(url, action)

    again = client.post(url, action, follow=True)

    assert "déjà été traitée" in again.content.decode()
    assert Client.objects.count() == 1


def test_support_agents_cannot_review(client, gombe):
    client.force_login(EmployeeFactory(role=Role.SUPPORT_AGENT, agency=gombe))
    request = ConnectionRequestFactory(agency=gombe)

    client.post(
        reverse("admin:crm_connectionrequest_changelist"),
        {"action": "approve_requests", "_selected_action": [request.pk], "confirm": "yes"},
    )

    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.PENDING


# Who may see sites and connection requests: own agency's rows only; never clients or visitors.

ROWS = {
    "site": lambda agency, **place: SiteFactory(agency=agency, label="Boutique Umoja", **place),
    "connectionrequest": lambda agency, **place: ConnectionRequestFactory(
        agency=agency, last_name="Umoja", **place
    ),
}


@pytest.mark.parametrize("model", ROWS)
def test_a_manager_sees_and_opens_only_their_agencys_rows(
    client, manager, gombe, lubumbashi, model
):
    own = ROWS[model](gombe)
    foreign = ROWS[model](lubumbashi, **address("Kampemba", "Lubumbashi"))

    listing = client.get(reverse(f"admin:crm_{model}_changelist"))

    assert listing.status_code == 200
    assert own.reference in listing.content.decode()
    assert foreign.reference not in listing.content.decode()
    assert client.get(reverse(f"admin:crm_{model}_change", args=[own.pk])).status_code == 200
    assert client.get(reverse(f"admin:crm_{model}_auditlog", args=[own.pk])).status_code == 200
    opened = client.get(reverse(f"admin:crm_{model}_change", args=[foreign.pk]), follow=True)
    assert opened.redirect_chain[-1][0] == reverse("admin:index")
    assert foreign.reference not in opened.content.decode()
    assert client.get(reverse(f"admin:crm_{model}_auditlog", args=[foreign.pk])).status_code == 404


def test_a_manager_cannot_move_a_site_of_another_agency(client, manager, gombe, lubumbashi):
    foreign = SiteFactory(agency=lubumbashi, label="Dépôt", **address("Kampemba", "Lubumbashi"))

    client.post(
        reverse("admin:crm_site_change", args=[foreign.pk]),
        {
            "client": foreign.client_id,
            "agency": gombe.pk,
            "label": "Volé",
            "category": "commercial",
        },
    )

    foreign.refresh_from_db()
    assert (foreign.agency, foreign.label) == (lubumbashi, "Dépôt")


def test_a_granted_agency_opens_its_rows(client, manager, lubumbashi):
    manager.additional_agencies.add(lubumbashi)
    site = SiteFactory(agency=lubumbashi, **address("Kampemba", "Lubumbashi"))

    assert client.get(reverse("admin:crm_site_change", args=[site.pk])).status_code == 200


def test_cashiers_see_sites_but_not_connection_requests(client, gombe):
    client.force_login(EmployeeFactory(role=Role.CASHIER, agency=gombe))
    request = ConnectionRequestFactory(agency=gombe)

    assert client.get(reverse("admin:crm_site_changelist")).status_code == 200
    assert client.get(reverse("admin:crm_connectionrequest_changelist")).status_code == 403
    change = reverse("admin:crm_connectionrequest_change", args=[request.pk])
    assert client.get(change).status_code == 403


@pytest.mark.parametrize("who", ["anonymous", "client"])
@pytest.mark.parametrize("model", ROWS)
@pytest.mark.parametrize("page", ["changelist", "change", "auditlog"])
def test_visitors_and_clients_do_not_reach_sites_or_requests(client, gombe, who, model, page):
    row = ROWS[model](gombe)
    if who == "client":
        portal_user = UserFactory()
        ClientFactory(agency=gombe, user=portal_user)
        client.force_login(portal_user)
    args = [] if page == "changelist" else [row.pk]

    response = client.get(reverse(f"admin:crm_{model}_{page}", args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
