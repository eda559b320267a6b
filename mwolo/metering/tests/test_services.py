"""Meters without the network: registration, installation, readings, commands, tokens."""

import datetime as dt
import io
import threading
import time
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpaygo
import openpyxl
import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing.models import ExchangeRate
from mwolo.billing.tests.factories import tariff
from mwolo.core import clock
from mwolo.core.crypto import decrypt
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.core.testing.threads import in_thread
from mwolo.crm.tests.factories import SiteFactory
from mwolo.geo.tests.factories import commune
from mwolo.headend.protocol import Ack, Reading, Status, Telemetry
from mwolo.metering import services
from mwolo.metering.models import (
    Meter,
    MeterAlarm,
    MeterCommand,
    MeterReading,
    PaymentMode,
    PrepaidToken,
    Relay,
)
from mwolo.metering.selectors import meter_consumption
from mwolo.metering.tests.factories import TOKEN_SECRET, MeterFactory, installed_meter

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def site():
    return SiteFactory(agency=AgencyFactory(code="KIN-GOM"))


@pytest.fixture
def meter(site):
    return installed_meter(site, register="1000.000", at=clock.now() - 10 * HOUR)


def telemetry(meter, *readings: tuple[dt.datetime, str], relay="on", tamper=False):
    return Telemetry(
        serial=meter.serial,
        readings=tuple(
            Reading(at=at, energy_kwh=Decimal(kwh), relay=relay, tamper=tamper)
            for at, kwh in readings
        ),
    )


# --- Registration and installation ---------------------------------------------------------


def test_a_prepaid_meter_keeps_its_token_secret_encrypted(site):
    meter = Meter(
        serial="PRE-1",
        vendor="Hexing",
        hardware_model="HXP",
        agency=site.agency,
        payment_mode=PaymentMode.PREPAID,
    )
    services.meter_register(meter=meter, actor=None, token_secret=TOKEN_SECRET.upper())

    stored = Meter.objects.get(serial="PRE-1").token_secret
    assert TOKEN_SECRET not in stored
    assert decrypt(stored) == TOKEN_SECRET


@pytest.mark.parametrize(
    ("mode", "secret", "field"),
    [
        (PaymentMode.PREPAID, "", "token_secret"),
        (PaymentMode.PREPAID, "not-hex", "token_secret"),
        (PaymentMode.POSTPAID, TOKEN_SECRET, "token_secret"),
    ],
)
def test_token_secrets_are_checked(site, mode, secret, field):
    meter = Meter(
        serial="X-1", vendor="V", hardware_model="M", agency=site.agency, payment_mode=mode
    )
    with pytest.raises(ValidationError) as excinfo:
        services.meter_register(meter=meter, actor=None, token_secret=secret)
    assert field in excinfo.value.message_dict
    assert not Meter.objects.exists()


@pytest.mark.parametrize("serial", ["has space", "slash/no", "x" * 65, ""])
def test_bad_serials_are_refused(site, serial):
    meter = Meter(serial=serial, vendor="V", hardware_model="M", agency=site.agency)
    with pytest.raises(ValidationError) as excinfo:
        services.meter_register(meter=meter, actor=None)
    assert "serial" in excinfo.value.message_dict


def test_a_technician_cannot_register_a_meter_in_another_agency(site):
    other = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    technician = EmployeeFactory(role=Role.TECHNICIAN, agency=site.agency)
    meter = Meter(serial="T-1", vendor="V", hardware_model="M", agency=other)
    with pytest.raises(ValidationError):
        services.meter_register(meter=meter, actor=technician)
    assert not Meter.objects.exists()


def test_installation_history_follows_install_remove_and_replace(site):
    start = clock.now() - 48 * HOUR
    old = installed_meter(site, register="100.000", at=start)
    spare = MeterFactory(agency=site.agency)

    services.meter_replace(
        old_meter_id=old.pk,
        new_meter_id=spare.pk,
        old_register_kwh=Decimal("180.500"),
        new_register_kwh=Decimal("0.000"),
        reason="Écran défectueux",
        actor=None,
        at=start + 24 * HOUR,
    )

    old.refresh_from_db()
    spare.refresh_from_db()
    assert old.site is None
    assert spare.site == site
    removed = old.installations.get()
    assert (removed.removed_register_kwh, removed.removal_reason) == (
        Decimal("180.500"),
        "Écran défectueux",
    )
    assert spare.installations.get().installed_register_kwh == Decimal("0.000")
    assert list(old.readings.values_list("energy_kwh", flat=True)) == [
        Decimal("180.500"),
        Decimal("100.000"),
    ]


def test_a_meter_cannot_be_installed_twice(site, meter):
    with pytest.raises(ValidationError) as excinfo:
        services.meter_install(
            meter_id=meter.pk,
            site=SiteFactory(agency=site.agency),
            register_kwh=Decimal("1"),
            actor=None,
        )
    assert "meter" in excinfo.value.message_dict
    assert meter.installations.count() == 1


# --- Readings and consumption --------------------------------------------------------------


def test_consumption_is_the_difference_of_trusted_registers(meter):
    base = meter.last_reading_at
    services.telemetry_ingest(
        messages=[telemetry(meter, (base + HOUR, "1002.500"), (base + 2 * HOUR, "1005.000"))]
    )

    used = meter_consumption(meter=meter, start=base, end=base + 2 * HOUR)

    assert used.kwh == Decimal("5.000")
    assert used.complete


def test_a_lower_register_is_flagged_and_not_billed(meter):
    base = meter.last_reading_at
    services.telemetry_ingest(
        messages=[telemetry(meter, (base + HOUR, "990.000"), (base + 2 * HOUR, "1003.000"))]
    )

    flagged = MeterReading.objects.get(meter=meter, taken_at=base + HOUR)
    assert flagged.flag == MeterReading.Flag.BACKWARDS
    used = meter_consumption(meter=meter, start=base, end=base + 2 * HOUR)
    assert used.kwh == Decimal("3.000")
    assert used.suspicious == 1
    assert not used.complete


def test_a_rollover_counts_the_register_capacity(site):
    meter = installed_meter(site, register="999990.000", at=clock.now() - 5 * HOUR)
    base = meter.last_reading_at
    services.telemetry_ingest(messages=[telemetry(meter, (base + HOUR, "4.000"))])

    reading = MeterReading.objects.get(meter=meter, taken_at=base + HOUR)
    assert reading.flag == MeterReading.Flag.ROLLOVER
    assert meter_consumption(meter=meter, start=base, end=base + HOUR).kwh == Decimal("14.000")


