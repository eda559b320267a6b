"""The metering back office as staff use it: who sees which meters, and the meter actions."""

import datetime as dt
from decimal import Decimal

import openpaygo
import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from playwright.sync_api import expect

from mwolo.accounts.tests.factories import (
    AdministratorFactory,
    EmployeeFactory,
    PortalUserFactory,
)
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core import clock
from mwolo.core.crypto import decrypt
from mwolo.core.permissions import Role
from mwolo.crm.tests.factories import SiteFactory
from mwolo.geo.tests.factories import commune
from mwolo.metering import services
from mwolo.metering.models import (
    HeadendRejection,
    Meter,
    MeterAlarm,
    MeterCommand,
    MeterReading,
    PrepaidToken,
    Relay,
)
from mwolo.metering.tests.factories import MeterFactory, installed_meter

pytestmark = pytest.mark.django_db

PASSWORD = "motdepasse-solide-2026"  # UserFactory's
METERS = reverse("admin:metering_meter_changelist")
READINGS = reverse("admin:metering_meterreading_changelist")
# The scoped pages: each row reaches an agency through its meter.
SCOPED_MODELS = ["meter", "meterreading", "metercommand", "meteralarm", "prepaidtoken"]


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )


@pytest.fixture
def manager(gombe):
    return EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)


def fleet(agency, serial):
    """A prepaid meter installed in ``agency`` with one row of every metering record."""
    meter = installed_meter(SiteFactory(agency=agency), prepaid=True, serial=serial)
    services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=10, actor=None)
    MeterAlarm.objects.create(
        meter=meter, kind=MeterAlarm.Kind.OFFLINE, opened_at=clock.now(), last_seen_at=clock.now()
    )
    return {
        "meter": meter,
        "meterreading": MeterReading.objects.get(meter=meter),
        "metercommand": MeterCommand.objects.get(meter=meter),
        "meteralarm": MeterAlarm.objects.get(meter=meter),
        "prepaidtoken": PrepaidToken.objects.get(meter=meter),
    }


def pages(model, row):
    return (
        reverse(f"admin:metering_{model}_changelist"),
        reverse(f"admin:metering_{model}_change", args=[row.pk]),
    )


# --- Who may see what ----------------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED_MODELS)
@pytest.mark.parametrize("who", ["anonymous", "client"])
def test_visitors_and_clients_are_sent_to_the_login_page(client, gombe, model, who):
    mine = fleet(gombe, "GOM-0001")
    if who == "client":
        # Even the client whose meter it is: the portal is their place, not the admin.
        portal_user = PortalUserFactory()
        site = mine["meter"].site
        site.client.user = portal_user
        site.client.save()
        client.force_login(portal_user)

    for url in pages(model, mine[model]):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
        assert "GOM-0001" not in response.content.decode()


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_an_agency_manager_sees_only_their_agencys_meters(
    client, manager, gombe, lubumbashi, model
):
    mine, theirs = fleet(gombe, "GOM-0001"), fleet(lubumbashi, "LSH-0001")
    client.force_login(manager)
    list_url, own_url = pages(model, mine[model])
    _list_url, foreign_url = pages(model, theirs[model])

    listed = client.get(list_url)
    assert listed.status_code == 200
    assert "GOM-0001" in listed.content.decode()
    assert "LSH-0001" not in listed.content.decode()

    assert client.get(own_url).status_code == 200
    foreign = client.get(foreign_url)
    assert foreign.status_code == 302
    assert foreign["Location"] == reverse("admin:index")


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_an_administrator_sees_every_agency(client, gombe, lubumbashi, model):
    mine, theirs = fleet(gombe, "GOM-0001"), fleet(lubumbashi, "LSH-0001")
    client.force_login(AdministratorFactory())
    list_url, own_url = pages(model, mine[model])
    _list_url, foreign_url = pages(model, theirs[model])

    listed = client.get(list_url).content.decode()
    assert "GOM-0001" in listed
    assert "LSH-0001" in listed
    for url in (own_url, foreign_url):
        assert client.get(url).status_code == 200


def test_refused_meter_messages_are_for_administrators_only(client, manager):
    # Not scoped by agency: a manager has no permission on them at all.
    HeadendRejection.objects.create(
        day=dt.date(2026, 3, 2), reason="bad_signature", count=7, last_topic="meters/X/up"
    )
    url = reverse("admin:metering_headendrejection_changelist")

    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(manager)
    assert client.get(url).status_code == 403
    client.force_login(AdministratorFactory())
    page = client.get(url)
    assert page.status_code == 200
    assert "bad_signature" in page.content.decode()


