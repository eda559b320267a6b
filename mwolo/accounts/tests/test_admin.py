"""The user pages of the back office: who may see which accounts, the home-agency rule,
and the audit trail of what each account is granted (roles, agencies, permissions)."""

import datetime as dt

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from mwolo.accounts.models import User
from mwolo.accounts.tests.factories import (
    AdministratorFactory,
    EmployeeFactory,
    PortalUserFactory,
    UserFactory,
)
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.crm.tests.factories import ClientFactory
from mwolo.geo.tests.factories import commune

pytestmark = pytest.mark.django_db

EMPLOYEE_NEEDS_AGENCY = "Chaque employé doit appartenir à une agence."
CLIENT_HAS_NO_AGENCY = (
    "Un compte client n’a pas d’agence de rattachement : sa fiche client indique "
    "l’agence qui le sert."
)
# 08:00 in Kinshasa, as the change page shows it and posts it back.
JOINED = dt.datetime(2026, 1, 5, 7, 0, tzinfo=dt.UTC)


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )


@pytest.fixture
def administrator(client):
    user = AdministratorFactory(username="admin.siege")
    client.force_login(user)
    return user


def group(role: Role) -> Group:
    return Group.objects.get(name=ROLE_GROUP_NAMES[role])


def add_form(*, username: str, agency=None, roles=()) -> dict:
    return {
        "username": username,
        "usable_password": "false",
        "password1": "",
        "password2": "",
        "agency": agency.pk if agency else "",
        "groups": [group(role).pk for role in roles],
    }


def employee(**kwargs) -> User:
    return EmployeeFactory(date_joined=JOINED, **kwargs)


