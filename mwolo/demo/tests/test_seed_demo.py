"""seed_demo: complete, valid, scoped like real data, and the same however often it runs."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mwolo.accounts.models import User
from mwolo.accounts.services import user_roles
from mwolo.accounts.tests.factories import UserFactory
from mwolo.agencies.models import Agency, OpeningHours
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing.selectors import tariff_in_force
from mwolo.core import clock
from mwolo.core.crypto import decrypt
from mwolo.core.permissions import Role, visible_to
from mwolo.crm.models import Client, ConnectionRequest, PartyKind, Site, SiteCategory
from mwolo.crm.tests.factories import ClientFactory
from mwolo.demo import data
from mwolo.demo.models import DemoRecord
from mwolo.demo.selectors import demo_meter_serials
from mwolo.demo.services import (
    ROLE_PREFIXES,
    client_spec,
    client_specs,
    request_specs,
    staff_specs,
)
from mwolo.geo.tests.factories import commune
from mwolo.metering.models import Meter, MeterInstallation, MeterReading, PaymentMode
from mwolo.metering.services import prepaid_token_for_amount
from sandbox.meters import TOKEN_START_COUNT, MeterSpec, factory_secret

pytestmark = pytest.mark.django_db

PASSWORD = "demo-test-password-2026"
CLIENTS = 12
DEMO_USERNAMES = [spec.username for spec in staff_specs()] + [data.PORTAL_USERNAME]
# One demo account per role: the administrator, the client, and the Gombe staff.
ACCOUNT_OF_ROLE = {
    Role.ADMINISTRATOR: "admin",
    Role.CLIENT: data.PORTAL_USERNAME,
    **{role: f"{prefix}.gombe" for role, prefix in ROLE_PREFIXES.items()},
}


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


@pytest.fixture
def seed(monkeypatch):
    monkeypatch.setenv(data.PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv("PORT", "8123")

    def run(*args: str, clients: int = CLIENTS) -> str:
        output = io.StringIO()
        call_command("seed_demo", "--clients", str(clients), *args, stdout=output)
        return output.getvalue()

    return run


@pytest.fixture
def seeded(seed) -> str:
    return seed()


# --- Idempotent and deterministic ---------------------------------------------------------


def test_a_second_run_leaves_every_table_as_it_was(seeded, seed):
    before = row_counts()
    clients_before = set(Client.objects.values_list("number", "updated_at"))

    output = seed()

    assert row_counts() == before
    assert set(Client.objects.values_list("number", "updated_at")) == clients_before
    assert "Nothing new" in output


def test_the_first_run_creates_the_whole_demo(seeded):
    assert Agency.objects.count() == len(data.AGENCIES) == 8
    assert User.objects.filter(is_staff=True).count() == len(staff_specs())
    # The demo clients, the portal client, and one client per approved request.
    approved = [r for r in data.CONNECTION_REQUESTS if r.outcome == "approved"]
    assert Client.objects.count() == CLIENTS + 1 + len(approved)
    sites = sum(len(spec.sites) for spec in client_specs(count=CLIENTS)) + 1 + len(approved)
    assert Site.objects.count() == sites
    statuses = [r.status for r in ConnectionRequest.objects.all()]
    assert sorted(statuses) == sorted(r.outcome for r in data.CONNECTION_REQUESTS)
    assert statuses.count("pending") >= 5
    assert DemoRecord.objects.filter(key__startswith="client:").count() == CLIENTS + 1


def test_a_second_run_reads_a_fixed_number_of_rows(seed):
    """Finding what exists takes the same queries for 12 clients as for 36: it is batched."""

    def queries_of_a_second_run(clients: int) -> int:
        seed(clients=clients)
        with CaptureQueriesContext(connection) as queries:
            seed(clients=clients)
        return len(queries)

    assert queries_of_a_second_run(CLIENTS) == queries_of_a_second_run(CLIENTS * 3)


def test_more_clients_later_adds_only_the_new_ones(seeded, seed):
    numbers = dict(
        DemoRecord.objects.filter(key__startswith="client:0").values_list("key", "object_id")
    )

    seed(clients=CLIENTS + 3)

    after = dict(
        DemoRecord.objects.filter(key__startswith="client:0").values_list("key", "object_id")
    )
    assert len(after) == CLIENTS + 3
    assert {key: after[key] for key in numbers} == numbers


def test_the_demo_is_the_same_every_time():
    assert client_specs(count=20) == client_specs(count=20)
    assert client_specs(count=5) == client_specs(count=20)[:5]
    assert client_spec(index=7) == client_specs(count=9)[6]
    assert staff_specs() == staff_specs()
    assert request_specs() == request_specs()


def test_seeded_clients_are_the_specified_ones(seeded):
    for spec in client_specs(count=CLIENTS):
        record = DemoRecord.objects.get(key=spec.key)
        client = Client.objects.get(pk=record.object_id)
        assert (client.agency.code, client.kind, client.phone.as_e164) == (
            spec.agency_code,
            spec.kind,
            spec.phone,
        )
        assert client.display_name
        assert client.sites.count() == len(spec.sites)


def test_a_failed_seed_leaves_nothing_behind(seed):
    # An agency that holds a demo code in another province stops the seed mid-way, after
    # the first agencies were created.
    AgencyFactory(code="KIN-MAS", commune=commune("Kampemba", "Lubumbashi"))
    before = row_counts()

    with pytest.raises(CommandError, match="KIN-MAS"):
        seed()

    assert row_counts() == before
    assert not Agency.objects.filter(code="KIN-GOM").exists()


def test_what_users_added_or_changed_is_kept(seed):
    own_admin = UserFactory(username="admin", first_name="Ruth")
    own_client = ClientFactory(agency=AgencyFactory(code="KIN-GOM"), first_name="Rose")

    output = seed()
    demo_client = Client.objects.exclude(pk=own_client.pk).filter(user__isnull=True).first()
    demo_client.first_name = "Trésor"
    demo_client.save()
    seed()

    own_admin.refresh_from_db()
    assert own_admin.check_password("motdepasse-solide-2026")
    assert not own_admin.is_superuser
    assert "admin *" in output  # flagged: its password is not the demo one
    assert Client.objects.get(pk=own_client.pk).first_name == "Rose"
    assert Client.objects.get(pk=demo_client.pk).first_name == "Trésor"
    assert Agency.objects.filter(code="KIN-GOM").count() == 1


def test_a_demo_site_deleted_by_hand_comes_back(seeded, seed):
    # A prepaid site: a postpaid one has issued invoices, which nobody deletes.
    site = (
        Site.objects.filter(connection_request__isnull=True, meters__payment_mode="prepaid")
        .order_by("reference")
        .first()
    )
    client_id, label = site.client_id, site.label
    MeterReading.objects.filter(meter__site=site).delete()
    MeterInstallation.objects.filter(site=site).delete()
    Meter.objects.filter(site=site).delete()
    site.delete()

    seed()

    assert Site.objects.filter(client_id=client_id, label=label).count() == 1


# --- Valid and realistic -------------------------------------------------------------------


def test_every_demo_site_has_a_meter_of_the_simulator_with_two_months_of_readings(seeded):
    sites = Site.objects.filter(connection_request__isnull=True)
    meters = Meter.objects.filter(site__in=sites)
    assert meters.count() == sites.count()
    portal_site = Site.objects.get(client__user__username=data.PORTAL_USERNAME)
    assert Meter.objects.get(site=portal_site).serial == "SIM-000001"

    prepaid = meters.filter(payment_mode=PaymentMode.PREPAID)
    assert 0 < prepaid.count() < meters.count()
    for meter in prepaid:  # the secret the simulated meter decodes tokens with
        assert decrypt(meter.token_secret) == factory_secret(meter.serial)
        assert meter.token_count == TOKEN_START_COUNT
    for meter in meters:
        spec = MeterSpec.for_serial(meter.serial, prepaid=meter.payment_mode == "prepaid")
        readings = meter.readings.order_by("taken_at")
        assert readings.count() == 61  # the installation's, then one a day
        assert not readings.exclude(flag="").exists()
        last = readings.last()
        assert last.energy_kwh == spec.register_at(last.taken_at.timestamp()).quantize(
            Decimal("0.001")
        )


def test_every_site_category_has_a_tariff_and_a_prepaid_sale_works(seeded):
    for category in SiteCategory.values:
        assert tariff_in_force(category=category, on=clock.today())
    meter = Meter.objects.filter(payment_mode=PaymentMode.PREPAID, site__category="residential")[0]

    sale = prepaid_token_for_amount(
        meter_id=meter.pk, amount=Decimal(10), currency="USD", actor=None
    )

    assert sale.token.energy_kwh > 50  # 28 500 CDF through the residential blocks
    assert sale.currency == "CDF"


def test_the_simulator_runs_the_demo_meters_in_service(seeded):
    serials, prepaid = demo_meter_serials()
    assert serials == sorted(Meter.objects.values_list("serial", flat=True))
    assert prepaid == set(
        Meter.objects.filter(payment_mode=PaymentMode.PREPAID).values_list("serial", flat=True)
    )


def test_the_simulator_command_needs_the_demo_first():
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("demo_meters")


def test_every_record_passes_its_own_validation(seeded):
    for model in (Agency, OpeningHours, Client, Site, ConnectionRequest, User):
        for record in model.objects.all():
            record.full_clean()


def test_agencies_are_real_places_with_opening_hours(seeded):
    for spec in data.AGENCIES:
        agency = Agency.objects.get(code=spec.code)
        assert agency.province.code == spec.province_code
        assert agency.commune.name == spec.commune
        assert agency.phone.as_e164.startswith("+243")
        assert agency.email.endswith("@mwolo.cd")
        slots = list(agency.opening_hours.values_list("weekday", "opens_at", "closes_at"))
        assert (5, dt.time(8), dt.time(12)) in slots
        assert not [slot for slot in slots if slot[0] == 6]  # closed on Sunday
        weekdays = [slot for slot in slots if slot[0] < 5]
        assert min(s[1] for s in weekdays) == dt.time(8)
        assert max(s[2] for s in weekdays) == dt.time(16)
        assert len(weekdays) == (10 if spec.lunch_break else 5)
    assert Agency.objects.filter(province__code="CD-KN").count() >= 3


def test_sites_lie_near_their_agency_and_in_its_province(seeded):
    for site in Site.objects.select_related("agency"):
        assert site.province_id == site.agency.province_id
        assert abs(site.latitude - site.agency.latitude) < Decimal("0.1")
        assert abs(site.longitude - site.agency.longitude) < Decimal("0.1")


def test_clients_look_congolese(seed):
    seed(clients=80)
    prefixes = {prefix for prefix, _share in data.MOBILE_PREFIXES}
    clients = list(Client.objects.all())
    assert {c.phone.as_e164[4:6] for c in clients} <= prefixes
    assert {PartyKind.PERSON, PartyKind.COMPANY} <= {c.kind for c in clients}
    assert any(c.rccm for c in clients)
    assert any(c.middle_name for c in clients)
    assert sum(c.preferred_language == "fr" for c in clients) > len(clients) * 0.8
    assert all(c.email.endswith(f"@{data.CLIENT_EMAIL_DOMAIN}") for c in clients if c.email)


# --- Accounts ------------------------------------------------------------------------------


def test_every_role_has_a_demo_account_that_logs_in(seeded):
    for role in Role:
        username = ACCOUNT_OF_ROLE[role]
        # django-axes needs the request, which Django's test Client.login does not pass.
        request = RequestFactory().post(reverse("admin:login"))
        user = authenticate(request=request, username=username, password=PASSWORD)

        assert user is not None, username
        assert user_roles(user) == {role}
        if role.is_employee:
            response = HttpClient().post(
                reverse("admin:login"),
                {"username": username, "password": PASSWORD, "next": reverse("admin:index")},
            )
            assert response.status_code == 302, username
            assert response["Location"] == reverse("admin:index")


def test_every_agency_has_a_manager_cashier_and_technician(seeded):
    for spec in data.AGENCIES:
        for role in (Role.AGENCY_MANAGER, Role.CASHIER, Role.TECHNICIAN):
            user = User.objects.get(username=f"{ROLE_PREFIXES[role]}.{spec.slug}")
            assert user.agency.code == spec.code
            assert user_roles(user) == {role}


def test_the_administrator_is_a_superuser_of_no_agency(seeded):
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.agency is None
    assert visible_to(Client.objects.all(), admin).count() == Client.objects.count()


def test_each_employee_sees_only_their_agencys_clients(seeded):
    employees = User.objects.filter(agency__isnull=False)
    assert employees.count() == len(staff_specs()) - 1
    for employee in employees:
        visible = set(visible_to(Client.objects.all(), employee))
        assert visible == set(Client.objects.filter(agency=employee.agency))
    gombe_cashier = User.objects.get(username="cashier.gombe")
    assert visible_to(Client.objects.all(), gombe_cashier).exists()


def test_the_portal_account_sees_its_own_client_file(seeded):
    user = User.objects.get(username=data.PORTAL_USERNAME)
    client = Client.objects.get(user=user)

    assert not user.is_staff
    assert user_roles(user) == {Role.CLIENT}
    assert list(visible_to(Client.objects.all(), user)) == [client]
    assert set(visible_to(Site.objects.all(), user)) == set(client.sites.all())


# --- The command ---------------------------------------------------------------------------


def test_the_command_prints_the_urls_and_every_demo_account(seeded):
    for url in ("http://127.0.0.1:8123/", "/admin/", "/api/docs/"):
        assert url in seeded
    for username in DEMO_USERNAMES:
        assert f"  {username} " in seeded
    assert "Responsable d’agence" in seeded  # role names in the default language
    assert "Agence Kinshasa-Gombe" in seeded
    # A password of one's own is not written to logs.
    assert PASSWORD not in seeded
    assert data.PASSWORD_ENV in seeded


def test_quiet_prints_nothing(seed):
    assert seed("--quiet") == ""
    assert Agency.objects.count() == 8


def test_the_published_password_is_refused_when_debug_is_off(monkeypatch, settings):
    monkeypatch.delenv(data.PASSWORD_ENV, raising=False)
    settings.DEBUG = False

    with pytest.raises(CommandError, match=data.PASSWORD_ENV):
        call_command("seed_demo", "--clients", "1", stdout=io.StringIO())

    assert not Agency.objects.exists()


def test_the_default_password_works_in_development(monkeypatch, settings):
    monkeypatch.delenv(data.PASSWORD_ENV, raising=False)
    settings.DEBUG = True
    output = io.StringIO()

    call_command("seed_demo", "--clients", "1", stdout=output)

    assert data.DEFAULT_PASSWORD in output.getvalue()
    assert User.objects.get(username="manager.gombe").check_password(data.DEFAULT_PASSWORD)


@pytest.mark.parametrize("value", ["-3", "many"])
def test_a_bad_client_count_is_refused(seed, value):
    with pytest.raises(CommandError, match="--clients"):
        call_command("seed_demo", "--clients", value, stdout=io.StringIO())
    assert not Agency.objects.exists()
