"""The back office's list pages cost a fixed number of queries, however many rows they show.

Rows are spread over agencies in different provinces and cities, so a column that reads a
related row per line (an agency's city, a city's province) shows up as extra queries.
"""

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
from mwolo.agencies.models import Agency
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.crm.tests.factories import ClientFactory, ConnectionRequestFactory, SiteFactory
from mwolo.geo.tests.factories import commune

pytestmark = pytest.mark.django_db

# A commune of each of eight cities, in seven provinces.
PLACES = [
    ("Bandalungwa", "Kinshasa"),
    ("Annexe", "Lubumbashi"),
    ("Goma", "Goma"),
    ("Bagira", "Bukavu"),
    ("Matadi", "Matadi"),
    ("Kabondo", "Kisangani"),
    ("Bipemba", "Mbuji-Mayi"),
    ("Dilala", "Kolwezi"),
]


def _agencies(places: list[tuple[str, str]]) -> list[Agency]:
    return [AgencyFactory(commune=commune(name, city)) for name, city in places]


def _employees(places: list[tuple[str, str]]) -> None:
    for agency in _agencies(places):
        EmployeeFactory(agency=agency, role=Role.CASHIER)
        EmployeeFactory(agency=agency, role=Role.TECHNICIAN)


def _rows(factory: Callable) -> Callable[[list[tuple[str, str]]], None]:
    def make(places: list[tuple[str, str]]) -> None:
        for agency in _agencies(places):
            factory(agency=agency)
            factory(agency=agency)

    return make


GROWING_LISTS = {
    "agencies_agency": _agencies,
    "accounts_user": _employees,
    "crm_client": _rows(ClientFactory),
    "crm_site": _rows(SiteFactory),
    "crm_connectionrequest": _rows(ConnectionRequestFactory),
}


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize("page", GROWING_LISTS)
def test_a_list_costs_the_same_for_two_agencies_and_for_eight(
    client, page, django_assert_max_num_queries
):
    client.force_login(AdministratorFactory())
    url = reverse(f"admin:{page}_changelist")
    add_rows = GROWING_LISTS[page]
    add_rows(PLACES[:2])
    client.get(url)  # content types, permissions and the like, cached once per process
    two_agencies = _queries(client, url)

    add_rows(PLACES[2:])

    with django_assert_max_num_queries(two_agencies):
        response = client.get(url)
    assert response.status_code == 200
    assert two_agencies <= 20


@pytest.mark.parametrize(
    "page",
    [
        "geo_country",
        "geo_province",
        "geo_territory",
        "geo_commune",
        "axes_accessattempt",
        "axes_accesslog",
        "axes_accessfailurelog",
    ],
)
def test_reference_and_login_lists_cost_a_few_queries(client, page, django_assert_max_num_queries):
    """The geography is the reference data: 26 provinces, tens of cities and communes."""
    client.force_login(AdministratorFactory())

    with django_assert_max_num_queries(12):
        response = client.get(reverse(f"admin:{page}_changelist"))
    assert response.status_code == 200