# --- Lists read a fixed number of rows -----------------------------------------------------


def add_rows(agency, manager, count):
    for _ in range(count):
        meter = installed_meter(SiteFactory(agency=agency), prepaid=True)
        # With the manager as author, the "requested by" / "created by" columns are filled.
        services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=5, actor=manager)
        services.meter_read_request(meter_id=meter.pk, actor=manager)
        MeterAlarm.objects.create(
            meter=meter,
            kind=MeterAlarm.Kind.TAMPER,
            opened_at=clock.now(),
            last_seen_at=clock.now(),
        )
    start = HeadendRejection.objects.count()
    HeadendRejection.objects.bulk_create(
        HeadendRejection(day=dt.date(2026, 1, 1) + dt.timedelta(days=start + n), reason="json")
        for n in range(count)
    )


@pytest.mark.parametrize("model", [*SCOPED_MODELS, "headendrejection"])
def test_the_lists_read_a_fixed_number_of_queries(client, manager, gombe, model):
    url = reverse(f"admin:metering_{model}_changelist")
    client.force_login(AdministratorFactory() if model == "headendrejection" else manager)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        return len(captured), response.context["cl"].result_count

    add_rows(gombe, manager, 3)
    few, shown = queries()
    add_rows(gombe, manager, 12)
    many, shown_after = queries()

    assert shown_after > shown >= 3
    assert many == few


# --- Connecting and disconnecting ----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "title", "command_action", "relay"),
    [
        ("disconnect_meters", "Couper des compteurs", MeterCommand.Action.DISCONNECT, Relay.OFF),
        ("connect_meters", "Rétablir des compteurs", MeterCommand.Action.CONNECT, Relay.ON),
    ],
)
def test_switching_asks_for_a_reason_then_queues_the_command(
    client, manager, gombe, action, title, command_action, relay
):
    meter = installed_meter(SiteFactory(agency=gombe), serial="GOM-0042")
    client.force_login(manager)
    chosen = {"action": action, "_selected_action": [meter.pk]}

    confirmation = client.post(METERS, chosen)
    text = confirmation.content.decode()
    assert confirmation.status_code == 200
    assert title in text
    assert "Cela concerne 1 compteur" in text
    assert "GOM-0042" in text
    assert "Motif" in text
    assert not MeterCommand.objects.exists()

    for blank in ("", "   "):
        again = client.post(METERS, {**chosen, "confirm": "yes", "reason": blank})
        assert again.status_code == 200
        assert "Ce champ est obligatoire." in again.content.decode()
    assert not MeterCommand.objects.exists()
    assert Meter.objects.get(pk=meter.pk).relay_wanted == Relay.ON

    done = client.post(
        METERS, {**chosen, "confirm": "yes", "reason": "Fraude constatée"}, follow=True
    )
    assert "1 compteurs : demande enregistrée." in done.content.decode()
    command = MeterCommand.objects.get()
    assert command.action == command_action
    assert command.status == MeterCommand.Status.QUEUED
    assert command.reason == "Fraude constatée"
    assert command.requested_by == manager
    assert Meter.objects.get(pk=meter.pk).relay_wanted == relay


def test_a_cashier_can_neither_see_nor_use_the_switch(client, gombe):
    meter = installed_meter(SiteFactory(agency=gombe))
    client.force_login(EmployeeFactory(role=Role.CASHIER, agency=gombe))

    offered = dict(client.get(METERS).context["action_form"].fields["action"].choices)
    assert "issue_tokens" in offered
    assert "disconnect_meters" not in offered
    assert "connect_meters" not in offered

    response = client.post(
        METERS,
        {
            "action": "disconnect_meters",
            "_selected_action": [meter.pk],
            "confirm": "yes",
            "reason": "Impayés",
        },
    )
    assert response.status_code == 302
    assert not MeterCommand.objects.exists()
    assert Meter.objects.get(pk=meter.pk).relay_wanted == Relay.ON


def test_another_agencys_meter_cannot_be_switched(client, manager, lubumbashi):
    foreign = installed_meter(SiteFactory(agency=lubumbashi))
    client.force_login(manager)

    client.post(
        METERS,
        {
            "action": "disconnect_meters",
            "_selected_action": [foreign.pk],
            "confirm": "yes",
            "reason": "Impayés",
        },
    )

    assert not MeterCommand.objects.exists()
    assert Meter.objects.get(pk=foreign.pk).relay_wanted == Relay.ON


