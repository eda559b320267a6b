"""The one scoping mechanism, checked for every kind of user on every scoped model."""

import pytest

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.models import Agency
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role, get_visible_or_404, visible_to
from mwolo.crm.models import Client, ConnectionRequest, Site
from mwolo.crm.tests.factories import ConnectionRequestFactory, SiteFactory
from mwolo.geo.tests.factories import commune

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_agencies():
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    return gombe, lubumbashi


@pytest.fixture
def records(two_agencies):
    gombe, lubumbashi = two_agencies
    return {
        agency.code: {
            "site": SiteFactory(agency=agency),
            "request": ConnectionRequestFactory(agency=agency),
        }
        for agency in (gombe, lubumbashi)
    }


@pytest.mark.parametrize("role", [r for r in Role if r.is_employee and r is not Role.ADMINISTRATOR])
def test_employee_sees_only_their_agency(role, two_agencies, records):
    gombe, _lubumbashi = two_agencies
    employee = EmployeeFactory(role=role, agency=gombe)

    assert set(visible_to(Site.objects.all(), employee)) == {records["KIN-GOM"]["site"]}
    assert set(visible_to(Client.objects.all(), employee)) == {records["KIN-GOM"]["site"].client}
    assert set(visible_to(ConnectionRequest.objects.all(), employee)) == {
        records["KIN-GOM"]["request"]
    }
    assert set(visible_to(Agency.objects.all(), employee)) == {gombe}


def test_granted_agency_widens_the_scope(two_agencies, records):
    gombe, lubumbashi = two_agencies
    employee = EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe)
    employee.additional_agencies.add(lubumbashi)

    assert visible_to(Site.objects.all(), employee).count() == 2


def test_administrator_and_superuser_see_every_agency(records):
    administrator = AdministratorFactory()
    superuser = UserFactory(is_superuser=True)

    assert visible_to(Site.objects.all(), administrator).count() == 2
    assert visible_to(Site.objects.all(), superuser).count() == 2


def test_client_sees_only_their_own_records(records):
    site = records["KIN-GOM"]["site"]
    other_site = SiteFactory(agency=site.agency)
    client_user = UserFactory()
    site.client.user = client_user
    site.client.save()

    assert list(visible_to(Site.objects.all(), client_user)) == [site]
    assert list(visible_to(Client.objects.all(), client_user)) == [site.client]
    assert other_site.client not in visible_to(Client.objects.all(), client_user)
    # Connection requests are staff business: a client never lists them.
    assert not visible_to(ConnectionRequest.objects.all(), client_user).exists()


def test_anonymous_inactive_and_agencyless_users_see_nothing(records):
    from django.contrib.auth.models import AnonymousUser

    inactive = EmployeeFactory(agency=records["KIN-GOM"]["site"].agency, is_active=False)
    nobody = UserFactory()
    for user in (AnonymousUser(), inactive, nobody):
        assert not visible_to(Site.objects.all(), user).exists()
        assert not visible_to(Client.objects.all(), user).exists()


def test_a_record_outside_the_scope_is_not_found(two_agencies, records):
    from django.http import Http404

    gombe, _ = two_agencies
    employee = EmployeeFactory(role=Role.CASHIER, agency=gombe)
    foreign_site = records["LSH-CTR"]["site"]

    with pytest.raises(Http404):
        get_visible_or_404(Site.objects.all(), employee, pk=foreign_site.pk)
    own = records["KIN-GOM"]["site"]
    assert get_visible_or_404(Site.objects.all(), employee, pk=own.pk) == own
