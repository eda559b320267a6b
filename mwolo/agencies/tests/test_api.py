"""The public list and map of agencies: active agencies only, public fields only."""

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
from mwolo.agencies.models import Agency, OpeningHours
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.geo.tests.factories import commune

pytestmark = pytest.mark.django_db

PUBLIC_FIELDS = {
    "id",
    "code",
    "name",
    "address_line",
    "commune",
    "territory",
    "province",
    "phone",
    "email",
    "latitude",
    "longitude",
    "time_zone",
    "opening_hours",
}


def open_weekdays(agency: Agency) -> None:
    for weekday in range(5):
        OpeningHours.objects.create(
            agency=agency, weekday=weekday, opens_at=dt.time(8), closes_at=dt.time(12)
        )
        OpeningHours.objects.create(
            agency=agency, weekday=weekday, opens_at=dt.time(13), closes_at=dt.time(16, 30)
        )


def test_an_agency_shows_its_public_details():
    agency = AgencyFactory(
        code="LSH-CTR",
        name="Agence Lubumbashi Centre",
        commune=commune("Kampemba", "Lubumbashi"),
        latitude=Decimal("-11.664"),
        longitude=Decimal("27.482"),
    )
    open_weekdays(agency)

    response = APIClient().get(f"/api/agencies/{agency.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    assert body["code"] == "LSH-CTR"
    assert body["commune"]["name"] == "Kampemba"
    assert body["territory"]["name"] == "Lubumbashi"
    assert body["province"]["name"] == "Haut-Katanga"
    assert body["time_zone"] == "Africa/Lubumbashi"
    assert body["latitude"] == "-11.664000"
    assert len(body["opening_hours"]) == 10
    assert body["opening_hours"][0] == {
        "weekday": 0,
        "weekday_label": body["opening_hours"][0]["weekday_label"],
        "opens_at": "08:00:00",
        "closes_at": "12:00:00",
    }


def test_closed_agencies_are_neither_listed_nor_shown():
    open_agency = AgencyFactory(code="KIN-GOM")
    closed = AgencyFactory(code="KIN-OLD", is_active=False)
    api = APIClient()

    listed = [row["code"] for row in api.get("/api/agencies/").json()["results"]]

    assert listed == [open_agency.code]
    assert api.get(f"/api/agencies/{closed.pk}/").status_code == 404


def test_agencies_are_searched_and_filtered_by_place():
    gombe = AgencyFactory(code="KIN-GOM", name="Agence Gombe")
    kampemba = AgencyFactory(code="LSH-KPB", commune=commune("Kampemba", "Lubumbashi"))
    api = APIClient()

    def codes(**params):
        return [row["code"] for row in api.get("/api/agencies/", params).json()["results"]]

    assert codes(search="gombe") == [gombe.code]
    assert codes(province=kampemba.province_id) == [kampemba.code]
    assert codes(territory=gombe.territory_id) == [gombe.code]


@pytest.mark.parametrize("who", ["anonymous", *(r.value for r in Role)])
def test_everyone_reads_agencies_and_nobody_writes_them(who):
    agency = AgencyFactory(code="KIN-GOM")
    api = APIClient()
    if who == Role.ADMINISTRATOR:
        api.force_login(AdministratorFactory())
    elif who != "anonymous":
        api.force_login(EmployeeFactory(role=Role(who), agency=agency))
    before = list(Agency.objects.order_by("pk").values())
    url = f"/api/agencies/{agency.pk}/"

    assert api.get("/api/agencies/").status_code == 200
    assert api.get(url).status_code == 200
    assert api.post("/api/agencies/", {"code": "NEW"}, format="json").status_code == 405
    assert api.patch(url, {"name": "Pirate"}, format="json").status_code == 405
    assert api.put(url, {"name": "Pirate"}, format="json").status_code == 405
    assert api.delete(url).status_code == 405
    assert list(Agency.objects.order_by("pk").values()) == before


def test_the_agency_list_costs_the_same_for_20_agencies(django_assert_max_num_queries):
    for number in range(20):
        open_weekdays(AgencyFactory(code=f"AG-{number:02d}"))

    # Count, agencies with their places, opening hours: no query per agency.
    with django_assert_max_num_queries(3):
        response = APIClient().get("/api/agencies/", {"page_size": 100})

    rows = response.json()["results"]
    assert len(rows) == 20
    assert all(len(row["opening_hours"]) == 10 for row in rows)