def test_an_implausible_jump_is_a_spike(meter):
    base = meter.last_reading_at
    services.telemetry_ingest(messages=[telemetry(meter, (base + HOUR, "9000.000"))])
    assert MeterReading.objects.get(taken_at=base + HOUR).flag == MeterReading.Flag.SPIKE
    meter.refresh_from_db()
    assert meter.last_energy_kwh == Decimal("1000.000")  # a spike never becomes the reference


def test_the_same_telemetry_twice_stores_one_reading(meter):
    base = meter.last_reading_at
    message = telemetry(meter, (base + HOUR, "1001.000"))
    services.telemetry_ingest(messages=[message, message])
    services.telemetry_ingest(messages=[message])

    assert MeterReading.objects.filter(meter=meter).count() == 2  # installation + one


def test_telemetry_updates_presence_relay_and_reports_unknown_serials(meter):
    base = meter.last_reading_at
    report = services.telemetry_ingest(
        messages=[
            telemetry(meter, (base + HOUR, "1001.000"), relay="off"),
            Telemetry(
                serial="NOBODY-1", readings=(Reading(at=base, energy_kwh=Decimal(1), relay="on"),)
            ),
        ]
    )
    meter.refresh_from_db()
    assert (meter.relay_reported, meter.online, meter.last_energy_kwh) == (
        "off",
        True,
        Decimal("1001.000"),
    )
    assert report.unknown_serials == {"NOBODY-1"}


def test_tamper_opens_one_alarm(meter):
    base = meter.last_reading_at
    for hours in (1, 2):
        services.telemetry_ingest(
            messages=[telemetry(meter, (base + hours * HOUR, f"100{hours}.000"), tamper=True)]
        )
    alarm = MeterAlarm.objects.get(meter=meter, kind=MeterAlarm.Kind.TAMPER)
    assert alarm.occurrences == 2
    assert alarm.closed_at is None


def test_a_technicians_reading_in_the_future_is_refused(meter):
    with pytest.raises(ValidationError):
        services.readings_record(
            meter_id=meter.pk,
            readings=[(clock.now() + dt.timedelta(days=1), Decimal("1100"))],
            source=MeterReading.Source.TECHNICIAN,
            actor=None,
        )
    assert MeterReading.objects.filter(meter=meter).count() == 1


def csv_rows(text: str):
    return services.readings_table_read(file=io.BytesIO(text.encode()), filename="releves.csv")


def xlsx_rows(*lines: tuple) -> list:
    workbook = openpyxl.Workbook()
    for line in lines:
        workbook.active.append(line)
    content = io.BytesIO()
    workbook.save(content)
    content.seek(0)
    return services.readings_table_read(file=content, filename="Relevés.XLSX")


def test_a_bad_import_lists_every_bad_line_and_imports_nothing(meter):
    rows = csv_rows(
        "serial,taken_at,energy_kwh\n"
        f"{meter.serial},2026-11-01T08:00:00+01:00,1001.5\n"
        "UNKNOWN,2026-11-01T08:00:00+01:00,1\n"
        f"{meter.serial},hier à 8h,1002\n"
        f"{meter.serial},2026-11-02T08:00:00+01:00,-4\n"
    )
    with pytest.raises(ApplicationError) as excinfo:
        services.readings_import(rows=rows, actor=None)

    errors = excinfo.value.extra["errors"]
    assert [error.split(" ")[1] for error in errors] == ["3", "4", "5"]
    assert "inconnu" in errors[0]
    assert MeterReading.objects.filter(meter=meter).count() == 1


def test_only_valid_rows_imports_the_good_ones(meter):
    rows = csv_rows(
        "serial,taken_at,energy_kwh\n"
        f"{meter.serial},{(meter.last_reading_at + HOUR).isoformat()},1001.5\n"
        "UNKNOWN,2026-11-01T08:00:00+01:00,1\n"
    )
    report = services.readings_import(rows=rows, actor=None, only_valid_rows=True)
    assert (report.imported, len(report.errors)) == (1, 1)


def test_an_excel_sheet_imports_with_local_times_of_the_agency(meter):
    kinshasa = ZoneInfo("Africa/Kinshasa")
    local = (clock.now() - 5 * HOUR).astimezone(kinshasa).replace(second=0, microsecond=0)
    rows = xlsx_rows(
        ("energy_kwh", "Serial", "taken_at", "note"),
        (1001.25, meter.serial, local.replace(tzinfo=None), "compteur accessible"),
        (None, None, None, None),
        (1002, meter.serial, (local + HOUR).strftime("%Y-%m-%d %H:%M"), ""),
    )

    report = services.readings_import(rows=rows, actor=None)

    assert report.imported == 2
    stored = meter.readings.filter(source=MeterReading.Source.IMPORT).order_by("taken_at")
    assert [r.taken_at for r in stored] == [local, local + HOUR]
    assert [r.energy_kwh for r in stored] == [Decimal("1001.250"), Decimal("1002.000")]


def test_the_import_command_reads_a_file_and_lists_bad_lines(meter, tmp_path):
    good = tmp_path / "bon.csv"
    good.write_text(
        "serial,taken_at,energy_kwh\n"
        f"{meter.serial},{(meter.last_reading_at + HOUR).isoformat()},1001.5\n",
        encoding="utf-8",
    )
    output = io.StringIO()
    call_command("import_readings", str(good), stdout=output)
    assert "1 readings imported" in output.getvalue()

    bad = tmp_path / "mauvais.csv"
    bad.write_text("serial,taken_at,energy_kwh\nX-1,2026-11-01 08:00,abc\n", encoding="utf-8")
    with pytest.raises(CommandError, match="ligne 2"):
        call_command("import_readings", str(bad))
    with pytest.raises(CommandError, match="absent"):
        call_command("import_readings", str(tmp_path / "absent.csv"))


BAD_ROWS = [
    # (energy_kwh, taken_at, what the line says)
    ("NaN", None, "energy_kwh : Saisissez l’index en kWh"),
    ("-Infinity", None, "energy_kwh : Saisissez l’index en kWh"),
    ("123456789012345", None, "au plus 11 chiffres avant la virgule"),
    ("1000000", None, "s’arrête à 1000000 kWh"),
    ("-4", None, "ne peut pas être négatif"),
    ("1001", "2026-02-30 08:00", "taken_at doit être une date et une heure"),
    ("1001", "FUTURE", "taken_at est dans le futur"),
]