def change_form(user: User, **overrides) -> dict:
    """What the change page posts back for ``user`` (made by ``employee``) untouched."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "agency": user.agency_id or "",
        "additional_agencies": list(user.additional_agencies.values_list("pk", flat=True)),
        "phone": str(user.phone or ""),
        "preferred_language": user.preferred_language,
        "is_active": "on",
        "is_staff": "on",
        "groups": list(user.groups.values_list("pk", flat=True)),
        "user_permissions": list(user.user_permissions.values_list("pk", flat=True)),
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-05",
        "date_joined_1": "08:00:00",
    }
    data.update(overrides)
    return data


# The audit trail of grants


def test_granting_a_role_an_agency_and_a_permission_is_recorded_with_who_and_what(
    client, administrator, gombe, lubumbashi
):
    cashier = employee(username="caissier.gombe", role=Role.CASHIER, agency=gombe)
    LogEntry.objects.all().delete()
    export = Permission.objects.get(codename="view_logentry", content_type__app_label="auditlog")

    response = client.post(
        reverse("admin:accounts_user_change", args=[cashier.pk]),
        change_form(
            cashier,
            groups=[group(Role.ADMINISTRATOR).pk],
            additional_agencies=[lubumbashi.pk],
            user_permissions=[export.pk],
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    entries = LogEntry.objects.get_for_object(cashier).filter(action=LogEntry.Action.UPDATE)
    changes = {
        (field, change["operation"], tuple(change["objects"]))
        for entry in entries
        for field, change in entry.changes_dict.items()
        if isinstance(change, dict) and change.get("type") == "m2m"
    }
    assert changes == {
        ("groups", "delete", ("Caissier",)),
        ("groups", "add", ("Administrateur",)),
        ("additional_agencies", "add", ("Agence Lubumbashi (LSH-CTR)",)),
        ("user_permissions", "add", (str(export),)),
    }
    assert {entry.actor for entry in entries} == {administrator}
    history = client.get(reverse("admin:accounts_user_auditlog", args=[cashier.pk]))
    page = history.content.decode()
    assert "Administrateur" in page
    assert "Agence Lubumbashi (LSH-CTR)" in page
    assert "admin.siege" in page


def test_taking_an_agency_away_is_recorded(client, administrator, gombe, lubumbashi):
    cashier = employee(role=Role.CASHIER, agency=gombe)
    cashier.additional_agencies.set([lubumbashi])
    LogEntry.objects.all().delete()

    client.post(
        reverse("admin:accounts_user_change", args=[cashier.pk]),
        change_form(cashier, additional_agencies=[]),
    )

    entry = LogEntry.objects.get_for_object(cashier).get()
    assert entry.actor == administrator
    assert entry.changes_dict["additional_agencies"]["operation"] == "delete"
    assert entry.changes_dict["additional_agencies"]["objects"] == ["Agence Lubumbashi (LSH-CTR)"]


def test_saving_an_account_unchanged_records_no_grant(client, administrator, gombe):
    cashier = employee(role=Role.CASHIER, agency=gombe)
    LogEntry.objects.all().delete()

    client.post(reverse("admin:accounts_user_change", args=[cashier.pk]), change_form(cashier))

    assert not LogEntry.objects.get_for_object(cashier).exists()


# Every employee belongs to one agency


def test_an_employee_without_an_agency_is_refused_and_nothing_is_written(client, administrator):
    before = User.objects.count()

    response = client.post(
        reverse("admin:accounts_user_add"),
        add_form(username="caissier.sans.agence", roles=[Role.CASHIER]),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["agency"] == [EMPLOYEE_NEEDS_AGENCY]
    assert EMPLOYEE_NEEDS_AGENCY in response.content.decode()
    assert User.objects.count() == before
    assert not LogEntry.objects.filter(object_repr="caissier.sans.agence").exists()


def test_an_employee_is_added_with_an_agency(client, administrator, gombe):
    response = client.post(
        reverse("admin:accounts_user_add"),
        add_form(username="caissier.gombe", agency=gombe, roles=[Role.CASHIER]),
    )

    assert response.status_code == 302
    created = User.objects.get(username="caissier.gombe")
    assert created.agency == gombe
    assert list(created.groups.all()) == [group(Role.CASHIER)]


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.CLIENT])
def test_administrators_and_clients_need_no_agency(client, administrator, role):
    response = client.post(
        reverse("admin:accounts_user_add"), add_form(username="sans.agence", roles=[role])
    )

    assert response.status_code == 302
    assert User.objects.get(username="sans.agence").agency is None


def test_a_client_account_gets_no_home_agency(client, administrator, gombe):
    response = client.post(
        reverse("admin:accounts_user_add"),
        add_form(username="client.gombe", agency=gombe, roles=[Role.CLIENT]),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["agency"] == [CLIENT_HAS_NO_AGENCY]
    assert not User.objects.filter(username="client.gombe").exists()


def test_an_employees_agency_cannot_be_removed(client, administrator, gombe):
    cashier = employee(role=Role.CASHIER, agency=gombe)

    response = client.post(
        reverse("admin:accounts_user_change", args=[cashier.pk]),
        change_form(cashier, agency=""),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["agency"] == [EMPLOYEE_NEEDS_AGENCY]
    cashier.refresh_from_db()
    assert cashier.agency == gombe


def test_a_role_given_to_an_account_without_agency_is_refused(client, administrator):
    agencyless = UserFactory(is_staff=True, date_joined=JOINED)

    response = client.post(
        reverse("admin:accounts_user_change", args=[agencyless.pk]),
        change_form(agencyless, groups=[group(Role.TECHNICIAN).pk]),
    )

    assert response.status_code == 200
    assert not agencyless.groups.exists()


# Who may see which accounts


@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.HR_OFFICER])
def test_staff_see_the_accounts_of_their_agency_only(client, gombe, lubumbashi, role):
    client.force_login(EmployeeFactory(role=role, agency=gombe))
    colleague = EmployeeFactory(username="technicien.gombe", agency=gombe, role=Role.TECHNICIAN)
    foreign = EmployeeFactory(username="technicien.lshi", agency=lubumbashi, role=Role.TECHNICIAN)

    listing = client.get(reverse("admin:accounts_user_changelist"))

    assert listing.status_code == 200
    assert "technicien.gombe" in listing.content.decode()
    assert "technicien.lshi" not in listing.content.decode()
    assert client.get(reverse("admin:accounts_user_change", args=[colleague.pk])).status_code == 200
    opened = client.get(reverse("admin:accounts_user_change", args=[foreign.pk]), follow=True)
    assert opened.redirect_chain[-1][0] == reverse("admin:index")
    assert "technicien.lshi" not in opened.content.decode()
    history = client.get(reverse("admin:accounts_user_auditlog", args=[foreign.pk]))
    assert history.status_code == 404


def test_a_manager_cannot_change_accounts(client, gombe):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    cashier = employee(role=Role.CASHIER, agency=gombe)

    response = client.post(
        reverse("admin:accounts_user_change", args=[cashier.pk]),
        change_form(cashier, groups=[group(Role.ADMINISTRATOR).pk]),
    )

    assert response.status_code == 403
    assert list(cashier.groups.all()) == [group(Role.CASHIER)]


@pytest.mark.parametrize("who", ["anonymous", "client"])
@pytest.mark.parametrize("page", ["changelist", "change", "auditlog"])
def test_visitors_and_clients_do_not_reach_the_accounts(client, gombe, who, page):
    if who == "client":
        portal_user = PortalUserFactory()
        ClientFactory(agency=gombe, user=portal_user)
        client.force_login(portal_user)
    cashier = EmployeeFactory(role=Role.CASHIER, agency=gombe)
    args = [] if page == "changelist" else [cashier.pk]

    response = client.get(reverse(f"admin:accounts_user_{page}", args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
