"""Client, site and connection-request writes: validation, scoping, numbering, review."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.crm import services
from mwolo.crm.models import Client, ConnectionRequest, PartyKind, Site, SiteCategory
from mwolo.crm.tests.factories import ClientFactory, ConnectionRequestFactory
from mwolo.geo.tests.factories import address, commune

pytestmark = pytest.mark.django_db


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM")


def new_client(agency, **overrides) -> Client:
    values = {
        "kind": PartyKind.PERSON,
        "first_name": "Espérance",
        "last_name": "Mbuyi",
        "phone": "0812345678",
        "agency": agency,
        **address("Gombe"),
        **overrides,
    }
    return Client(**values)


def field_errors(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return excinfo.value.message_dict


def test_new_client_gets_the_next_number_and_a_normalised_phone(gombe):
    first = services.client_save(client=new_client(gombe), actor=None)
    second = services.client_save(client=new_client(gombe, first_name="Gloire"), actor=None)

    assert first.number == "CL-0000001"
    assert second.number == "CL-0000002"
    assert first.phone.as_e164 == "+243812345678"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"phone": "0812"}, "phone", "attendu +243 suivi de 9 chiffres"),
        ({"phone": "+33612345678"}, "phone", "Seuls les numéros congolais"),
        ({"phone": "+243123456789"}, "phone", "pas un numéro mobile congolais"),
        ({"first_name": ""}, "first_name", "Saisissez le prénom"),
        ({"kind": PartyKind.COMPANY}, "company_name", "Saisissez la raison sociale"),
        ({"rccm": "RCCM 1234"}, "rccm", "CD/KNG/RCCM/14-B-01234"),
        ({"preferred_channel": "email"}, "email", "choisissez le SMS"),
    ],
)
def test_bad_client_input_is_refused_field_by_field(gombe, overrides, field, message):
    with pytest.raises(ValidationError) as excinfo:
        services.client_save(client=new_client(gombe, **overrides), actor=None)

    assert message in " ".join(field_errors(excinfo)[field])
    assert not Client.objects.exists()


def test_an_address_out_of_chain_names_the_wrong_level(gombe):
    lubumbashi_commune = commune("Kampemba", "Lubumbashi")
    with pytest.raises(ValidationError) as excinfo:
        services.client_save(client=new_client(gombe, commune=lubumbashi_commune), actor=None)
    assert "La commune Kampemba ne se trouve pas à Kinshasa" in field_errors(excinfo)["commune"][0]

    goma = commune("Goma", "Goma").territory
    with pytest.raises(ValidationError) as excinfo:
        services.client_save(client=new_client(gombe, territory=goma, commune=None), actor=None)
    territory_error = field_errors(excinfo)["territory"][0]
    assert "Goma ne se trouve pas dans la province de Kinshasa" in territory_error
    assert not Client.objects.exists()


def test_every_problem_is_reported_at_once(gombe):
    with pytest.raises(ValidationError) as excinfo:
        services.client_save(
            client=new_client(gombe, phone="12", last_name="", commune=commune("Goma", "Goma")),
            actor=None,
        )
    assert {"phone", "last_name", "commune"} <= set(field_errors(excinfo))


def test_a_duplicate_client_number_is_a_field_error(gombe):
    ClientFactory(number="CL-0000042", agency=gombe)
    with pytest.raises(ValidationError) as excinfo:
        services.client_save(client=new_client(gombe, number="CL-0000042"), actor=None)

    assert field_errors(excinfo)["number"] == ["Un client porte déjà ce numéro."]
    assert Client.objects.count() == 1


def test_an_employee_cannot_file_a_client_under_another_agency(gombe):
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    with pytest.raises(ValidationError) as excinfo:
        services.client_save(
            client=new_client(lubumbashi, **address("Kampemba", "Lubumbashi")), actor=manager
        )
    assert "agency" in field_errors(excinfo)
    assert not Client.objects.exists()


def test_a_client_must_be_filed_under_an_agency_of_their_province(gombe):
    lubumbashi = AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )

    with pytest.raises(ValidationError) as excinfo:
        services.client_save(client=new_client(lubumbashi, **address("Gombe")), actor=None)

    assert field_errors(excinfo)["agency"] == [
        "L’agence Agence Lubumbashi (LSH-CTR) ne dessert pas cette province."
    ]
    assert not Client.objects.exists()
    served = services.client_save(
        client=new_client(lubumbashi, **address("Kampemba", "Lubumbashi")), actor=None
    )
    assert served.agency == lubumbashi


def test_a_client_moving_to_another_province_needs_an_agency_there(gombe):
    client = services.client_save(client=new_client(gombe), actor=None)
    for field, value in address("Kampemba", "Lubumbashi").items():
        setattr(client, field, value)

    with pytest.raises(ValidationError) as excinfo:
        services.client_save(client=client, actor=None)

    assert "agency" in field_errors(excinfo)
    client.refresh_from_db()
    assert client.province.code == "CD-KN"


def test_a_site_must_be_served_by_an_agency_of_its_province(gombe):
    client = ClientFactory(agency=gombe)
    site = Site(
        client=client,
        agency=gombe,
        category=SiteCategory.RESIDENTIAL,
        latitude=Decimal("-11.66"),
        longitude=Decimal("27.48"),
        **address("Kampemba", "Lubumbashi"),
    )
    with pytest.raises(ValidationError) as excinfo:
        services.site_save(site=site, actor=None)
    assert "ne dessert pas cette province" in field_errors(excinfo)["agency"][0]
    assert not Site.objects.exists()


@pytest.mark.parametrize(
    ("latitude", "longitude", "field"),
    [
        (Decimal("48.85"), Decimal("2.35"), "latitude"),  # Paris
        (Decimal("15.30"), Decimal("-4.32"), "longitude"),  # axes swapped
        (Decimal("-4.32"), None, "longitude"),
    ],
)
def test_gps_outside_the_drc_is_refused(gombe, latitude, longitude, field):
    site = Site(
        client=ClientFactory(agency=gombe),
        agency=gombe,
        category=SiteCategory.COMMERCIAL,
        latitude=latitude,
        longitude=longitude,
        **address("Gombe"),
    )
    with pytest.raises(ValidationError) as excinfo:
        services.site_save(site=site, actor=None)
    assert field in field_errors(excinfo)


def test_submitted_request_gets_a_yearly_public_reference(gombe):
    request = ConnectionRequest(
        kind=PartyKind.PERSON,
        first_name="Fiston",
        last_name="Kasongo",
        phone="+243970001122",
        category=SiteCategory.RESIDENTIAL,
        agency=gombe,
        **address("Gombe"),
    )
    saved = services.connection_request_submit(request=request)
    assert saved.reference == f"DR-{clock.today().year}-000001"
    assert saved.status == ConnectionRequest.Status.PENDING


def test_approval_creates_the_client_and_the_site_once(gombe):
    request = ConnectionRequestFactory(agency=gombe, first_name="Blaise", last_name="Ilunga")
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    approved = services.connection_request_approve(request_id=request.pk, actor=manager)

    assert approved.status == ConnectionRequest.Status.APPROVED
    assert approved.reviewed_by == manager
    assert approved.client.display_name == "Blaise Ilunga"
    assert approved.client.phone == request.phone
    assert approved.site.client == approved.client
    assert approved.site.agency == gombe
    with pytest.raises(ApplicationError) as excinfo:
        services.connection_request_approve(request_id=request.pk, actor=manager)
    assert excinfo.value.status == 409
    assert Client.objects.count() == 1
    assert Site.objects.count() == 1


def test_approval_can_attach_the_site_to_an_existing_client(gombe):
    existing = ClientFactory(agency=gombe)
    request = ConnectionRequestFactory(agency=gombe)
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    approved = services.connection_request_approve(
        request_id=request.pk, actor=manager, existing_client=existing
    )
    assert approved.client == existing
    assert Client.objects.count() == 1
    assert existing.sites.count() == 1


def test_rejection_needs_a_reason_and_blocks_a_later_approval(gombe):
    request = ConnectionRequestFactory(agency=gombe)
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    with pytest.raises(ValidationError):
        services.connection_request_reject(request_id=request.pk, actor=manager, reason="  ")
    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.PENDING

    services.connection_request_reject(
        request_id=request.pk, actor=manager, reason="Zone non desservie"
    )
    with pytest.raises(ApplicationError):
        services.connection_request_approve(request_id=request.pk, actor=manager)
    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.REJECTED
    assert not Client.objects.exists()


@pytest.mark.parametrize("role", [Role.CASHIER, Role.SUPPORT_AGENT, Role.TECHNICIAN])
def test_only_reviewers_may_approve(gombe, role):
    request = ConnectionRequestFactory(agency=gombe)
    with pytest.raises(PermissionDenied):
        services.connection_request_approve(
            request_id=request.pk, actor=EmployeeFactory(role=role, agency=gombe)
        )
    assert not Client.objects.exists()


def test_a_manager_cannot_review_another_agencys_request(gombe):
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    request = ConnectionRequestFactory(agency=lubumbashi)
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    with pytest.raises(ApplicationError) as excinfo:
        services.connection_request_approve(request_id=request.pk, actor=manager)
    assert excinfo.value.status == 404
    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.PENDING


@pytest.mark.parametrize(
    ("name", "size", "message"),
    [
        ("carte.exe", 1000, "extension"),
        ("carte.jpg", 6 * 1024 * 1024, "trop volumineux"),
    ],
)
def test_identity_scans_must_be_small_images_or_pdfs(gombe, name, size, message):
    from django.core.files.uploadedfile import SimpleUploadedFile

    scan = SimpleUploadedFile(name, b"x" * size)
    with pytest.raises(ValidationError) as excinfo:
        services.client_save(client=new_client(gombe, kyc_document=scan), actor=None)
    assert message in " ".join(field_errors(excinfo)["kyc_document"])
    assert not Client.objects.exists()


def test_automatic_numbers_skip_those_typed_in_by_hand(gombe):
    ClientFactory(number="CL-0000001", agency=gombe)

    created = services.client_save(client=new_client(gombe), actor=None)

    assert created.number == "CL-0000002"


def test_a_site_cannot_be_given_a_client_outside_the_scope(gombe):
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    foreign_client = ClientFactory(agency=lubumbashi, **address("Kampemba", "Lubumbashi"))
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)
    site = Site(
        client=foreign_client, agency=gombe, category=SiteCategory.RESIDENTIAL, **address("Gombe")
    )

    with pytest.raises(ValidationError) as excinfo:
        services.site_save(site=site, actor=manager)
    assert "client" in field_errors(excinfo)
    assert not Site.objects.exists()


def test_a_closed_agency_takes_no_new_requests(gombe):
    gombe.is_active = False
    gombe.save()
    request = ConnectionRequest(
        kind=PartyKind.PERSON,
        first_name="Ruth",
        last_name="Mbala",
        phone="+243970001122",
        category=SiteCategory.RESIDENTIAL,
        agency=gombe,
        **address("Gombe"),
    )
    with pytest.raises(ValidationError) as excinfo:
        services.connection_request_submit(request=request)
    assert "agency" in field_errors(excinfo)
    assert not ConnectionRequest.objects.exists()


def test_a_request_cannot_be_attached_to_a_closed_client_file(gombe):
    closed = ClientFactory(agency=gombe, is_active=False)
    request = ConnectionRequestFactory(agency=gombe)
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)

    with pytest.raises(ValidationError):
        services.connection_request_approve(
            request_id=request.pk, actor=manager, existing_client=closed
        )
    request.refresh_from_db()
    assert request.status == ConnectionRequest.Status.PENDING
    assert not Site.objects.exists()