@pytest.mark.parametrize(("energy", "taken_at", "message"), BAD_ROWS)
def test_a_bad_row_is_listed_with_its_line_and_nothing_is_imported(
    meter, energy, taken_at, message
):
    good_at = (meter.last_reading_at + HOUR).isoformat()
    if taken_at == "FUTURE":
        taken_at = (clock.now() + dt.timedelta(days=2)).isoformat()
    rows = csv_rows(
        "serial,taken_at,energy_kwh\n"
        f"{meter.serial},{good_at},1001.5\n"
        f"{meter.serial},{taken_at or (meter.last_reading_at + 2 * HOUR).isoformat()},{energy}\n"
    )

    with pytest.raises(ApplicationError) as refused:
        services.readings_import(rows=rows, actor=None)

    (error,) = refused.value.extra["errors"]
    assert error.startswith("ligne 3 : ")
    assert message in error
    assert MeterReading.objects.filter(meter=meter).count() == 1
    assert Meter.objects.get(pk=meter.pk).last_reading_at == meter.last_reading_at

    report = services.readings_import(rows=rows, actor=None, only_valid_rows=True)

    assert (report.imported, report.errors) == (1, [error])
    assert MeterReading.objects.filter(meter=meter, source="import").get().energy_kwh == Decimal(
        "1001.500"
    )


def test_the_same_meter_and_time_twice_in_a_file_is_a_bad_row(meter):
    at = (meter.last_reading_at + HOUR).isoformat()
    rows = csv_rows(
        f"serial,taken_at,energy_kwh\n{meter.serial},{at},1001\n{meter.serial},{at},1002\n"
    )
    with pytest.raises(ApplicationError) as refused:
        services.readings_import(rows=rows, actor=None)
    assert refused.value.extra["errors"] == [
        "ligne 3 : le même compteur et la même heure qu’à la ligne 2"
    ]
    assert MeterReading.objects.filter(meter=meter).count() == 1


def test_the_import_command_lists_every_bad_line_and_imports_nothing(meter, tmp_path):
    future = (clock.now() + dt.timedelta(days=2)).isoformat()
    source = tmp_path / "releves.csv"
    source.write_text(
        "serial,taken_at,energy_kwh\n"
        f"{meter.serial},{(meter.last_reading_at + HOUR).isoformat()},1001.5\n"
        f"{meter.serial},{(meter.last_reading_at + 2 * HOUR).isoformat()},NaN\n"
        f"{meter.serial},{future},1003\n"
        f"{meter.serial},{(meter.last_reading_at + 3 * HOUR).isoformat()},123456789012345\n"
        "X\x00Y,2026-11-01 08:00,1\n",
        encoding="utf-8",
    )

    with pytest.raises(CommandError) as refused:
        call_command("import_readings", str(source))

    lines = str(refused.value).splitlines()
    assert lines[0] == "Rien n’a été importé : 4 lignes en erreur."
    assert [line.split(" ")[1] for line in lines[1:]] == ["3", "4", "5", "6"]
    assert "compteur inconnu « X?Y »" in lines[4]
    assert MeterReading.objects.filter(meter=meter).count() == 1

    output, errors = io.StringIO(), io.StringIO()
    call_command("import_readings", str(source), "--only-valid-rows", stdout=output, stderr=errors)
    assert "1 readings imported" in output.getvalue()
    assert errors.getvalue().count("skipped ligne") == 4
    assert MeterReading.objects.filter(meter=meter).count() == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("serial,taken_at,energy_kwh\nMÉTRE-1,2026-11-01 08:00,1\n".encode("latin-1"), "UTF-8"),
        (b'serial,taken_at,energy_kwh\nX,"' + b"9" * 200_000 + b'",1\n', "près de la ligne"),
    ],
)
def test_an_unreadable_csv_is_a_clear_error_of_the_command(tmp_path, content, message):
    source = tmp_path / "releves.csv"
    source.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_readings", str(source))
    assert not MeterReading.objects.exists()


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"serial;date;index\nX;1;2\n", "releves.csv", "colonnes"),
        ("serial,taken_at,energy_kwh\n".encode("utf-16"), "releves.csv", "UTF-8"),
        (b"not a workbook", "releves.xlsx", "Excel"),
        (b"", "releves.csv", "colonnes"),
    ],
)
def test_an_unreadable_file_says_why(content, filename, message):
    with pytest.raises(ApplicationError) as refused:
        services.readings_table_read(file=io.BytesIO(content), filename=filename)
    assert message in refused.value.message


# --- Commands ------------------------------------------------------------------------------


def test_a_disconnect_decision_queues_one_command(meter):
    first = services.meter_relay_request(
        meter_id=meter.pk,
        wanted=Relay.OFF,
        why=Meter.RelayReason.DUNNING,
        source=MeterCommand.Source.DUNNING,
    )
    again = services.meter_relay_request(
        meter_id=meter.pk,
        wanted=Relay.OFF,
        why=Meter.RelayReason.DUNNING,
        source=MeterCommand.Source.DUNNING,
    )
    assert again == first
    assert first.action == MeterCommand.Action.DISCONNECT
    meter.refresh_from_db()
    assert meter.relay_wanted == Relay.OFF


def test_a_new_decision_supersedes_the_one_on_its_way(meter):
    disconnect = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
    )
    connect = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.ON, why="normal", source="payment"
    )
    disconnect.refresh_from_db()
    assert disconnect.status == MeterCommand.Status.SUPERSEDED
    assert connect.action == MeterCommand.Action.CONNECT


def test_a_dunning_run_decides_for_many_meters_in_a_fixed_number_of_queries(
    site, django_assert_max_num_queries
):
    meters = [installed_meter(site) for _ in range(6)]
    on_its_way = services.meter_relay_request(
        meter_id=meters[0].pk, wanted=Relay.OFF, why="dunning", source="dunning"
    )
    reconnecting = services.meter_relay_request(
        meter_id=meters[1].pk, wanted=Relay.ON, why="normal", source="payment"
    )
    Meter.objects.filter(pk=meters[2].pk).update(relay_reported=Relay.OFF)

    with django_assert_max_num_queries(8):
        decided = services.meters_relay_request(
            meter_ids=[m.pk for m in meters], wanted=Relay.OFF, why="dunning", source="dunning"
        )

    assert decided[meters[0].pk] == on_its_way  # already under way: no second command
    assert decided[meters[2].pk] is None  # already off
    reconnecting.refresh_from_db()
    assert reconnecting.status == MeterCommand.Status.SUPERSEDED
    new = [decided[m.pk] for m in (meters[1], *meters[3:])]
    assert all(c is not None and c.action == MeterCommand.Action.DISCONNECT for c in new)
    assert MeterCommand.objects.filter(status=MeterCommand.Status.QUEUED).count() == 5
    assert set(Meter.objects.values_list("relay_wanted", flat=True)) == {Relay.OFF}


def test_a_dunning_run_with_a_meter_not_installed_changes_nothing(site):
    installed = installed_meter(site)
    in_stock = MeterFactory(agency=site.agency)
    with pytest.raises(ValidationError) as refused:
        services.meters_relay_request(
            meter_ids=[installed.pk, in_stock.pk], wanted=Relay.OFF, why="dunning", source="dunning"
        )
    assert in_stock.serial in str(refused.value)
    assert not MeterCommand.objects.exists()
    assert Meter.objects.get(pk=installed.pk).relay_wanted == Relay.ON