# --- Reading and tokens --------------------------------------------------------------------


def test_reading_now_queues_a_read_command(client, manager, gombe):
    meter = installed_meter(SiteFactory(agency=gombe))
    in_stock = MeterFactory(agency=gombe, serial="GOM-STOCK")
    client.force_login(manager)

    done = client.post(
        METERS, {"action": "read_meters", "_selected_action": [meter.pk, in_stock.pk]}, follow=True
    )

    command = MeterCommand.objects.get()
    assert (command.meter, command.action) == (meter, MeterCommand.Action.READ)
    assert command.requested_by == manager
    text = done.content.decode()
    assert "1 compteurs : demande enregistrée." in text
    assert "GOM-STOCK: Ce compteur n’est pas installé." in text


def test_issuing_a_token_shows_its_digits_once(client, manager, gombe):
    meter = installed_meter(SiteFactory(agency=gombe), prepaid=True, serial="GOM-PRE")
    client.force_login(manager)
    chosen = {"action": "issue_tokens", "_selected_action": [meter.pk]}

    confirmation = client.post(METERS, chosen)
    assert "Émettre des jetons prépayés" in confirmation.content.decode()
    assert "Crédit (kWh)" in confirmation.content.decode()
    assert not PrepaidToken.objects.exists()

    done = client.post(
        METERS, {**chosen, "confirm": "yes", "energy_kwh": "25", "reason": "Vente"}, follow=True
    )

    token = PrepaidToken.objects.get()
    assert (token.meter, token.energy_kwh, token.created_by) == (meter, 25, manager)
    assert len(token.token) == 9
    assert token.token in done.content.decode()
    assert token.token not in client.get(METERS).content.decode()


def test_a_postpaid_meter_gets_no_token(client, manager, gombe):
    meter = installed_meter(SiteFactory(agency=gombe), serial="GOM-POST")
    client.force_login(manager)

    done = client.post(
        METERS,
        {
            "action": "issue_tokens",
            "_selected_action": [meter.pk],
            "confirm": "yes",
            "energy_kwh": "25",
            "reason": "Vente",
        },
        follow=True,
    )

    assert done.status_code == 200
    assert "GOM-POST: Ce compteur n’est pas prépayé." in done.content.decode()
    assert not PrepaidToken.objects.exists()
    assert not MeterCommand.objects.exists()


