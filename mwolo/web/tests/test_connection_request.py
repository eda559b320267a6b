"""The public connection-request form: what a visitor sends, sees and leaves behind."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.crm.models import ConnectionRequest
from mwolo.crm.tests.factories import ConnectionRequestFactory
from mwolo.geo.tests.factories import commune, province, territory

pytestmark = pytest.mark.django_db

FORM_URL = reverse("web:connection_request")


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )


def form_data(agency, **overrides) -> dict[str, str]:
    place = commune("Gombe")
    data = {
        "kind": "person",
        "first_name": "Espérance",
        "last_name": "Mbuyi",
        "middle_name": "Kalonji",
        "company_name": "",
        "rccm": "",
        "national_id": "",
        "phone": "0812345678",
        "email": "esperance@example.cd",
        "preferred_language": "fr",
        "category": "residential",
        "province": place.territory.province.pk,
        "territory": place.territory.pk,
        "commune": place.pk,
        "address_line": "12, avenue du Commerce",
        "latitude": "",
        "longitude": "",
        "agency": agency.pk,
        "message": "",
        "website": "",
    }
    data.update({key: str(value) for key, value in overrides.items()})
    return data


def test_a_good_request_is_recorded_once_and_the_visitor_sees_its_reference(client, gombe):
    response = client.post(FORM_URL, form_data(gombe))

    request = ConnectionRequest.objects.get()
    assert request.status == ConnectionRequest.Status.PENDING
    assert request.reference.startswith("DR-")
    assert request.phone.as_e164 == "+243812345678"
    assert (request.first_name, request.agency, request.commune) == (
        "Espérance",
        gombe,
        commune("Gombe"),
    )
    thanks_url = reverse("web:connection_request_thanks", args=[request.reference])
    assert response.status_code == 302
    assert response["Location"] == thanks_url

    thanks = client.get(thanks_url)
    assert thanks.status_code == 200
    assert request.reference in thanks.content.decode()


def test_a_company_request_keeps_its_company_details(client, gombe):
    client.post(
        FORM_URL,
        form_data(
            gombe,
            kind="company",
            first_name="",
            last_name="",
            middle_name="",
            company_name="Boulangerie du Fleuve SARL",
            rccm="CD/KNG/RCCM/14-B-01234",
            category="commercial",
            latitude="-4,3219",  # a decimal comma, as French phones type it
            longitude="15.3070",
        ),
    )

    request = ConnectionRequest.objects.get()
    assert (request.kind, request.company_name, request.rccm) == (
        "company",
        "Boulangerie du Fleuve SARL",
        "CD/KNG/RCCM/14-B-01234",
    )
    assert str(request.latitude) == "-4.321900"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        pytest.param(
            {"phone": "0812"},
            "phone",
            "Numéro de téléphone invalide : attendu +243 suivi de 9 chiffres",
            id="malformed-phone",
        ),
        pytest.param(
            {"phone": "+33612345678"},
            "phone",
            "Seuls les numéros congolais (+243) sont acceptés.",
            id="foreign-phone",
        ),
        pytest.param(
            {"commune": ("Kampemba", "Lubumbashi")},
            "commune",
            "La commune Kampemba ne se trouve pas à Kinshasa.",
            id="commune-not-in-territory",
        ),
        pytest.param(
            {"territory": "Goma", "commune": ""},
            "territory",
            "Goma ne se trouve pas dans la province de Kinshasa.",
            id="territory-not-in-province",
        ),
        pytest.param(
            {"kind": "company", "company_name": ""},
            "company_name",
            "Saisissez la raison sociale.",
            id="company-without-name",
        ),
        pytest.param(
            {"first_name": "", "last_name": ""},
            "last_name",
            "Saisissez le nom.",
            id="person-without-names",
        ),
        pytest.param(
            {"province": "CD-HK", "territory": "Lubumbashi", "commune": ("Kampemba", "Lubumbashi")},
            "agency",
            "L’agence Agence Gombe (KIN-GOM) ne dessert pas cette province.",
            id="agency-not-serving-province",
        ),
        pytest.param(
            {"latitude": "48.8566", "longitude": "2.3522"},
            "latitude",
            "Cette latitude est hors de la RD Congo (entre -13,5 et 5,5).",
            id="gps-outside-drc",
        ),
        pytest.param(
            {"latitude": "-4.3219", "longitude": "52.1"},
            "longitude",
            "Cette longitude est hors de la RD Congo (entre 12 et 31,5).",
            id="longitude-outside-drc",
        ),
    ],
)
def test_bad_input_shows_the_field_error_in_french_and_writes_nothing(
    client, gombe, overrides, field, message
):
    overrides = _resolve_places(overrides)
    before = ConnectionRequest.objects.count()

    response = client.post(FORM_URL, form_data(gombe, **overrides))

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    html = response.content.decode()
    # Next to the field (its error list carries the field's id) and in the summary on top.
    assert re.search(rf'id="id_{field}_error"[^>]*>\s*<li>{re.escape(escape(message))}', html)
    assert 'aria-invalid="true"' in html
    assert ConnectionRequest.objects.count() == before


def _resolve_places(overrides: dict) -> dict:
    """Test parameters name places; the form posts their primary keys."""
    resolved = dict(overrides)
    if isinstance(resolved.get("commune"), tuple):
        resolved["commune"] = commune(*resolved["commune"]).pk
    if resolved.get("territory"):
        resolved["territory"] = territory(resolved["territory"]).pk
    if resolved.get("province"):
        resolved["province"] = province(resolved["province"]).pk
    return resolved


@pytest.mark.parametrize(
    ("latitude", "longitude", "stored"),
    [
        ("-4,3219", "15,307", ("-4.321900", "15.307000")),
        ("-4.32185346", "15.30711839", ("-4.321853", "15.307118")),  # as a map app gives
    ],
)
def test_gps_is_read_with_a_comma_or_many_digits_in_any_language(
    client, gombe, latitude, longitude, stored
):
    client.post(reverse("set_language"), {"language": "en", "next": FORM_URL})

    client.post(FORM_URL, form_data(gombe, latitude=latitude, longitude=longitude))

    request = ConnectionRequest.objects.get()
    assert (str(request.latitude), str(request.longitude)) == stored


@pytest.mark.parametrize("latitude", ["north", "1e30", "NaN", "-4,3,2"])
def test_unreadable_gps_is_a_field_error(client, gombe, latitude):
    response = client.post(FORM_URL, form_data(gombe, latitude=latitude, longitude="15.3"))

    assert response.status_code == 400
    assert "latitude" in response.context["form"].errors
    assert not ConnectionRequest.objects.exists()


def test_a_person_without_names_is_told_both(client, gombe):
    response = client.post(FORM_URL, form_data(gombe, first_name="", last_name=""))

    errors = response.context["form"].errors
    assert errors["first_name"] == ["Saisissez le prénom."]
    assert errors["last_name"] == ["Saisissez le nom."]
    assert not ConnectionRequest.objects.exists()


def test_every_problem_is_shown_at_once(client, gombe):
    response = client.post(
        FORM_URL,
        form_data(gombe, phone="12", last_name="", latitude="48.85", longitude="2.35"),
    )

    assert {"phone", "last_name", "latitude"} <= set(response.context["form"].errors)
    assert not ConnectionRequest.objects.exists()


def test_errors_are_in_english_after_switching(client, gombe):
    client.post(reverse("set_language"), {"language": "en", "next": FORM_URL})

    response = client.post(FORM_URL, form_data(gombe, phone="+33612345678"))

    # What the visitor reads (messages are lazy: the page is where the language applied).
    page = response.content.decode()
    assert "Only Congolese numbers (+243) are accepted." in page
    assert '<html lang="en">' in page
    assert not ConnectionRequest.objects.exists()


def test_an_inactive_agency_cannot_be_chosen(client, gombe):
    gombe.is_active = False
    gombe.save()

    response = client.post(FORM_URL, form_data(gombe))

    assert "agency" in response.context["form"].errors
    assert not ConnectionRequest.objects.exists()


def test_missing_required_fields_are_errors_not_a_crash(client, gombe):
    response = client.post(FORM_URL, {"kind": "alien", "province": "not-a-number"})

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert {"kind", "phone", "province", "territory", "agency", "address_line"} <= set(errors)
    assert not ConnectionRequest.objects.exists()


def test_a_filled_honeypot_writes_nothing(client, gombe):
    response = client.post(FORM_URL, form_data(gombe, website="https://spam.example"))

    assert response.status_code == 400
    assert not ConnectionRequest.objects.exists()
    # A person whose browser filled it by mistake gets their answers back to send again.
    html = response.content.decode()
    assert 'value="Espérance"' in html
    assert "https://spam.example" not in html


def test_the_thanks_page_shows_the_reference_and_nothing_about_the_applicant(client):
    request = ConnectionRequestFactory(
        reference="DR-2026-000042",
        first_name="Patrick",
        last_name="Lumumba",
        phone="+243990000042",
        email="patrick@example.cd",
    )

    html = client.get(reverse("web:connection_request_thanks", args=[request.reference]))
    html = html.content.decode()

    assert "DR-2026-000042" in html
    for private in ("Patrick", "Lumumba", "990000042", "99 000 0042", "patrick@example.cd"):
        assert private not in html
    assert '<meta name="robots" content="noindex">' in html


def test_the_thanks_page_of_an_unknown_reference_is_not_found(client):
    response = client.get(reverse("web:connection_request_thanks", args=["DR-2026-999999"]))

    assert response.status_code == 404


def test_the_form_groups_places_so_it_works_without_javascript(client, gombe, lubumbashi):
    html = client.get(FORM_URL).content.decode()

    assert '<optgroup label="Haut-Katanga">' in html  # territories by province, agencies too
    assert '<optgroup label="Lubumbashi – Haut-Katanga">' in html  # communes by territory
    assert ">Kampemba</option>" in html
    assert ">Agence Lubumbashi</option>" in html
    assert "<script" not in html


def test_the_form_page_takes_a_fixed_number_of_queries(
    client, gombe, django_assert_max_num_queries
):
    for number in range(8):
        AgencyFactory(code=f"KIN-{number:03d}")

    # Agencies, provinces, territories, communes: one query each, whatever their number.
    with django_assert_max_num_queries(4):
        response = client.get(FORM_URL)
    assert response.status_code == 200


def test_a_flood_from_one_address_is_stopped_with_a_clear_page(client, gombe):
    """The public form shares the API's ``public_form`` quota (20 an hour per address)."""
    for index in range(20):
        response = client.post(FORM_URL, form_data(gombe, phone=f"+24397{index:07d}"))
        assert response.status_code == 302

    flooded = client.post(FORM_URL, form_data(gombe, phone="+243970009999"))

    assert flooded.status_code == 429
    assert "Trop de demandes" in flooded.content.decode()
    assert ConnectionRequest.objects.count() == 20
    other_address = client.post(
        FORM_URL, form_data(gombe, phone="+243970008888"), REMOTE_ADDR="41.243.7.7"
    )
    assert other_address.status_code == 302