def test_staff_switching_needs_the_permission_and_a_reason(meter):
    cashier = EmployeeFactory(role=Role.CASHIER, agency=meter.agency)
    technician = EmployeeFactory(role=Role.TECHNICIAN, agency=meter.agency)
    with pytest.raises(PermissionDenied):
        services.meter_relay_request(
            meter_id=meter.pk,
            wanted=Relay.OFF,
            why="staff",
            source="staff",
            reason="x",
            actor=cashier,
        )
    with pytest.raises(ValidationError):
        services.meter_relay_request(
            meter_id=meter.pk,
            wanted=Relay.OFF,
            why="staff",
            source="staff",
            reason=" ",
            actor=technician,
        )
    assert not MeterCommand.objects.exists()
    command = services.meter_relay_request(
        meter_id=meter.pk,
        wanted=Relay.OFF,
        why="staff",
        source="staff",
        reason="Fraude constatée",
        actor=technician,
    )
    assert (command.requested_by, command.reason) == (technician, "Fraude constatée")


def test_dispatch_sends_due_commands_then_retries_with_backoff(meter):
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    sent: list[tuple[str, bytes]] = []

    assert (
        services.commands_dispatch(publish=lambda serial, payload: sent.append((serial, payload)))
        == 1
    )
    assert (
        services.commands_dispatch(publish=lambda serial, payload: sent.append((serial, payload)))
        == 0
    )

    serial, payload = sent[0]
    assert serial == meter.serial
    command.refresh_from_db()
    assert command.status == MeterCommand.Status.SENT
    assert command.next_attempt_at - command.last_sent_at == dt.timedelta(seconds=30)
    assert str(command.uuid) in payload.decode()
    assert b'"action":"disconnect"' in payload.replace(b" ", b"")


# What README.md and docs/meter-protocol.md promise: re-sent after 30 s, 1, 2, 5 and 10 min,
# then every 30 min, and expired 24 h after it was issued.
DOCUMENTED_RETRY_DELAYS = [dt.timedelta(seconds=s) for s in (30, 60, 120, 300, 600)]
DOCUMENTED_RETRY_EVERY = dt.timedelta(minutes=30)
DOCUMENTED_LIFETIME = dt.timedelta(hours=24)


def test_an_unacknowledged_command_is_sent_again_at_every_step_of_the_schedule_then_expires(
    meter,
):
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    expires = command.issued_at + DOCUMENTED_LIFETIME
    sent: list[tuple[dt.datetime, bytes]] = []

    def dispatch(at: dt.datetime) -> int:
        return services.commands_dispatch(
            publish=lambda serial, payload: sent.append((at, payload)), now=at
        )

    def status() -> str:
        return MeterCommand.objects.values_list("status", flat=True).get(pk=command.pk)

    assert dispatch(command.issued_at) == 1
    schedule = [command.issued_at]
    delays = iter(DOCUMENTED_RETRY_DELAYS)
    while True:
        due = schedule[-1] + next(delays, DOCUMENTED_RETRY_EVERY)
        if due >= expires:
            break
        assert dispatch(due - dt.timedelta(seconds=1)) == 0, f"re-sent before {due}"
        assert dispatch(due) == 1, f"not re-sent at {due}"
        schedule.append(due)
        assert status() == MeterCommand.Status.SENT

    # 5 growing delays, then every 30 min until the 24 h are up: 53 sendings in all.
    assert len(schedule) == 1 + 5 + 47
    assert [at for at, _payload in sent] == schedule
    assert {payload for _at, payload in sent} == {sent[0][1]}  # the same command id each time
    assert dispatch(expires - dt.timedelta(microseconds=1)) == 0
    assert status() == MeterCommand.Status.SENT  # not expired a moment early
    assert dispatch(expires) == 0
    command.refresh_from_db()
    assert command.status == MeterCommand.Status.EXPIRED
    assert command.closed_at == expires
    assert command.attempts == len(schedule)
    assert dispatch(expires + DOCUMENTED_RETRY_EVERY) == 0  # never sent again
    assert len(sent) == len(schedule)


def test_an_ack_settles_the_command_once(meter):
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    ack = Ack(
        serial=meter.serial, command_id=command.uuid, status="ok", relay="off", at=clock.now()
    )

    assert services.acks_apply(acks=[ack]).acknowledged == 1
    again = services.acks_apply(acks=[ack])
    assert (again.acknowledged, again.anomalies.counts) == (0, {"duplicate_ack": 1})

    command.refresh_from_db()
    meter.refresh_from_db()
    assert command.status == MeterCommand.Status.ACKNOWLEDGED
    assert meter.relay_reported == Relay.OFF


def test_an_ack_from_another_meter_is_ignored(meter, site):
    other = installed_meter(site, serial="OTHER-1")
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    ack = Ack(
        serial=other.serial, command_id=command.uuid, status="ok", relay="off", at=clock.now()
    )

    assert services.acks_apply(acks=[ack]).anomalies.counts == {"unknown_command": 1}
    command.refresh_from_db()
    assert command.status == MeterCommand.Status.QUEUED


def test_a_refused_command_fails_and_alarms(meter):
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    services.acks_apply(
        acks=[
            Ack(
                serial=meter.serial,
                command_id=command.uuid,
                status="error",
                relay="on",
                at=clock.now(),
                error="relay_fault",
            )
        ]
    )
    command.refresh_from_db()
    assert (command.status, command.error) == (MeterCommand.Status.FAILED, "relay_fault")
    assert MeterAlarm.objects.filter(meter=meter, kind=MeterAlarm.Kind.COMMAND_FAILED).exists()


def open_offline_alarms(meter):
    return MeterAlarm.objects.filter(meter=meter, kind="offline", closed_at__isnull=True)


def test_a_meter_back_online_gets_its_commands_at_once(meter):
    services.statuses_apply(statuses=[Status(serial=meter.serial, online=True, relay="on")])
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    services.commands_dispatch(publish=lambda serial, payload: None)
    services.statuses_apply(statuses=[Status(serial=meter.serial, online=False)])
    assert open_offline_alarms(meter).get().details == "Le compteur est hors ligne."

    report = services.statuses_apply(
        statuses=[Status(serial=meter.serial, online=True, relay="on", fw="2.4")]
    )

    assert report.came_back == 1
    command.refresh_from_db()
    assert command.next_attempt_at <= clock.now()
    assert not open_offline_alarms(meter).exists()
    meter.refresh_from_db()
    assert (meter.online, meter.firmware) == (True, "2.4")