@pytest.mark.parametrize("energy", ["", "0", "-5", "abc", "2.5", "1e3"])
def test_a_bad_credit_is_asked_again_and_nothing_is_issued(client, manager, gombe, energy):
    meter = installed_meter(SiteFactory(agency=gombe), prepaid=True)
    client.force_login(manager)

    response = client.post(
        METERS,
        {
            "action": "issue_tokens",
            "_selected_action": [meter.pk],
            "confirm": "yes",
            "energy_kwh": energy,
            "reason": "Vente",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors["energy_kwh"]
    assert not PrepaidToken.objects.exists()
    assert Meter.objects.get(pk=meter.pk).token_count == meter.token_count


@pytest.mark.parametrize(("energy", "reason"), [("20.0", "Vente"), (" 20 ", ""), ("20", "")])
def test_a_whole_credit_is_understood_and_the_reason_is_optional(
    client, manager, gombe, energy, reason
):
    meter = installed_meter(SiteFactory(agency=gombe), prepaid=True)
    client.force_login(manager)

    response = client.post(
        METERS,
        {
            "action": "issue_tokens",
            "_selected_action": [meter.pk],
            "confirm": "yes",
            "energy_kwh": energy,
            "reason": reason,
        },
    )

    assert response.status_code == 302
    assert PrepaidToken.objects.get().energy_kwh == 20


def test_a_credit_above_what_a_token_carries_is_refused(client, manager, gombe):
    meter = installed_meter(SiteFactory(agency=gombe), prepaid=True, serial="GOM-PRE")
    client.force_login(manager)

    done = client.post(
        METERS,
        {
            "action": "issue_tokens",
            "_selected_action": [meter.pk],
            "confirm": "yes",
            "energy_kwh": "996",
            "reason": "",
        },
        follow=True,
    )

    assert "Un jeton porte de 1 à 995 kWh." in done.content.decode()
    assert not PrepaidToken.objects.exists()


# --- Readings ------------------------------------------------------------------------------


def flagged_and_normal(meter):
    """One reading below the register (flagged backwards), one normal a day later."""
    now = clock.now()
    services.readings_record(
        meter_id=meter.pk,
        readings=[
            (now - dt.timedelta(days=2), Decimal("900")),
            (now - dt.timedelta(days=1), Decimal("1010")),
        ],
        source=MeterReading.Source.TECHNICIAN,
        actor=None,
    )
    flagged = MeterReading.objects.get(meter=meter, flag=MeterReading.Flag.BACKWARDS)
    normal = MeterReading.objects.get(meter=meter, energy_kwh=Decimal("1010"))
    return flagged, normal


def test_marking_flagged_readings_as_reviewed(client, manager, gombe):
    meter = installed_meter(SiteFactory(agency=gombe))
    flagged, normal = flagged_and_normal(meter)
    client.force_login(manager)
    assert "Marquer comme vérifié" in client.get(READINGS).content.decode()

    done = client.post(
        READINGS,
        {"action": "mark_reviewed", "_selected_action": [flagged.pk, normal.pk]},
        follow=True,
    )

    assert "1 relevés marqués comme vérifiés." in done.content.decode()
    reviewed = MeterReading.objects.get(pk=flagged.pk)
    assert (reviewed.reviewed, reviewed.reviewed_by) == (True, manager)
    assert not MeterReading.objects.get(pk=normal.pk).reviewed


def test_a_cashier_cannot_mark_readings_as_reviewed(client, gombe):
    flagged, _normal = flagged_and_normal(installed_meter(SiteFactory(agency=gombe)))
    client.force_login(EmployeeFactory(role=Role.CASHIER, agency=gombe))

    listed = client.get(READINGS)
    assert listed.status_code == 200
    assert "Marquer comme vérifié" not in listed.content.decode()
    client.post(READINGS, {"action": "mark_reviewed", "_selected_action": [flagged.pk]})

    assert not MeterReading.objects.get(pk=flagged.pk).reviewed


# --- In the browser ------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_manager_browses_the_meters_in_french(page, live_server, screenshots):
    gombe = AgencyFactory(code="KIN-GOM", name="Agence Gombe")
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe, username="responsable")
    meter = installed_meter(SiteFactory(agency=gombe), serial="GOM-0001")
    installed_meter(SiteFactory(agency=gombe), prepaid=True, serial="GOM-0002")
    services.meter_read_request(meter_id=meter.pk, actor=manager)

    page.goto(reverse("admin:login"))
    page.fill("input[name=username]", "responsable")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form [type=submit]").click()
    page.wait_for_url(f"{live_server.url}{reverse('admin:index')}")

    page.goto(METERS, wait_until="networkidle")
    headers = page.locator("#result_list thead")
    for label in ("Numéro de série", "Mode de paiement", "Agence", "Installé à", "En ligne"):
        expect(headers).to_contain_text(label, ignore_case=True)
    expect(page.locator("body")).to_contain_text("Compteurs")
    expect(page.locator("#result_list")).to_contain_text("GOM-0001")
    expect(page.locator("#result_list")).to_contain_text("Prépayé")
    page.screenshot(path=str(screenshots / "metering-meter-list.png"), full_page=True)

    page.goto(reverse("admin:metering_meter_change", args=[meter.pk]), wait_until="networkidle")
    expect(page.locator("body")).to_contain_text("GOM-0001")
    expect(page.locator("body")).to_contain_text("Relais")
    page.screenshot(path=str(screenshots / "metering-meter-change.png"), full_page=True)

    page.goto(METERS, wait_until="networkidle")
    page.locator(f"input[name=_selected_action][value='{meter.pk}']").check()
    page.select_option("select[name=action]", "disconnect_meters")
    page.locator("button[name=index], input[name=index], .actions button").first.click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("body")).to_contain_text("Couper des compteurs")
    expect(page.locator("body")).to_contain_text("Cela concerne 1 compteur")
    expect(page.locator("body")).to_contain_text("Motif")
    page.screenshot(path=str(screenshots / "metering-disconnect-confirm.png"), full_page=True)


# --- Registering meters --------------------------------------------------------------------

ADD_METER = reverse("admin:metering_meter_add")
SECRET = "00112233445566778899AABBCCDDEEFF"


def registration(agency, **fields):
    return {
        "serial": "GOM-NEW-1",
        "vendor": "Hexing",
        "hardware_model": "HXP100",
        "payment_mode": "prepaid",
        "agency": agency.pk,
        "register_capacity_kwh": "1000000",
        "token_secret": SECRET,
        "token_count": "1",
        **fields,
    }


