"""Provinces, territories and communes: public, read-only, cheap to list."""

import pytest
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
from mwolo.core.permissions import Role
from mwolo.geo.models import Commune, Province, Territory
from mwolo.geo.tests.factories import province, territory

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/geo/provinces/", "/api/geo/territories/", "/api/geo/communes/"]


def test_the_26_provinces_are_listed_for_anyone():
    response = APIClient().get("/api/geo/provinces/", {"page_size": 100})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 26
    kinshasa = next(row for row in body["results"] if row["code"] == "CD-KN")
    assert kinshasa == {
        "id": province("CD-KN").pk,
        "code": "CD-KN",
        "name": "Kinshasa",
        "capital": "Kinshasa",
        "time_zone": "Africa/Kinshasa",
    }


def test_territories_are_filtered_by_province():
    haut_katanga = province("CD-HK")

    response = APIClient().get("/api/geo/territories/", {"province": haut_katanga.pk})

    assert response.status_code == 200
    rows = response.json()["results"]
    assert rows
    assert {row["province"] for row in rows} == {haut_katanga.pk}
    lubumbashi = next(row for row in rows if row["name"] == "Lubumbashi")
    assert lubumbashi["kind"] == "city"
    assert lubumbashi["kind_label"]


def test_communes_are_filtered_by_territory():
    goma = territory("Goma")

    response = APIClient().get("/api/geo/communes/", {"territory": goma.pk})

    assert {row["name"] for row in response.json()["results"]} == {"Goma", "Karisimbi"}


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/geo/territories/", {"province": "Kinshasa"}),
        ("/api/geo/territories/", {"province": 999_999}),
        ("/api/geo/communes/", {"territory": "x"}),
        ("/api/geo/communes/", {"kind": "village"}),
    ],
)
def test_a_bad_filter_is_a_400_with_the_filter_named(url, params):
    response = APIClient().get(url, params)

    assert response.status_code == 400
    assert set(response.json()) == set(params)


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("who", ["anonymous", "administrator", *(r.value for r in Role)])
def test_everyone_reads_and_nobody_writes(url, who):
    api = APIClient()
    if who == "administrator":
        api.force_login(AdministratorFactory())
    elif who != "anonymous":
        api.force_login(EmployeeFactory(role=Role(who)))
    first_id = api.get(url).json()["results"][0]["id"]
    before = [list(m.objects.order_by("pk").values()) for m in (Province, Territory, Commune)]

    assert api.get(f"{url}{first_id}/").status_code == 200
    assert api.post(url, {"name": "Nouvelle"}, format="json").status_code == 405
    assert api.patch(f"{url}{first_id}/", {"name": "X"}, format="json").status_code == 405
    assert api.put(f"{url}{first_id}/", {"name": "X"}, format="json").status_code == 405
    assert api.delete(f"{url}{first_id}/").status_code == 405
    after = [list(m.objects.order_by("pk").values()) for m in (Province, Territory, Commune)]
    assert after == before


def test_a_stale_token_does_not_break_a_public_form():
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer expired.or.forged")

    assert api.get("/api/geo/provinces/").status_code == 200


@pytest.mark.parametrize(
    ("url", "model"), list(zip(ENDPOINTS, (Province, Territory, Commune), strict=True))
)
def test_reference_lists_cost_two_queries_whatever_their_length(
    url, model, django_assert_max_num_queries
):
    # Count and page: every row of the reference data in one query.
    with django_assert_max_num_queries(2):
        response = APIClient().get(url, {"page_size": 200})

    assert len(response.json()["results"]) == model.objects.count() > 10