def test_a_meter_that_drops_and_returns_within_one_batch_gets_its_commands(meter):
    services.statuses_apply(statuses=[Status(serial=meter.serial, online=True, relay="on")])
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    services.commands_dispatch(publish=lambda serial, payload: None)

    services.statuses_apply(
        statuses=[
            Status(serial=meter.serial, online=False),  # its last will
            Status(serial=meter.serial, online=True, relay="on"),  # back, maybe a new session
        ]
    )

    command.refresh_from_db()
    assert command.next_attempt_at <= clock.now()
    assert not open_offline_alarms(meter).exists()


def test_a_relay_change_of_a_meter_online_resends_nothing(meter):
    services.statuses_apply(statuses=[Status(serial=meter.serial, online=True, relay="on")])
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    services.commands_dispatch(publish=lambda serial, payload: None)
    command.refresh_from_db()
    due = command.next_attempt_at

    # The meter applied the command: its status (relay off) comes before its ack.
    report = services.statuses_apply(
        statuses=[Status(serial=meter.serial, online=True, relay="off")]
    )

    assert report.came_back == 0
    command.refresh_from_db()
    assert command.next_attempt_at == due > clock.now()
    assert Meter.objects.get(pk=meter.pk).relay_reported == Relay.OFF


def test_a_replayed_status_is_no_sign_of_life_and_resends_nothing(meter):
    services.statuses_apply(statuses=[Status(serial=meter.serial, online=True, relay="on")])
    seen = clock.now() - 10 * dt.timedelta(minutes=1)
    Meter.objects.filter(pk=meter.pk).update(last_seen_at=seen)
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    services.commands_dispatch(publish=lambda serial, payload: None)
    command.refresh_from_db()
    due = command.next_attempt_at

    # The head-end (re)subscribes: the broker replays the meter's retained status.
    report = services.statuses_apply(
        statuses=[], replayed=[Status(serial=meter.serial, online=True, relay="on", fw="2.5")]
    )

    assert report.came_back == 0
    command.refresh_from_db()
    assert command.next_attempt_at == due  # not re-sent: it was just sent
    meter.refresh_from_db()
    assert (meter.online, meter.last_seen_at, meter.firmware) == (True, seen, "2.5")


def test_a_replayed_last_will_takes_the_meter_offline_once(meter):
    services.statuses_apply(statuses=[Status(serial=meter.serial, online=True, relay="on")])
    seen = Meter.objects.get(pk=meter.pk).last_seen_at

    for _replay in range(3):  # three restarts of the head-end
        services.statuses_apply(statuses=[], replayed=[Status(serial=meter.serial, online=False)])

    meter.refresh_from_db()
    assert (meter.online, meter.last_seen_at) == (False, seen)
    alarm = open_offline_alarms(meter).get()
    assert alarm.occurrences == 1


def test_a_replayed_online_status_does_not_bring_a_silent_meter_back(meter):
    services.statuses_apply(statuses=[Status(serial=meter.serial, online=True, relay="on")])
    Meter.objects.filter(pk=meter.pk).update(last_seen_at=clock.now() - 2 * HOUR)
    assert services.meters_reconcile().offline == 1
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    services.commands_dispatch(publish=lambda serial, payload: None)
    command.refresh_from_db()
    due = command.next_attempt_at

    services.statuses_apply(
        statuses=[], replayed=[Status(serial=meter.serial, online=True, relay="on")]
    )

    assert not Meter.objects.get(pk=meter.pk).online
    assert open_offline_alarms(meter).get().occurrences == 1
    command.refresh_from_db()
    assert command.next_attempt_at == due


def test_a_command_keeps_its_life_on_its_row(meter):
    sent: list[bytes] = []
    disconnect = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
    )
    services.commands_dispatch(publish=lambda serial, payload: sent.append(payload))
    first = MeterCommand.objects.get(pk=disconnect.pk)
    MeterCommand.objects.filter(pk=disconnect.pk).update(next_attempt_at=clock.now())
    services.commands_dispatch(publish=lambda serial, payload: sent.append(payload))  # retry

    connect = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.ON, why="normal", source="staff"
    )
    services.commands_dispatch(publish=lambda serial, payload: sent.append(payload))
    services.acks_apply(
        acks=[
            Ack(
                serial=meter.serial,
                command_id=connect.uuid,
                status="ok",
                relay="on",
                at=clock.now(),
            )
        ]
    )

    disconnect.refresh_from_db()
    connect.refresh_from_db()
    assert len(sent) == 3
    assert (disconnect.status, disconnect.attempts) == ("superseded", 2)
    assert disconnect.first_sent_at == first.first_sent_at == first.last_sent_at
    assert disconnect.last_sent_at > disconnect.first_sent_at
    assert connect.supersedes == disconnect
    assert disconnect.superseded_by == connect
    assert disconnect.closed_at is not None
    assert disconnect.closed_at <= connect.issued_at
    assert connect.status == "acknowledged"
    assert connect.first_sent_at <= connect.acknowledged_at == connect.closed_at


def test_commands_expire_when_never_acknowledged(meter):
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    MeterCommand.objects.filter(pk=command.pk).update(expires_at=clock.now() - HOUR)

    services.commands_dispatch(publish=lambda serial, payload: None)

    command.refresh_from_db()
    assert command.status == MeterCommand.Status.EXPIRED
    assert command.closed_at is not None
    assert command.attempts == 0  # never sent


def test_a_switch_off_with_a_deadline_expires_then_and_a_switch_on_never_waits(meter):
    deadline = clock.now() + 2 * HOUR
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning", deadline=deadline
    )
    assert command.expires_at == deadline
    assert Meter.objects.get(pk=meter.pk).relay_deadline == deadline

    with pytest.raises(ValueError, match="switching on never does"):
        services.meter_relay_request(
            meter_id=meter.pk, wanted=Relay.ON, why="normal", source="payment", deadline=deadline
        )
    on = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.ON, why="normal", source="payment"
    )
    assert on.expires_at == on.issued_at + services.COMMAND_LIFETIME
    assert Meter.objects.get(pk=meter.pk).relay_deadline is None


def test_a_command_past_its_deadline_is_never_sent_even_when_many_expire_at_once(site):
    meters = [installed_meter(site) for _ in range(3)]
    for meter in meters:
        services.meter_relay_request(
            meter_id=meter.pk,
            wanted=Relay.OFF,
            why="dunning",
            source="dunning",
            deadline=clock.now() + HOUR,
        )
    sent: list[str] = []

    # One round closes one expired command: the others are not sent meanwhile.
    services.commands_dispatch(
        publish=lambda serial, payload: sent.append(serial), limit=1, now=clock.now() + 2 * HOUR
    )

    assert sent == []
    assert MeterCommand.objects.filter(status=MeterCommand.Status.EXPIRED).count() == 1