def test_a_prepaid_meter_is_registered_with_its_secret_encrypted_and_never_shown(
    client, manager, gombe
):
    client.force_login(manager)
    form = client.get(ADD_METER).content.decode()
    assert "Clé secrète OpenPAYGO" in form
    assert "Compteur de jetons initial" in form

    done = client.post(ADD_METER, registration(gombe, token_count="7"), follow=True)

    assert done.status_code == 200
    meter = Meter.objects.get(serial="GOM-NEW-1")
    assert (meter.payment_mode, meter.agency, meter.token_count) == ("prepaid", gombe, 7)
    assert decrypt(meter.token_secret) == SECRET.lower()
    change_page = client.get(reverse("admin:metering_meter_change", args=[meter.pk]))
    for page in (done, change_page):
        text = page.content.decode().lower()
        assert SECRET.lower() not in text
        assert meter.token_secret.lower() not in text
    # The first token is the one the vendor's count leads to: the meter decodes it.
    token = services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=5, actor=None)
    _value, _type, count, _used = openpaygo.decode_token(
        token=token.token, secret_key=SECRET.lower(), count=7, used_counts=[]
    )
    assert count == token.count > 7


def test_a_postpaid_meter_is_registered_without_secrets(client, manager, gombe):
    client.force_login(manager)
    fields = registration(gombe, payment_mode="postpaid", token_secret="", token_count="")

    response = client.post(ADD_METER, fields)

    assert response.status_code == 302
    meter = Meter.objects.get(serial="GOM-NEW-1")
    assert (meter.payment_mode, meter.token_secret) == ("postpaid", "")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"token_secret": ""}, "token_secret", "a besoin de son secret de jetons"),
        ({"token_secret": "0123456789abcdef"}, "token_secret", "32 chiffres hexadécimaux"),
        ({"token_secret": "g" * 32}, "token_secret", "32 chiffres hexadécimaux"),
        ({"token_count": ""}, "token_count", "compteur de jetons donné par son fabricant"),
        ({"token_count": "0"}, "token_count", "nombre entier de 1 à"),
        ({"token_count": "abc"}, "token_count", "Saisissez un nombre entier."),
        ({"payment_mode": "postpaid"}, "token_secret", "Seuls les compteurs prépayés"),
        ({"payment_mode": "postpaid", "token_secret": ""}, "token_count", "Seuls les compteurs"),
        ({"serial": "bad serial"}, "serial", "Lettres, chiffres"),
    ],
)
def test_a_bad_registration_is_asked_again_and_nothing_is_written(
    client, manager, gombe, fields, field, message
):
    client.force_login(manager)

    response = client.post(ADD_METER, registration(gombe, **fields))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert not Meter.objects.exists()
    assert SECRET not in response.content.decode()  # never sent back, even to correct


def test_a_meter_cannot_be_registered_in_another_agency(client, manager, lubumbashi):
    client.force_login(manager)

    response = client.post(ADD_METER, registration(lubumbashi))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["agency"]
    assert not Meter.objects.exists()


# --- Audit trail ---------------------------------------------------------------------------


def log_of(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("timestamp"))


def test_what_staff_do_to_meters_is_in_the_audit_log_with_who_did_it(client, manager, gombe):
    client.force_login(manager)
    client.post(ADD_METER, registration(gombe))
    meter = Meter.objects.get(serial="GOM-NEW-1")
    services.meter_install(
        meter_id=meter.pk, site=SiteFactory(agency=gombe), register_kwh=Decimal(0), actor=None
    )
    chosen = {"_selected_action": [meter.pk], "confirm": "yes"}
    client.post(METERS, {**chosen, "action": "disconnect_meters", "reason": "Fraude constatée"})
    client.post(METERS, {**chosen, "action": "issue_tokens", "energy_kwh": "5", "reason": ""})

    (registered,) = log_of(meter)
    assert (registered.action, registered.actor) == (LogEntry.Action.CREATE, manager)
    assert "token_secret" not in registered.changes_dict
    assert registered.changes_dict["serial"] == ["None", "GOM-NEW-1"]
    command = MeterCommand.objects.get(action="disconnect")
    (switched,) = log_of(command)
    assert switched.actor == manager
    assert switched.changes_dict["reason"][1] == "Fraude constatée"
    (sold,) = log_of(PrepaidToken.objects.get())
    assert (sold.action, sold.actor) == (LogEntry.Action.CREATE, manager)
    page = client.get(reverse("admin:metering_metercommand_auditlog", args=[command.pk]))
    assert page.status_code == 200
    assert "Fraude constatée" in page.content.decode()
