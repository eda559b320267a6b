import pytest

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.crm.tests.factories import SiteFactory


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM")


@pytest.fixture
def site(gombe):
    return SiteFactory(agency=gombe)


@pytest.fixture
def manager(gombe):
    return EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)


@pytest.fixture
def technician(gombe):
    return EmployeeFactory(role=Role.TECHNICIAN, agency=gombe)