def test_a_new_decision_replaces_a_command_whose_time_ran_out(meter):
    old = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
    )
    # Past its expiry, not closed yet (the dispatcher was down).
    MeterCommand.objects.filter(pk=old.pk).update(expires_at=clock.now() - HOUR)

    new = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
    )

    assert new != old
    assert new.supersedes == old
    assert MeterCommand.objects.get(pk=old.pk).status == MeterCommand.Status.SUPERSEDED


@pytest.mark.parametrize(("hours", "commands"), [(-1, 0), (1, 1)])
def test_reconciliation_switches_a_meter_off_only_before_its_deadline(meter, hours, commands):
    deadline = clock.now() + dt.timedelta(hours=hours)
    Meter.objects.filter(pk=meter.pk).update(
        relay_wanted=Relay.OFF,
        relay_wanted_reason="dunning",
        relay_deadline=deadline,
        relay_reported=Relay.ON,
    )

    assert services.meters_reconcile().commands == commands

    assert list(MeterCommand.objects.values_list("expires_at", flat=True)) == [deadline] * commands
    assert Meter.objects.get(pk=meter.pk).disagreements == commands


def test_reconciliation_corrects_and_then_alarms(meter):
    Meter.objects.filter(pk=meter.pk).update(relay_wanted=Relay.OFF, relay_reported=Relay.ON)

    for _round in range(3):
        report = services.meters_reconcile()
        assert report.commands == 1
        assert services.meters_reconcile().commands == 0  # a command is already on its way
        MeterCommand.objects.filter(meter=meter).update(status=MeterCommand.Status.EXPIRED)

    assert MeterAlarm.objects.filter(meter=meter, kind=MeterAlarm.Kind.DISAGREEMENT).count() == 1
    Meter.objects.filter(pk=meter.pk).update(relay_reported=Relay.OFF)
    services.meters_reconcile()
    assert not MeterAlarm.objects.filter(
        meter=meter, closed_at__isnull=True, kind="disagreement"
    ).exists()


def test_reconciliation_leaves_a_prepaid_meter_without_credit_alone(site):
    meter = installed_meter(site, prepaid=True)
    Meter.objects.filter(pk=meter.pk).update(relay_reported=Relay.OFF, credit_kwh=0)
    assert services.meters_reconcile().commands == 0


def test_a_silent_meter_is_marked_offline(meter):
    Meter.objects.filter(pk=meter.pk).update(online=True, last_seen_at=clock.now() - 2 * HOUR)
    assert services.meters_reconcile().offline == 1
    meter.refresh_from_db()
    assert not meter.online


def flagged_reading(meter) -> MeterReading:
    services.telemetry_ingest(messages=[telemetry(meter, (meter.last_reading_at + HOUR, "900"))])
    return MeterReading.objects.get(meter=meter, flag=MeterReading.Flag.BACKWARDS)


def test_a_review_keeps_who_reviewed_and_when(meter):
    reading = flagged_reading(meter)
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=meter.agency)
    other = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=meter.agency)

    assert services.readings_mark_reviewed(reading_ids=[reading.pk], actor=manager) == 1
    assert services.readings_mark_reviewed(reading_ids=[reading.pk], actor=other) == 0

    reading.refresh_from_db()
    assert (reading.reviewed, reading.reviewed_by) == (True, manager)
    assert clock.now() - reading.reviewed_at < dt.timedelta(minutes=1)


def test_reviewing_readings_needs_the_permission(meter):
    reading = flagged_reading(meter)
    with pytest.raises(PermissionDenied):
        services.readings_mark_reviewed(
            reading_ids=[reading.pk],
            actor=EmployeeFactory(role=Role.CASHIER, agency=meter.agency),
        )
    reading.refresh_from_db()
    assert (reading.reviewed, reading.reviewed_by, reading.reviewed_at) == (False, None, None)


# --- Prepaid tokens ------------------------------------------------------------------------


def test_a_token_decodes_with_the_meters_secret_and_counts_forward(site):
    meter = installed_meter(site, prepaid=True)
    token = services.prepaid_token_issue(
        meter_id=meter.pk, energy_kwh=25, actor=None, reason="Achat"
    )

    value, _type, count, _used = openpaygo.decode_token(
        token=token.token, secret_key=TOKEN_SECRET, count=1, used_counts=[]
    )
    assert value == 25
    assert count == token.count
    assert token.command.action == MeterCommand.Action.TOKEN
    second = services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=10, actor=None)
    assert second.count > token.count
    assert second.token != token.token


@pytest.mark.parametrize("kwh", [0, 996])
def test_token_values_outside_what_a_token_carries_are_refused(site, kwh):
    meter = installed_meter(site, prepaid=True)
    with pytest.raises(ValidationError):
        services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=kwh, actor=None)
    assert not PrepaidToken.objects.exists()


def test_tokens_need_a_prepaid_meter_and_the_permission(meter, site):
    with pytest.raises(ValidationError):
        services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=5, actor=None)
    prepaid = installed_meter(site, prepaid=True)
    with pytest.raises(PermissionDenied):
        services.prepaid_token_issue(
            meter_id=prepaid.pk,
            energy_kwh=5,
            actor=EmployeeFactory(role=Role.SUPPORT_AGENT, agency=site.agency),
        )
    cashier = EmployeeFactory(role=Role.CASHIER, agency=site.agency)
    assert (
        services.prepaid_token_issue(meter_id=prepaid.pk, energy_kwh=5, actor=cashier).energy_kwh
        == 5
    )


def test_the_dispatched_token_command_carries_the_token(site):
    meter = installed_meter(site, prepaid=True)
    token = services.prepaid_token_issue(meter_id=meter.pk, energy_kwh=7, actor=None)
    sent = []
    services.commands_dispatch(publish=lambda serial, payload: sent.append(payload))
    assert token.token in sent[0].decode()


# --- Prepaid sales through the tariff -----------------------------------------------------


@pytest.fixture
def prepaid(site):
    tariff()  # residential, CDF: 50 kWh a month at 100, then 200; VAT 16%
    return installed_meter(site, prepaid=True)


def test_a_sale_buys_the_whole_kwh_of_the_amount_through_the_bands(prepaid):
    # 11 600 CDF = 10 000 before VAT: 50 kWh at 100, then 25 kWh at 200.
    first = services.prepaid_token_for_amount(
        meter_id=prepaid.pk, amount=Decimal(11600), currency="CDF", actor=None
    )
    assert (first.token.energy_kwh, first.charged, first.change) == (75, Decimal(11600), 0)
    assert (first.token.amount, first.token.currency) == (Decimal(11600), "CDF")
    assert first.token.command.action == MeterCommand.Action.TOKEN

    # Later in the month every kWh is in the upper band: 2 400 CDF buy 10 kWh (2 320).
    second = services.prepaid_token_for_amount(
        meter_id=prepaid.pk, amount=Decimal(2400), currency="CDF", actor=None
    )
    assert (second.token.energy_kwh, second.charged, second.change) == (
        10,
        Decimal(2320),
        Decimal(80),
    )
    _, expected = openpaygo.generate_token(
        secret_key=TOKEN_SECRET, count=first.token.count, value=10
    )
    assert second.token.token == str(expected)  # the meter's next token, decodable


