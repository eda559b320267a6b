"""Identity scans: stored privately, handed out only to those who may see the client."""

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from mwolo.accounts.tests.factories import EmployeeFactory, PortalUserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.crm import services
from mwolo.crm.tests.factories import ClientFactory
from mwolo.geo.tests.factories import address, commune

pytestmark = pytest.mark.django_db

SCAN = b"%PDF-1.4 carte d'electeur"


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM")


@pytest.fixture
def scanned_client(gombe):
    client = ClientFactory(agency=gombe)
    client.kyc_document = SimpleUploadedFile("carte.pdf", SCAN, content_type="application/pdf")
    return services.client_save(client=client, actor=None)


def test_scans_are_stored_outside_the_public_media(scanned_client):
    stored = scanned_client.kyc_document.path
    assert stored.startswith(str(settings.PRIVATE_MEDIA_ROOT))
    assert not stored.startswith(str(settings.MEDIA_ROOT))
    assert scanned_client.kyc_document.url.startswith("/documents/kyc/")


@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.CASHIER, Role.SUPPORT_AGENT])
def test_staff_of_the_clients_agency_download_the_scan(client, scanned_client, gombe, role):
    client.force_login(EmployeeFactory(role=role, agency=gombe))

    response = client.get(scanned_client.kyc_document.url)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == SCAN
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Cache-Control"] == "private, no-store"


def test_the_client_downloads_their_own_scan(client, scanned_client):
    owner = PortalUserFactory()
    scanned_client.user = owner
    scanned_client.save()
    client.force_login(owner)

    assert client.get(scanned_client.kyc_document.url).status_code == 200


def test_another_agency_another_client_and_hr_get_nothing(client, scanned_client):
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    url = scanned_client.kyc_document.url

    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=lubumbashi))
    assert client.get(url).status_code == 404

    stranger = PortalUserFactory()
    ClientFactory(agency=lubumbashi, user=stranger, **address("Kampemba", "Lubumbashi"))
    client.force_login(stranger)
    assert client.get(url).status_code == 404

    client.force_login(EmployeeFactory(role=Role.HR_OFFICER, agency=scanned_client.agency))
    assert client.get(url).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client, scanned_client):
    response = client.get(scanned_client.kyc_document.url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.parametrize(
    "path", ["kyc/../../settings.py", "kyc/2026/01/absent.pdf", "kyc/%2e%2e/secret"]
)
def test_unknown_or_crafted_paths_are_not_found(client, scanned_client, path):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=scanned_client.agency))
    assert client.get(f"/documents/{path}").status_code == 404
