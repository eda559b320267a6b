"""Role groups and employee accounts."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError

from mwolo.accounts.models import User
from mwolo.accounts.services import (
    employee_create,
    roles_sync,
    user_agency_validate,
    user_roles,
)
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role

pytestmark = pytest.mark.django_db


def test_roles_sync_is_idempotent_and_restores_the_coded_permissions():
    cashier = Group.objects.get(name=ROLE_GROUP_NAMES[Role.CASHIER])
    cashier.permissions.add(Permission.objects.get(codename="delete_client"))

    roles_sync()
    roles_sync()

    assert Group.objects.filter(name__in=ROLE_GROUP_NAMES.values()).count() == len(Role)
    assert not cashier.permissions.filter(codename="delete_client").exists()
    assert cashier.permissions.filter(codename="view_client").exists()


def test_the_administrator_role_has_every_permission_and_sees_all_agencies():
    administrator = Group.objects.get(name=ROLE_GROUP_NAMES[Role.ADMINISTRATOR])
    assert administrator.permissions.count() == Permission.objects.count()
    assert administrator.permissions.filter(codename="view_all_agencies").exists()


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (Role.AGENCY_MANAGER, "crm.review_connectionrequest", "crm.delete_client"),
        (Role.CASHIER, "crm.view_client", "crm.change_client"),
        (Role.TECHNICIAN, "crm.change_site", "crm.change_client"),
        (Role.SUPPORT_AGENT, "crm.change_client", "crm.review_connectionrequest"),
        (Role.HR_OFFICER, "accounts.view_user", "crm.view_client"),
        (Role.CLIENT, "crm.view_site", "crm.view_connectionrequest"),
    ],
)
def test_each_role_gets_what_it_needs_and_no_more(role, allowed, refused):
    user = User.objects.create(username=f"u-{role}")
    user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[role]))
    user = User.objects.get(pk=user.pk)  # fresh permission cache

    assert user.has_perm(allowed)
    assert not user.has_perm(refused)
    assert not user.has_perm("agencies.view_all_agencies")


def test_employee_create_gives_roles_agency_and_back_office_access():
    gombe = AgencyFactory()
    user = employee_create(
        username="caissier.gombe",
        first_name="Chantal",
        last_name="Nzuzi",
        roles=[Role.CASHIER],
        agency=gombe,
        phone="0991234567",
        password="motdepasse-solide-2026",
    )
    assert user_roles(user) == {Role.CASHIER}
    assert user.is_staff
    assert not user.is_superuser
    assert user.agency == gombe
    assert user.check_password("motdepasse-solide-2026")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"roles": [Role.CASHIER], "agency": None}, "agency"),
        ({"roles": [], "agency": "gombe"}, "roles"),
        ({"roles": [Role.CLIENT], "agency": "gombe"}, "roles"),
        ({"roles": [Role.CASHIER], "agency": "gombe", "phone": "+33612345678"}, "phone"),
    ],
)
def test_employee_create_refuses_bad_input_and_writes_nothing(kwargs, field):
    if kwargs.get("agency") == "gombe":
        kwargs["agency"] = AgencyFactory()
    with pytest.raises(ValidationError) as excinfo:
        employee_create(username="x", first_name="A", last_name="B", **kwargs)
    assert field in excinfo.value.message_dict
    assert not User.objects.filter(username="x").exists()


def test_an_administrator_needs_no_agency():
    user = employee_create(
        username="admin2", first_name="A", last_name="B", roles=[Role.ADMINISTRATOR], agency=None
    )
    assert user.agency is None
    assert user.has_perm("agencies.view_all_agencies")


@pytest.mark.parametrize(
    ("roles", "with_agency", "refused"),
    [
        ({Role.CASHIER}, False, True),
        ({Role.HR_OFFICER, Role.TECHNICIAN}, False, True),
        ({Role.CASHIER}, True, False),
        ({Role.ADMINISTRATOR}, False, False),
        ({Role.ADMINISTRATOR, Role.CASHIER}, False, False),
        ({Role.CLIENT}, False, False),
        ({Role.CLIENT}, True, True),
        (set(), False, False),
    ],
)
def test_the_home_agency_rule(roles, with_agency, refused):
    agency = AgencyFactory() if with_agency else None

    if refused:
        with pytest.raises(ValidationError) as excinfo:
            user_agency_validate(roles=roles, agency=agency)
        assert list(excinfo.value.message_dict) == ["agency"]
    else:
        user_agency_validate(roles=roles, agency=agency)


def test_a_superuser_needs_no_agency():
    user_agency_validate(roles={Role.CASHIER}, agency=None, is_superuser=True)