def test_a_sale_in_dollars_converts_at_the_weeks_rate(prepaid):
    ExchangeRate.objects.create(day=clock.today(), cdf_per_usd=Decimal(2900))
    sale = services.prepaid_token_for_amount(
        meter_id=prepaid.pk, amount=Decimal(4), currency="USD", actor=None
    )
    # 4 USD = 11 600 CDF: the same 75 kWh.
    assert (sale.token.energy_kwh, sale.currency, sale.change) == (75, "CDF", 0)


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (Decimal(100), "CDF", "1 kWh coûte 116,00 CDF"),
        (Decimal(0), "CDF", "supérieur à zéro"),
        (Decimal(-5), "CDF", "supérieur à zéro"),
        (Decimal("NaN"), "CDF", "supérieur à zéro"),
        (Decimal(10_000_000), "CDF", "au plus 995 kWh"),
    ],
)
def test_a_sale_that_cannot_be_made_says_why_and_issues_nothing(prepaid, amount, currency, message):
    with pytest.raises(ValidationError, match=message):
        services.prepaid_token_for_amount(
            meter_id=prepaid.pk, amount=amount, currency=currency, actor=None
        )
    assert not PrepaidToken.objects.exists()
    assert Meter.objects.get(pk=prepaid.pk).token_count == prepaid.token_count


def test_no_sale_without_a_tariff_or_a_rate(site):
    meter = installed_meter(site, prepaid=True)
    with pytest.raises(ApplicationError, match="Aucun tarif"):
        services.prepaid_token_for_amount(
            meter_id=meter.pk, amount=Decimal(5000), currency="CDF", actor=None
        )
    tariff()
    with pytest.raises(ApplicationError, match="taux de change"):
        services.prepaid_token_for_amount(
            meter_id=meter.pk, amount=Decimal(5), currency="USD", actor=None
        )
    assert not PrepaidToken.objects.exists()


# --- What the head-end cannot use: counted --------------------------------------------------


def test_duplicate_and_late_readings_are_counted_and_stored_once(meter):
    base = meter.last_reading_at
    first = services.telemetry_ingest(
        messages=[
            telemetry(meter, (base + 2 * HOUR, "1002.000")),
            telemetry(meter, (base + 2 * HOUR, "1002.000")),  # QoS 1: the same message again
        ]
    )
    late = services.telemetry_ingest(
        messages=[
            telemetry(
                meter,
                (base, "1000.000"),  # the installation's reading
                (base + HOUR, "1001.000"),  # buffered by the meter, arrives after a newer one
                (base + 2 * HOUR, "1002.000"),  # stored by the first batch
            )
        ]
    )

    assert (first.readings, first.anomalies.counts) == (1, {"duplicate_reading": 1})
    assert (late.readings, late.anomalies.counts) == (
        1,
        {"duplicate_reading": 2, "late_reading": 1},
    )
    assert late.anomalies.serials["late_reading"] == {meter.serial}
    assert MeterReading.objects.filter(meter=meter).count() == 3
    assert MeterReading.objects.get(taken_at=base + HOUR).flag == ""
    meter.refresh_from_db()
    assert (meter.last_reading_at, meter.last_energy_kwh) == (base + 2 * HOUR, Decimal("1002"))


def test_unknown_serials_are_counted_per_message_in_every_kind(meter):
    at = clock.now()
    reading = Reading(at=at, energy_kwh=Decimal(1), relay="on")
    ingest = services.telemetry_ingest(
        messages=[Telemetry(serial="GHOST-1", readings=(reading,))] * 2
    )
    acks = services.acks_apply(
        acks=[Ack(serial="GHOST-2", command_id=uuid.uuid4(), status="ok", relay="on", at=at)]
    )
    statuses = services.statuses_apply(
        statuses=[Status(serial="GHOST-3", online=True)],
        replayed=[Status(serial="GHOST-3", online=False), Status(serial=meter.serial, online=True)],
    )

    assert ingest.anomalies.counts == {"unknown_serial": 2}
    assert ingest.unknown_serials == {"GHOST-1"}
    assert acks.anomalies.counts == {"unknown_serial": 1}
    assert statuses.anomalies.counts == {"unknown_serial": 2}
    assert statuses.anomalies.serials["unknown_serial"] == {"GHOST-3"}
    assert not MeterReading.objects.exclude(meter=meter).exists()


def test_an_ack_for_a_superseded_command_still_tells_the_relay(meter):
    disconnect = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
    )
    services.meter_relay_request(meter_id=meter.pk, wanted=Relay.ON, why="normal", source="staff")
    ack = Ack(
        serial=meter.serial, command_id=disconnect.uuid, status="ok", relay="off", at=clock.now()
    )

    report = services.acks_apply(acks=[ack])

    assert report.anomalies.counts == {"late_ack": 1}
    disconnect.refresh_from_db()
    assert disconnect.status == MeterCommand.Status.SUPERSEDED
    assert Meter.objects.get(pk=meter.pk).relay_reported == Relay.OFF


# --- The head-end's services: a fixed number of queries, meters locked first -----------------


def queries_for(build, run, count: int) -> int:
    """Queries ``run(build(count))`` makes; what ``build`` wrote is rolled back after."""
    with transaction.atomic():
        prepared = build(count)
        with CaptureQueriesContext(connection) as captured:
            run(prepared)
        transaction.set_rollback(True)
    return len(captured)


def some_meters(count: int, **kwargs) -> list[Meter]:
    site = SiteFactory()
    return [installed_meter(site, at=clock.now() - 10 * HOUR, **kwargs) for _ in range(count)]


def online(meters):
    services.statuses_apply(statuses=[Status(serial=m.serial, online=True) for m in meters])


def disconnects(meters) -> dict[int, MeterCommand]:
    decided = services.meters_relay_request(
        meter_ids=[m.pk for m in meters], wanted=Relay.OFF, why="dunning", source="dunning"
    )
    return {pk: command for pk, command in decided.items() if command is not None}


def test_telemetry_ingest_queries_do_not_grow_with_the_meters():
    def build(count):
        meters = some_meters(count)
        messages = []
        for index, m in enumerate(meters):
            base = m.last_reading_at
            tamper = index % 2 == 0
            messages.append(telemetry(m, (base, "1000"), (base + HOUR, "1001"), tamper=tamper))
            messages.append(telemetry(m, (base + HOUR, "1001")))
        messages.append(telemetry(Meter(serial="GHOST-1"), (clock.now(), "1")))
        return messages

    def run(messages):
        report = services.telemetry_ingest(messages=messages)
        assert report.anomalies.counts["duplicate_reading"] >= 2

    assert queries_for(build, run, 2) == queries_for(build, run, 8)


def test_acks_apply_queries_do_not_grow_with_the_acks():
    def build(count):
        meters = some_meters(count)
        commands = disconnects(meters)
        acks = []
        for index, m in enumerate(meters):
            ok = index % 2 == 0
            ack = Ack(
                serial=m.serial,
                command_id=commands[m.pk].uuid,
                status="ok" if ok else "error",
                relay="off" if ok else "on",
                at=clock.now(),
                error=None if ok else f"relay_fault {index}",
            )
            acks += [ack, ack]
        return acks

    def run(acks):
        report = services.acks_apply(acks=acks)
        assert report.failed >= 1
        assert report.acknowledged >= 1

    assert queries_for(build, run, 2) == queries_for(build, run, 8)


def test_statuses_apply_queries_do_not_grow_with_the_meters():
    def build(count):
        meters = some_meters(count)
        online(meters)
        disconnects(meters)
        services.commands_dispatch(publish=lambda serial, payload: None)
        half = count // 2
        services.statuses_apply(
            statuses=[Status(serial=m.serial, online=False) for m in meters[:half]]
        )
        # The first half comes back (re-sends), the second half goes away (alarms).
        return [Status(serial=m.serial, online=i < half, relay="on") for i, m in enumerate(meters)]

    def run(statuses):
        report = services.statuses_apply(statuses=statuses)
        assert report.came_back >= 1
        assert report.went_away >= 1

    assert queries_for(build, run, 2) == queries_for(build, run, 8)


def test_commands_dispatch_queries_do_not_grow_with_the_commands():
    def build(count):
        meters = some_meters(count)
        commands = disconnects(meters)
        for attempts, command in enumerate(commands.values()):  # each at its own retry
            MeterCommand.objects.filter(pk=command.pk).update(attempts=attempts)
        expired = list(commands.values())[: count // 2]
        MeterCommand.objects.filter(pk__in=[c.pk for c in expired]).update(
            expires_at=clock.now() - HOUR
        )
        return count - len(expired)

    def run(due):
        assert services.commands_dispatch(publish=lambda serial, payload: None) == due

    assert queries_for(build, run, 2) == queries_for(build, run, 8)


def test_reconciliation_queries_do_not_grow_with_the_meters():
    def build(count):
        meters = some_meters(count)
        third = count // 3 or 1
        ids = [m.pk for m in meters]
        Meter.objects.filter(pk__in=ids[:third]).update(
            relay_wanted=Relay.OFF, relay_reported=Relay.ON, disagreements=5
        )
        Meter.objects.filter(pk__in=ids[third : 2 * third]).update(
            relay_reported=Relay.ON, disagreements=2
        )
        Meter.objects.filter(pk__in=ids[2 * third :]).update(
            online=True, last_seen_at=clock.now() - 2 * HOUR
        )
        return third

    def run(third):
        report = services.meters_reconcile()
        assert (report.commands, report.alarms) == (third, third)
        assert report.offline >= 1

    assert queries_for(build, run, 3) == queries_for(build, run, 9)


def statements(run) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [query["sql"] for query in captured]


def first_index(sqls: list[str], table: str, *, writes: bool = False) -> int:
    quoted = f'"{table}"'
    for index, sql in enumerate(sqls):
        locks = "FOR UPDATE" in sql or (writes and sql.startswith(("UPDATE", "INSERT")))
        if quoted in sql and (locks or connection.vendor != "postgresql"):
            return index
    raise AssertionError(f"no statement on {table}")


def test_the_services_lock_meters_by_id_before_their_commands(site):
    def acks_in_any_order():
        meters = [installed_meter(site) for _ in range(3)]
        commands = disconnects(meters)
        acks = [
            Ack(serial=m.serial, command_id=commands[m.pk].uuid, status="ok", relay="off", at=now)
            for m in reversed(meters)
        ]
        return lambda: services.acks_apply(acks=acks)

    def decision_superseding_commands():
        meters = [installed_meter(site) for _ in range(3)]
        disconnects(meters)
        return lambda: services.meters_relay_request(
            meter_ids=[m.pk for m in reversed(meters)], wanted=Relay.ON, why="normal", source="x"
        )

    now = clock.now()
    for prepare in (acks_in_any_order, decision_superseding_commands):
        sqls = statements(prepare())
        meter_lock = first_index(sqls, "metering_meter")
        assert first_index(sqls, "metering_metercommand", writes=True) > meter_lock
        assert 'ORDER BY "metering_meter"."id" ASC' in sqls[meter_lock]


POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.mark.skipif(not POSTGRES, reason="SQLite has one writer: its transactions never interleave")
@pytest.mark.django_db(transaction=True)
def test_acks_and_a_decision_on_the_same_meters_at_once_do_not_deadlock():
    """A dunning decision waits on a meter while a head-end worker applies acks of the same
    meters (in another order): with one lock order, one waits for the other."""
    site = SiteFactory()
    meters = [installed_meter(site) for _ in range(2)]
    commands = disconnects(meters)
    acks = [
        Ack(
            serial=m.serial,
            command_id=commands[m.pk].uuid,
            status="ok",
            relay="off",
            at=clock.now(),
        )
        for m in reversed(meters)
    ]
    errors: list[BaseException] = []
    holding, release = threading.Event(), threading.Event()

    def hold_first_meter():
        with transaction.atomic():
            list(Meter.objects.select_for_update().filter(pk=meters[0].pk))
            holding.set()
            release.wait(20)

    blocker = in_thread(hold_first_meter, errors)
    assert holding.wait(10)
    decision = in_thread(
        lambda: services.meters_relay_request(
            meter_ids=[m.pk for m in meters], wanted=Relay.ON, why="normal", source="staff"
        ),
        errors,
    )
    time.sleep(0.5)  # the decision waits for the first meter
    worker = in_thread(lambda: services.acks_apply(acks=acks), errors)
    time.sleep(0.5)  # the acks wait too (they once locked the commands first, then meters)
    release.set()
    for thread in (blocker, decision, worker):
        thread.join(30)

    assert errors == []
    assert MeterCommand.objects.filter(action="connect", status="queued").count() == 2
    assert set(Meter.objects.values_list("relay_reported", flat=True)) == {Relay.OFF}
