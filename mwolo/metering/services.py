"""Everything that changes a meter: registration, installation, readings, commands, tokens.

Each function is one transaction. Functions the head-end calls (``telemetry_ingest``,
``acks_apply``, ``statuses_apply``, ``commands_dispatch``) work on whole batches in a fixed
number of queries, lock the meters they touch in id order (several head-end workers may
run at once), and are idempotent: a message delivered twice changes nothing the second
time.
"""

import csv
import datetime as dt
import io
import logging
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO, cast
from zoneinfo import ZoneInfo

import openpaygo
import openpyxl
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    F,
    Field,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_datetime
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from openpyxl.utils.exceptions import InvalidFileException

from mwolo.accounts.models import User
from mwolo.billing.models import Currency, Tariff
from mwolo.billing.pricing import energy_cost, energy_for_amount, round_money
from mwolo.billing.selectors import amount_in, tariff_bands, tariff_in_force
from mwolo.core import clock
from mwolo.core.bulk import among, rows_insert
from mwolo.core.crypto import decrypt, encrypt
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import can_act_for_agency, visible_to
from mwolo.crm.models import Site
from mwolo.headend.protocol import Ack, Reading, Status, Telemetry, command_payload
from mwolo.notifications.services import notification_send

from .models import (
    SERIAL_PATTERN,
    HeadendRejection,
    Meter,
    MeterAlarm,
    MeterCommand,
    MeterInstallation,
    MeterReading,
    PaymentMode,
    PrepaidToken,
    Relay,
)

logger = logging.getLogger(__name__)

KWH = Decimal("0.001")
# A reading implying more than this average power since the previous one is a spike.
MAX_PLAUSIBLE_KW = Decimal("500")
# A relay command not acknowledged in this time expires; reconciliation issues a new one.
COMMAND_LIFETIME = dt.timedelta(hours=24)
# Re-sending an unacknowledged command: after 30 s, then 1, 2, 5, 10 and every 30 min.
RETRY_DELAYS = tuple(dt.timedelta(seconds=s) for s in (30, 60, 120, 300, 600, 1800))
# Relay disagreements in a row before a person is alerted.
DISAGREEMENTS_BEFORE_ALARM = 3
TOKEN_SECRET_PATTERN = re.compile(r"^[0-9a-fA-F]{32}$")
SERIAL_RE = re.compile(SERIAL_PATTERN)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_TOKEN_KWH = 995  # what a standard (9-digit) OpenPAYGO token can carry


# --- Registration and installation ---------------------------------------------------------


def offline_after() -> dt.timedelta:
    """How long a meter may stay silent before reconciliation marks it offline and alarms
    (``METERING_OFFLINE_AFTER_MINUTES``, 30 by default)."""
    return dt.timedelta(minutes=settings.METERING_OFFLINE_AFTER_MINUTES)


def _check_scope(actor: User | None, agency_id: int | None) -> None:
    if actor is not None and not can_act_for_agency(actor, agency_id):
        raise ValidationError({"agency": _("You cannot register records for this agency.")})


MAX_TOKEN_COUNT = 2**31 - 1  # what the token count column holds


def meter_register_check(
    *,
    agency_id: int | None,
    payment_mode: str,
    actor: User | None,
    token_secret: str = "",
    token_count: int | None = None,
) -> str:
    """What ``meter_register`` checks besides the meter's own fields, without writing: the
    actor may register for the agency; a prepaid meter comes with its vendor's OpenPAYGO
    secret (32 hexadecimal digits) and token count (at least 1), a postpaid meter with
    neither. Returns the secret, normalised; raises ValidationError by field."""
    _check_scope(actor, agency_id)
    token_secret = token_secret.strip()
    errors: dict[str, str] = {}
    if payment_mode == PaymentMode.PREPAID:
        if not TOKEN_SECRET_PATTERN.match(token_secret):
            errors["token_secret"] = _(
                "A prepaid meter needs its token secret: 32 hexadecimal digits."
            )
        if token_count is None:
            errors["token_count"] = _(
                "A prepaid meter needs the token count its vendor gives (1 for a new meter)."
            )
        elif not 1 <= token_count <= MAX_TOKEN_COUNT:
            errors["token_count"] = _("A token count is a whole number from 1 to %d.") % (
                MAX_TOKEN_COUNT
            )
    else:
        if token_secret:
            errors["token_secret"] = _("Only prepaid meters have a token secret.")
        if token_count is not None:
            errors["token_count"] = _("Only prepaid meters have a token count.")
    if errors:
        raise ValidationError(errors)
    return token_secret.lower()


@transaction.atomic
def meter_register(
    *, meter: Meter, actor: User | None, token_secret: str = "", token_count: int = 1
) -> Meter:
    """Add a meter to an agency's stock. A prepaid meter needs its vendor's token secret
    (16 bytes in hex), stored encrypted and never shown again, and the token count the
    vendor gives (1 for a new device); a postpaid meter's ``token_count`` is ignored.
    Raises ValidationError (by field) and changes nothing on bad input."""
    prepaid = meter.payment_mode == PaymentMode.PREPAID
    secret = meter_register_check(
        agency_id=meter.agency_id,
        payment_mode=meter.payment_mode,
        actor=actor,
        token_secret=token_secret,
        token_count=token_count if prepaid else None,
    )
    if prepaid:
        meter.token_secret = encrypt(secret)
        meter.token_count = token_count
    meter.full_clean()
    meter.save()
    return meter


def _locked_meter(meter_id: int, actor: User | None) -> Meter:
    queryset = Meter.objects.select_for_update()
    if actor is not None:
        queryset = visible_to(queryset, actor)
    meter = queryset.filter(pk=meter_id).first()
    if meter is None:
        raise ApplicationError(_("This meter does not exist."), status=404)
    return meter


@transaction.atomic
def meter_install(
    *,
    meter_id: int,
    site: Site,
    register_kwh: Decimal,
    actor: User | None,
    at: dt.datetime | None = None,
) -> MeterInstallation:
    """Install a meter from stock at a site, with the register read on the spot.

    The register becomes the meter's reference reading (a technician's reading). Refused
    if the meter is installed elsewhere (remove or replace it first) or the site is closed.
    """
    at = at or clock.now()
    meter = _locked_meter(meter_id, actor)
    _check_scope(actor, site.agency_id)
    if meter.site_id is not None:
        raise ValidationError(
            {
                "meter": _("This meter is installed at %(site)s: remove it first.")
                % {"site": meter.site}
            }
        )
    if not site.is_active:
        raise ValidationError({"site": _("This site is closed.")})
    register_kwh = _energy(register_kwh, "register_kwh")
    installation = MeterInstallation.objects.create(
        meter=meter,
        site=site,
        installed_at=at,
        installed_by=actor,
        installed_register_kwh=register_kwh,
    )
    Meter.objects.filter(pk=meter.pk).update(
        site=site,
        agency_id=site.agency_id,
        last_energy_kwh=register_kwh,
        last_reading_at=at,
        disagreements=0,
    )
    MeterReading.objects.get_or_create(
        meter=meter,
        taken_at=at,
        defaults={
            "energy_kwh": register_kwh,
            "source": MeterReading.Source.TECHNICIAN,
            "recorded_by": actor,
        },
    )
    return installation


@transaction.atomic
def meter_remove(
    *,
    meter_id: int,
    register_kwh: Decimal,
    reason: str,
    actor: User | None,
    at: dt.datetime | None = None,
) -> MeterInstallation:
    """Take a meter off its site, back to its agency's stock, with its last register."""
    at = at or clock.now()
    meter = _locked_meter(meter_id, actor)
    installation = meter.installations.filter(removed_at__isnull=True).first()
    if installation is None:
        raise ValidationError({"meter": _("This meter is not installed.")})
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the meter is removed.")})
    register_kwh = _energy(register_kwh, "register_kwh")
    if at < installation.installed_at:
        raise ValidationError({"at": _("A meter cannot be removed before it was installed.")})
    readings_record(
        meter_id=meter.pk,
        readings=[(at, register_kwh)],
        source=MeterReading.Source.TECHNICIAN,
        actor=actor,
    )
    installation.removed_at = at
    installation.removed_by = actor
    installation.removed_register_kwh = register_kwh
    installation.removal_reason = reason.strip()
    installation.save()
    Meter.objects.filter(pk=meter.pk).update(site=None)
    return installation


@transaction.atomic
def meter_replace(
    *,
    old_meter_id: int,
    new_meter_id: int,
    old_register_kwh: Decimal,
    new_register_kwh: Decimal,
    reason: str,
    actor: User | None,
    at: dt.datetime | None = None,
) -> MeterInstallation:
    """Swap a faulty meter for one from stock at the same site, in one transaction."""
    at = at or clock.now()
    old = meter_remove(
        meter_id=old_meter_id, register_kwh=old_register_kwh, reason=reason, actor=actor, at=at
    )
    return meter_install(
        meter_id=new_meter_id, site=old.site, register_kwh=new_register_kwh, actor=actor, at=at
    )


# --- Readings ------------------------------------------------------------------------------


# What a register column holds (EnergyField: 14 digits, 3 of them decimals).
MAX_REGISTER_KWH = Decimal("99999999999.999")
# A reading's clock may run a little ahead of ours.
READING_CLOCK_SLACK = dt.timedelta(minutes=5)


def _energy(value: object, field_name: str) -> Decimal:
    """A register in kWh to the watt-hour; ValidationError for anything else (text, NaN,
    infinity, a negative or an impossibly large number)."""
    try:
        energy = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as error:
        raise ValidationError(
            {field_name: _("Enter the register in kWh, e.g. 15234.125.")}
        ) from error
    if not energy.is_finite():  # NaN and infinities cannot even be compared
        raise ValidationError({field_name: _("Enter the register in kWh, e.g. 15234.125.")})
    if energy < 0:
        raise ValidationError({field_name: _("A register cannot be negative.")})
    if energy > MAX_REGISTER_KWH:
        raise ValidationError(
            {field_name: _("A register has at most 11 digits before the decimal point.")}
        )
    return energy.quantize(KWH)


@dataclass
class _Baseline:
    """The last trusted reading of a meter, moved forward as a batch is checked."""

    energy: Decimal | None
    at: dt.datetime | None
    capacity: Decimal


def _flag(baseline: _Baseline, at: dt.datetime, energy: Decimal) -> str:
    """What is suspicious about ``energy`` at ``at`` after the baseline ('' if nothing)."""
    if baseline.energy is None or baseline.at is None:
        return ""
    if at < baseline.at:
        # Older than the last trusted reading: it may not be higher than that one.
        return MeterReading.Flag.BACKWARDS if energy > baseline.energy else ""
    if energy < baseline.energy:
        near_end = baseline.energy > baseline.capacity * Decimal("0.9")
        near_start = energy < baseline.capacity * Decimal("0.1")
        return (
            MeterReading.Flag.ROLLOVER if near_end and near_start else MeterReading.Flag.BACKWARDS
        )
    hours = Decimal((at - baseline.at).total_seconds()) / 3600
    if hours > 0 and (energy - baseline.energy) / hours > MAX_PLAUSIBLE_KW:
        return MeterReading.Flag.SPIKE
    return ""


def _advance(baseline: _Baseline, at: dt.datetime, energy: Decimal, flag: str) -> None:
    """A reading becomes the new baseline unless it is suspicious (a rollover is not)."""
    if flag in ("", MeterReading.Flag.ROLLOVER) and (baseline.at is None or at > baseline.at):
        baseline.energy, baseline.at = energy, at


def _save_baselines(baselines: dict[int, _Baseline], before: dict[int, tuple]) -> None:
    changed = [
        (b.energy, b.at, meter_id)
        for meter_id, b in baselines.items()
        if (b.energy, b.at) != before[meter_id]
    ]
    if changed:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE metering_meter SET last_energy_kwh = %s, last_reading_at = %s "
                "WHERE id = %s",
                changed,
            )


@transaction.atomic
def readings_record(
    *,
    meter_id: int,
    readings: Sequence[tuple[dt.datetime, Decimal]],
    source: str,
    actor: User | None,
) -> list[MeterReading]:
    """Store readings entered by a person (technician, import), checked like telemetry.

    A reading already stored for that time is left as it was. Suspicious readings are
    stored flagged, for review, and never become the meter's reference.
    """
    meter = _locked_meter(meter_id, actor)
    baseline = _Baseline(meter.last_energy_kwh, meter.last_reading_at, meter.register_capacity_kwh)
    before = {meter.pk: (baseline.energy, baseline.at)}
    rows = []
    for at, raw_energy in sorted(readings):
        if at > clock.now() + READING_CLOCK_SLACK:
            raise ValidationError({"taken_at": _("A reading cannot be in the future.")})
        energy = _energy(raw_energy, "energy_kwh")
        flag = _flag(baseline, at, energy)
        _advance(baseline, at, energy, flag)
        rows.append(
            MeterReading(
                meter=meter,
                taken_at=at,
                energy_kwh=energy,
                source=source,
                flag=flag,
                recorded_by=actor,
            )
        )
    MeterReading.objects.bulk_create(rows, ignore_conflicts=True)
    _save_baselines({meter.pk: baseline}, before)
    return rows


@dataclass
class ReadingsImportReport:
    imported: int = 0
    flagged: int = 0
    errors: list[str] = field(default_factory=list)


READINGS_COLUMNS = ("serial", "taken_at", "energy_kwh")
TableRow = tuple[int, dict[str, object]]  # line number in the file, values by column


def readings_table_read(*, file: BinaryIO, filename: str) -> list[TableRow]:
    """The rows of a readings file: CSV in UTF-8 or Excel (.xlsx, first sheet).

    The first line names the columns (``serial``, ``taken_at``, ``energy_kwh``, in any
    order; others are ignored). Blank lines are skipped; line numbers are the file's own.
    """
    if filename.lower().endswith(".xlsx"):
        try:
            sheet = openpyxl.load_workbook(file, read_only=True, data_only=True).worksheets[0]
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, IndexError):
            raise ApplicationError(_("This Excel file cannot be read (.xlsx expected).")) from None
        lines: Iterable[Sequence[object]] = sheet.iter_rows(values_only=True)
    else:
        try:
            text = file.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApplicationError(
                _("Save the file as CSV in UTF-8, or as Excel (.xlsx).")
            ) from None
        lines = csv.reader(io.StringIO(text, newline=""))
    numbered = enumerate(lines, start=1)
    try:
        header = next(numbered, (1, ()))[1]
        columns = [str(name or "").strip().lower() for name in header]
        missing = set(READINGS_COLUMNS) - set(columns)
        if missing:
            raise ApplicationError(
                _("The file lacks the columns: %s.") % ", ".join(sorted(missing))
            )
        return [
            (line, dict(zip(columns, values, strict=False)))
            for line, values in numbered
            if any(value not in (None, "") for value in values)
        ]
    except csv.Error as error:  # a NUL byte, a field of more than 128 KiB
        raise ApplicationError(
            _("This CSV file cannot be read near line %(line)d: save it again as CSV.")
            % {"line": getattr(lines, "line_num", 0)}
        ) from error


def _moment(value: object, zone: str) -> dt.datetime | None:
    """A cell's date and time; without an offset it is the agency's local time. None if it
    is not one (including a well-formed impossible date such as 2026-02-30)."""
    try:
        at = value if isinstance(value, dt.datetime) else parse_datetime(str(value or "").strip())
    except ValueError:
        return None
    if at is None:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(zone))


def readings_import(
    *, rows: Sequence[TableRow], actor: User | None, only_valid_rows: bool = False
) -> ReadingsImportReport:
    """Store the readings of an imported file (see ``readings_table_read``).

    Every row is checked before anything is written: a known meter (that the actor may
    see), a date and time not in the future, a register in kWh below the meter's capacity,
    not twice the same meter and time. Times without an offset are the meter's agency's
    local time. All or nothing: any bad row raises ``ApplicationError`` listing every bad
    row with its line number, unless ``only_valid_rows``, which imports the good rows and
    reports the rest. One transaction.
    """
    serials = {str(values.get("serial") or "").strip() for _line, values in rows}
    # Only what can be a serial is looked up (PostgreSQL refuses a NUL in a query).
    meters = Meter.objects.filter(serial__in={s for s in serials if SERIAL_RE.fullmatch(s)})
    if actor is not None:
        meters = visible_to(meters, actor)
    known = {
        serial: (pk, zone, capacity)
        for serial, pk, zone, capacity in meters.values_list(
            "serial", "pk", "agency__province__time_zone", "register_capacity_kwh"
        )
    }
    latest = clock.now() + READING_CLOCK_SLACK
    per_meter: dict[int, list[tuple[dt.datetime, Decimal]]] = defaultdict(list)
    first_line: dict[tuple[int, dt.datetime], int] = {}
    errors = []
    for line, values in rows:
        serial = str(values.get("serial") or "").strip()
        problems = []
        meter_id, zone, capacity = known.get(serial, (None, "UTC", None))
        if meter_id is None:
            problems.append(_("unknown meter “%s”") % CONTROL_CHARACTERS.sub("?", serial[:64]))
        at = _moment(values.get("taken_at"), zone)
        if at is None:
            problems.append(
                _(
                    "taken_at must be a date and time, e.g. 2026-11-01 08:00 (the agency's "
                    "time) or 2026-11-01T08:00:00+01:00"
                )
            )
        elif at > latest:
            problems.append(_("taken_at is in the future"))
        energy = None
        try:
            energy = _energy(values.get("energy_kwh"), "energy_kwh")
        except ValidationError as error:
            problems.append(
                _("energy_kwh: %(problem)s") % {"problem": error.message_dict["energy_kwh"][0]}
            )
        if energy is not None and capacity is not None and energy >= capacity:
            problems.append(
                _("energy_kwh: the register of this meter stops at %(capacity)s kWh")
                % {"capacity": number_format(capacity.normalize())}
            )
        if meter_id is not None and at is not None and not problems:
            seen = first_line.setdefault((meter_id, at), line)
            if seen != line:
                problems.append(_("the same meter and time as line %d") % seen)
        if problems or meter_id is None or at is None or energy is None:
            errors.append(
                _("line %(line)d: %(problems)s") % {"line": line, "problems": "; ".join(problems)}
            )
            continue
        per_meter[meter_id].append((at, energy))
    if errors and not only_valid_rows:
        raise ApplicationError(
            _("Nothing imported: %d bad rows.") % len(errors), extra={"errors": errors}
        )
    report = ReadingsImportReport(errors=errors)
    with transaction.atomic():
        for meter_id, readings in per_meter.items():
            stored = readings_record(
                meter_id=meter_id, readings=readings, source=MeterReading.Source.IMPORT, actor=actor
            )
            report.imported += len(stored)
            report.flagged += sum(1 for reading in stored if reading.flag)
    return report


# --- What the head-end receives ------------------------------------------------------------

# What the head-end counts besides malformed messages (HeadendRejection.reason): messages
# that change nothing, or come late, and their serials for the log.
UNKNOWN_SERIAL = "unknown_serial"  # a message from a serial no meter has
UNKNOWN_COMMAND = "unknown_command"  # an ack for a command id we never gave that meter
DUPLICATE_READING = "duplicate_reading"  # a reading already stored (or twice in a batch)
LATE_READING = "late_reading"  # stored, but older than the meter's newest reading
DUPLICATE_ACK = "duplicate_ack"  # an ack for a command already settled
LATE_ACK = "late_ack"  # an ack for a command superseded or expired meanwhile
ANOMALIES = (
    UNKNOWN_SERIAL,
    UNKNOWN_COMMAND,
    DUPLICATE_READING,
    LATE_READING,
    DUPLICATE_ACK,
    LATE_ACK,
)


@dataclass
class Anomalies:
    """What a batch held that changed nothing or came out of order, per reason (readings
    for telemetry, messages otherwise), with the serials it came from: the head-end adds
    the counts to its counters and logs the serials."""

    counts: Counter[str] = field(default_factory=Counter)
    serials: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, reason: str, serial: str, amount: int = 1) -> None:
        if amount:
            self.counts[reason] += amount
            self.serials[reason].add(serial)


@dataclass
class IngestReport:
    readings: int = 0  # stored
    flagged: int = 0  # stored and flagged for review
    anomalies: Anomalies = field(default_factory=Anomalies)

    @property
    def unknown_serials(self) -> set[str]:
        return set(self.anomalies.serials.get(UNKNOWN_SERIAL, ()))


def _meters_by_serial(serials: Iterable[str]) -> dict[str, Meter]:
    # Locked in id order, always first: every service that also touches commands locks
    # the meters before them (meters by id, then commands by id), so head-end workers and
    # a dunning run wait for each other, never deadlock.
    return {
        meter.serial: meter
        for meter in Meter.objects.select_for_update()
        .filter(serial__in=set(serials))
        .order_by("pk")
    }


def _alarms_open(details: Mapping[int, str], kind: str, at: dt.datetime) -> None:
    """Open an alarm of ``kind`` on each meter of ``details`` (meter id -> what happened),
    or count one more occurrence of the one already open: at most three queries for any
    number of meters. The caller holds the meters' locks; an alarm another transaction
    opened meanwhile is kept (the insert skips it)."""
    if not details:
        return
    open_alarms = MeterAlarm.objects.filter(kind=kind, closed_at__isnull=True)
    already = set(open_alarms.filter(among("meter_id", details)).values_list("meter_id", flat=True))
    if already:
        open_alarms.filter(among("meter_id", already)).update(
            last_seen_at=at, occurrences=F("occurrences") + 1
        )
    MeterAlarm.objects.bulk_create(
        [
            MeterAlarm(
                meter_id=meter_id, kind=kind, opened_at=at, last_seen_at=at, details=text[:300]
            )
            for meter_id, text in details.items()
            if meter_id not in already
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )


def _alarms_close(meter_ids: Collection[int], kind: str, at: dt.datetime) -> None:
    if meter_ids:
        MeterAlarm.objects.filter(
            among("meter_id", meter_ids), kind=kind, closed_at__isnull=True
        ).update(closed_at=at)


_READING_COLUMNS = ("meter_id", "taken_at", "energy_kwh", "source", "flag", "reviewed")
_READINGS_PER_INSERT = 2000  # x 7 values: within SQLite's and PostgreSQL's parameter limits


def _reading_field(name: str) -> Field:
    return cast(Field, MeterReading._meta.get_field(name))


def _readings_insert(rows: Sequence[MeterReading]) -> set[tuple[int, dt.datetime]]:
    """Insert readings, skipping those already stored (one per meter and time); returns
    the ``(meter id, taken_at)`` of the rows written. One statement (per 2 000 rows on
    SQLite); the database says which rows it wrote (``RETURNING``), so duplicates cost no
    extra query."""
    if not rows:
        return set()
    fields = [_reading_field(name) for name in _READING_COLUMNS]
    received_at = _reading_field("received_at")
    quote = connection.ops.quote_name
    table = quote(MeterReading._meta.db_table)
    columns = ", ".join(quote(str(f.column)) for f in (*fields, received_at))
    now = received_at.get_db_prep_save(clock.now(), connection)
    returning = f"RETURNING {quote('meter_id')}, {quote('taken_at')}"
    if connection.vendor == "postgresql":
        # One array per column: the statement stays short whatever the batch (a VALUES
        # list of thousands of placeholders costs the driver more to build than to run).
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT *, %s FROM unnest({arrays}) "  # noqa: S608
                f"ON CONFLICT DO NOTHING {returning}",
                [now, *([getattr(row, f.attname) for row in rows] for f in fields)],
            )
            return set(cursor.fetchall())
    row_marks = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    inserted: set[tuple[int, dt.datetime]] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _READINGS_PER_INSERT):
            chunk = rows[start : start + _READINGS_PER_INSERT]
            values: list[Any] = []
            for row in chunk:
                values.extend(
                    f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields
                )
                values.append(now)
            cursor.execute(
                # Table and column names come from the model, never from input.
                f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608
                f"{', '.join([row_marks] * len(chunk))} ON CONFLICT DO NOTHING {returning}",
                values,
            )
            # SQLite gives the stored UTC time back without its offset.
            inserted.update(
                (meter_id, at if at.tzinfo else at.replace(tzinfo=dt.UTC))
                for meter_id, at in cursor.fetchall()
            )
    return inserted


@transaction.atomic
def telemetry_ingest(*, messages: Sequence[Telemetry]) -> IngestReport:
    """Store a batch of telemetry: readings (once each), relay, credit, presence, tamper.

    A fixed number of queries for any number of meters. Readings already stored, or
    repeated in the batch, change nothing and are reported as duplicates; readings older
    than the meter's newest one (a late message) are stored, checked against the one
    before, and reported as late.
    """
    now = clock.now()
    report = IngestReport()
    anomalies = report.anomalies
    meters = _meters_by_serial(m.serial for m in messages)
    readings_by_meter: dict[int, dict[dt.datetime, Reading]] = defaultdict(dict)
    for message in messages:
        meter = meters.get(message.serial)
        if meter is None:
            anomalies.add(UNKNOWN_SERIAL, message.serial)
            continue
        batch = readings_by_meter[meter.pk]
        for reading in message.readings:
            if reading.at in batch:
                anomalies.add(DUPLICATE_READING, message.serial)
            batch[reading.at] = reading  # a repeat replaces itself
    rows: list[MeterReading] = []
    meter_updates, tampered = [], []
    for meter in meters.values():
        readings = readings_by_meter.get(meter.pk)
        if not readings:
            continue
        baseline = _Baseline(
            meter.last_energy_kwh, meter.last_reading_at, meter.register_capacity_kwh
        )
        for at in sorted(readings):
            if at == meter.last_reading_at:
                anomalies.add(DUPLICATE_READING, meter.serial)  # the meter's reference
                continue
            reading = readings[at]
            flag = _flag(baseline, at, reading.energy_kwh)
            _advance(baseline, at, reading.energy_kwh, flag)
            rows.append(
                MeterReading(
                    meter_id=meter.pk,
                    taken_at=at,
                    energy_kwh=reading.energy_kwh,
                    source=MeterReading.Source.TELEMETRY,
                    flag=flag,
                    reviewed=False,
                )
            )
        latest = readings[max(readings)]
        if any(r.tamper for r in readings.values()):
            tampered.append(meter.pk)
        newer = meter.relay_reported_at is None or latest.at >= meter.relay_reported_at
        meter_updates.append(
            (
                baseline.energy,
                baseline.at,
                latest.relay if newer else meter.relay_reported,
                latest.at if newer else meter.relay_reported_at,
                latest.credit_kwh if latest.credit_kwh is not None else meter.credit_kwh,
                now,
                meter.pk,
            )
        )
    inserted = _readings_insert(rows)
    serials = {meter.pk: meter.serial for meter in meters.values()}
    last_at = {meter.pk: meter.last_reading_at for meter in meters.values()}
    for row in rows:
        serial = serials[row.meter_id]
        if (row.meter_id, row.taken_at) not in inserted:
            anomalies.add(DUPLICATE_READING, serial)
            continue
        report.readings += 1
        report.flagged += bool(row.flag)
        newest = last_at[row.meter_id]
        if newest is not None and row.taken_at < newest:
            anomalies.add(LATE_READING, serial)
    if meter_updates:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE metering_meter SET last_energy_kwh = %s, last_reading_at = %s, "
                "relay_reported = %s, relay_reported_at = %s, credit_kwh = %s, "
                "online = TRUE, last_seen_at = %s WHERE id = %s",
                meter_updates,
            )
    _alarms_open(
        dict.fromkeys(tampered, _("The meter reported tampering.")), MeterAlarm.Kind.TAMPER, now
    )
    return report


@dataclass
class AckReport:
    acknowledged: int = 0  # commands done
    failed: int = 0  # commands the meter refused (or received too late)
    anomalies: Anomalies = field(default_factory=Anomalies)


@transaction.atomic
def acks_apply(*, acks: Sequence[Ack]) -> AckReport:
    """Settle the commands the meters acknowledged; a repeated ack changes nothing.

    A fixed number of queries for any number of acks. Locks the meters (id order), then
    the commands (id order), as ``meters_relay_request`` does. Every ack of a known command
    tells the meter's relay at its time (a later report is never overwritten).
    """
    now = clock.now()
    report = AckReport()
    anomalies = report.anomalies
    meters = _meters_by_serial(ack.serial for ack in acks)
    serial_of = {meter.pk: serial for serial, meter in meters.items()}
    commands = {
        command.uuid: command
        for command in MeterCommand.objects.select_for_update()
        .filter(
            among("meter_id", serial_of),
            uuid__in={ack.command_id for ack in acks if ack.serial in meters},
        )
        .order_by("pk")
    }
    reported: dict[int, tuple[str, dt.datetime, Decimal | None]] = {}
    acknowledged: dict[str, list[int]] = defaultdict(list)  # relay after -> command ids
    refused: list[tuple[str, str, dt.datetime, str, int]] = []
    failed_alarms: dict[int, str] = {}
    for ack in acks:
        if ack.serial not in meters:
            anomalies.add(UNKNOWN_SERIAL, ack.serial)
            continue
        command = commands.get(ack.command_id)
        if command is None or serial_of[command.meter_id] != ack.serial:
            anomalies.add(UNKNOWN_COMMAND, ack.serial)
            continue
        previous = reported.get(command.meter_id)
        if previous is None or ack.at >= previous[1]:
            reported[command.meter_id] = (ack.relay, ack.at, ack.credit_kwh)
        if command.status not in MeterCommand.IN_FLIGHT:
            settled = command.status in (
                MeterCommand.Status.ACKNOWLEDGED,
                MeterCommand.Status.FAILED,
            )
            anomalies.add(DUPLICATE_ACK if settled else LATE_ACK, ack.serial)
            continue
        if ack.status == "ok":
            command.status = MeterCommand.Status.ACKNOWLEDGED  # a repeat in this batch
            acknowledged[ack.relay].append(command.pk)
            report.acknowledged += 1
            continue
        expired = ack.error == "expired"
        command.status = MeterCommand.Status.EXPIRED if expired else MeterCommand.Status.FAILED
        refused.append((command.status, (ack.error or "")[:200], now, ack.relay, command.pk))
        report.failed += 1
        if command.action in MeterCommand.RELAY_ACTIONS and not expired:
            failed_alarms[command.meter_id] = ack.error or ""
    for relay, ids in acknowledged.items():
        MeterCommand.objects.filter(among("pk", ids)).update(
            status=MeterCommand.Status.ACKNOWLEDGED,
            acknowledged_at=now,
            closed_at=now,
            relay_after=relay,
        )
    if refused:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE metering_metercommand SET status = %s, error = %s, "
                "acknowledged_at = %s, closed_at = acknowledged_at, relay_after = %s "
                "WHERE id = %s",
                refused,
            )
    _alarms_open(failed_alarms, MeterAlarm.Kind.COMMAND_FAILED, now)
    if reported:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE metering_meter SET relay_reported = %s, relay_reported_at = %s, "
                "credit_kwh = COALESCE(%s, credit_kwh), last_seen_at = %s, online = TRUE "
                "WHERE id = %s AND (relay_reported_at IS NULL OR relay_reported_at <= %s)",
                [
                    (relay, at, credit, now, meter_id, at)
                    for meter_id, (relay, at, credit) in reported.items()
                ],
            )
    return report


@dataclass
class StatusReport:
    came_back: int = 0  # meters back online: their pending commands go out at once
    went_away: int = 0  # meters gone offline: alarmed
    anomalies: Anomalies = field(default_factory=Anomalies)


@transaction.atomic
def statuses_apply(
    *, statuses: Sequence[Status], replayed: Sequence[Status] = (), now: dt.datetime | None = None
) -> StatusReport:
    """Presence: a meter back online gets its pending commands at once; one gone is alarmed.

    ``statuses`` are live messages, in arrival order: a meter's (re)connection, a relay
    change, its last will. ``replayed`` are retained statuses the broker replays when the
    head-end (re)subscribes: the meter's last word, maybe hours old. A replay is no sign
    of life (``last_seen_at`` stays), never re-sends commands and never counts an alarm
    again; it only tells that a meter we took for online has gone (its last will), and
    the firmware, or the relay of a meter that never reported one. A fixed number of
    queries for any number of meters. ``now``: when they arrived (the clock by default).
    """
    now = now or clock.now()
    report = StatusReport()
    meters = _meters_by_serial([s.serial for s in statuses] + [s.serial for s in replayed])
    live: dict[str, list[Status]] = defaultdict(list)
    for status in statuses:
        live[status.serial].append(status)
    last_replay = {status.serial: status for status in replayed}
    for serial in set(live) | set(last_replay):
        if serial not in meters:
            messages = len(live.get(serial, ())) + (serial in last_replay)
            report.anomalies.add(UNKNOWN_SERIAL, serial, messages)
    rows = []
    came_back: set[int] = set()
    went_away: dict[int, str] = {}
    for serial, meter in meters.items():
        online, relay, relay_at, seen_at, fw = meter.online, None, None, None, ""
        changes = live.get(serial)
        if changes:
            for status in changes:
                if status.online and not online:
                    came_back.add(meter.pk)
                    went_away.pop(meter.pk, None)
                elif online and not status.online:
                    went_away[meter.pk] = _("The meter went offline.")
                online = status.online
                if status.online:
                    seen_at = now
                if status.relay:
                    relay, relay_at = status.relay, now
                fw = status.fw or fw
            if not online:
                came_back.discard(meter.pk)
        else:
            replay = last_replay[serial]
            if online and not replay.online:
                online = False
                went_away[meter.pk] = _("The meter went offline (its last will).")
            if replay.relay and not meter.relay_reported:
                relay, relay_at = replay.relay, now
            fw = replay.fw or ""
        rows.append((online, seen_at, relay, relay_at, fw[:40], meter.pk))
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE metering_meter SET online = %s, "
                "last_seen_at = COALESCE(%s, last_seen_at), "
                "relay_reported = COALESCE(%s, relay_reported), "
                "relay_reported_at = COALESCE(%s, relay_reported_at), "
                "firmware = COALESCE(NULLIF(%s, ''), firmware) WHERE id = %s",
                rows,
            )
    if came_back:
        MeterCommand.objects.filter(
            among("meter_id", came_back), status__in=MeterCommand.IN_FLIGHT
        ).update(next_attempt_at=now)
    _alarms_close([row[5] for row in rows if row[0]], MeterAlarm.Kind.OFFLINE, now)
    _alarms_open(went_away, MeterAlarm.Kind.OFFLINE, now)
    report.came_back, report.went_away = len(came_back), len(went_away)
    return report


@transaction.atomic
def rejections_count(
    *, reasons: Counter[str], last_topics: Mapping[str, str] | None = None
) -> None:
    """Add the head-end's refused (and ignored) messages to today's counters, per reason,
    with the topic of the last one. Several head-ends may count at once: the day's row is
    made if missing (a concurrent insert is skipped), then incremented."""
    today = clock.today()
    last_topics = last_topics or {}
    HeadendRejection.objects.bulk_create(
        [HeadendRejection(day=today, reason=reason, count=0) for reason in reasons],
        ignore_conflicts=True,
    )
    for reason, count in sorted(reasons.items()):
        HeadendRejection.objects.filter(day=today, reason=reason).update(
            count=F("count") + count, last_topic=last_topics.get(reason, "")[:200]
        )


# --- Commands ------------------------------------------------------------------------------


def _unsaved_command(
    meter: Meter,
    action: str,
    *,
    source: str,
    reason: str,
    actor: User | None,
    token: str = "",
    supersedes: int | None = None,
    deadline: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> MeterCommand:
    # Issued when decided, or now for a decision taken ahead (a pass run for a later day).
    now = min(at, clock.now()) if at else clock.now()
    return MeterCommand(
        meter=meter,
        action=action,
        token=token,
        source=source,
        reason=reason[:200],
        requested_by=actor,
        issued_at=now,
        expires_at=deadline or now + COMMAND_LIFETIME,
        next_attempt_at=now,
        supersedes_id=supersedes,
    )


def _new_command(
    meter: Meter, action: str, *, source: str, reason: str, actor: User | None, token: str = ""
) -> MeterCommand:
    command = _unsaved_command(
        meter, action, source=source, reason=reason, actor=actor, token=token
    )
    command.save()
    return command


def meter_relay_request(
    *,
    meter_id: int,
    wanted: str,
    why: str,
    source: str,
    reason: str = "",
    actor: User | None = None,
    deadline: dt.datetime | None = None,
) -> MeterCommand | None:
    """Decide the relay state a meter should have; a command goes out if needed.

    Idempotent: asking again for the state already requested returns the command under
    way (or ``None`` when the meter already reports that state). A new decision supersedes
    a command still on its way for the opposite state, or one whose time ran out. Staff
    need ``switch_meter`` and a reason; every decision is kept with who, why and when on
    the command. ``deadline``: see ``meters_relay_request``.
    """
    decided = meters_relay_request(
        meter_ids=[meter_id],
        wanted=wanted,
        why=why,
        source=source,
        reason=reason,
        actor=actor,
        deadline=deadline,
    )
    return decided[meter_id]


@transaction.atomic
def meters_relay_request(
    *,
    meter_ids: Sequence[int],
    wanted: str,
    why: str,
    source: str,
    reason: str = "",
    actor: User | None = None,
    deadline: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> dict[int, MeterCommand | None]:
    """``meter_relay_request`` for many meters at once (a dunning run), in a fixed number of
    queries: meter id -> the command under way for it, or None. All or nothing.

    ``deadline``: a switch-off that may not happen after that moment (dunning's allowed
    window of the day). Its command expires then, so neither the dispatcher nor a meter
    coming back applies it later, and reconciliation issues none after it: the meter
    stays wanted off until a new decision gives it a new deadline. Switching on never
    waits (no deadline).

    ``at``: the moment the decision is taken (a dunning pass's own, which may be another
    day's; now by default): a command in flight that has expired by then is superseded,
    and a new one is issued then (or now, if that moment is still to come).
    """
    if deadline is not None and wanted != Relay.OFF:
        raise ValueError("Only a switch-off waits for a window; switching on never does.")
    if actor is not None:
        if not actor.has_perm("metering.switch_meter"):
            raise PermissionDenied
        if not reason.strip():
            raise ValidationError({"reason": _("Give the reason for switching this meter.")})
    wanted_ids = set(meter_ids)
    queryset = Meter.objects.select_for_update().filter(among("pk", wanted_ids)).order_by("pk")
    if actor is not None:
        queryset = visible_to(queryset, actor)
    meters = list(queryset.only("pk", "serial", "site_id", "relay_reported"))
    if len(meters) != len(wanted_ids):
        raise ApplicationError(_("This meter does not exist."), status=404)
    not_installed = [meter.serial for meter in meters if meter.site_id is None]
    if not_installed:
        raise ValidationError(
            {"meter": _("Not installed: %(serials)s.") % {"serials": ", ".join(not_installed)}}
        )
    now = clock.now()
    Meter.objects.filter(among("pk", wanted_ids)).update(
        relay_wanted=wanted, relay_wanted_reason=why, relay_wanted_at=now, relay_deadline=deadline
    )
    action = MeterCommand.Action.CONNECT if wanted == Relay.ON else MeterCommand.Action.DISCONNECT
    in_flight = {
        command.meter_id: command
        for command in MeterCommand.objects.filter(
            among("meter_id", wanted_ids),
            status__in=MeterCommand.IN_FLIGHT,
            action__in=MeterCommand.RELAY_ACTIONS,
        )
    }
    decided: dict[int, MeterCommand | None] = {}
    superseded: dict[int, int] = {}  # meter id -> its command now superseded
    new = []
    for meter in meters:
        command = in_flight.get(meter.pk)
        if command is not None and command.action == action and command.expires_at > (at or now):
            decided[meter.pk] = command
            continue
        if command is not None:
            superseded[meter.pk] = command.pk
        elif meter.relay_reported == wanted:
            decided[meter.pk] = None
            continue
        new.append(
            _unsaved_command(
                meter,
                action,
                source=source,
                reason=reason,
                actor=actor,
                supersedes=superseded.get(meter.pk),
                deadline=deadline,
                at=at,
            )
        )
    if superseded:
        # Closed before the new ones exist: one relay command in flight per meter.
        MeterCommand.objects.filter(among("pk", superseded.values())).update(
            status=MeterCommand.Status.SUPERSEDED, closed_at=now
        )
    if actor is not None:
        for command in new:  # a person's decisions, one by one: the audit log records each
            command.save()
    else:
        _commands_insert(new)  # a dunning run: thousands in one stream
    for command in new:
        decided[command.meter_id] = command
    return decided


_COMMAND_COLUMNS = [
    field.attname for field in MeterCommand._meta.concrete_fields if not field.primary_key
]


def _commands_insert(commands: list[MeterCommand]) -> None:
    """Write new commands in one stream (``rows_insert``: a disconnection run writes
    thousands), then give them their ids, read back by their command ids."""
    if not commands:
        return
    rows_insert(
        MeterCommand,
        _COMMAND_COLUMNS,
        ([getattr(command, name) for name in _COMMAND_COLUMNS] for command in commands),
    )
    ids = dict(
        MeterCommand.objects.filter(uuid__in=[command.uuid for command in commands]).values_list(
            "uuid", "pk"
        )
    )
    for command in commands:
        command.pk = ids[command.uuid]
        command._state.adding = False


@transaction.atomic
def commands_dispatch(
    *, publish: Callable[[str, bytes], object], limit: int = 1000, now: dt.datetime | None = None
) -> int:
    """Send the commands that are due at ``now`` (new, or unacknowledged and due for a retry).

    Expired commands are closed instead, and never sent: a switch-off for dunning expires
    at the end of its allowed window, so a meter back after it is not cut then.
    ``publish(serial, payload)`` hands a message to the broker; a command is re-sent with
    the same id, so a meter applies it once, after ``RETRY_DELAYS`` one after the other
    (the last one repeated) until it expires. Safe with several dispatchers: rows being
    sent (or settled) by another are skipped (SKIP LOCKED), so a dispatcher never waits on
    a lock. At most four queries, ``limit`` commands sent and ``limit`` closed per call.
    """
    now = now or clock.now()
    expired = list(
        MeterCommand.objects.select_for_update(skip_locked=True)
        .filter(status__in=MeterCommand.IN_FLIGHT, expires_at__lte=now)
        .values_list("pk", flat=True)[:limit]
    )
    if expired:
        MeterCommand.objects.filter(among("pk", expired)).update(
            status=MeterCommand.Status.EXPIRED, error="not acknowledged in time", closed_at=now
        )
    due = list(
        MeterCommand.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("meter")
        .filter(status__in=MeterCommand.IN_FLIGHT, next_attempt_at__lte=now, expires_at__gt=now)
        .order_by("next_attempt_at")[:limit]
    )
    for command in due:
        publish(
            command.meter.serial,
            command_payload(
                command_id=command.uuid,
                action=command.action,
                issued_at=command.issued_at,
                expires_at=command.expires_at,
                token=command.token or None,
            ),
        )
    if due:
        # One UPDATE: the next delay follows the attempts made so far (the row's own
        # value, read by the CASE before the row changes).
        MeterCommand.objects.filter(among("pk", [command.pk for command in due])).update(
            attempts=F("attempts") + 1,
            first_sent_at=Coalesce("first_sent_at", Value(now)),
            last_sent_at=now,
            next_attempt_at=Case(
                *(
                    When(attempts=made, then=Value(now + delay))
                    for made, delay in enumerate(RETRY_DELAYS[:-1])
                ),
                default=Value(now + RETRY_DELAYS[-1]),
            ),
            status=MeterCommand.Status.SENT,
        )
    return len(due)


@dataclass
class ReconcileReport:
    commands: int = 0
    alarms: int = 0
    offline: int = 0


@transaction.atomic
def meters_reconcile(*, now: dt.datetime | None = None) -> ReconcileReport:
    """Close the gap wherever a meter's reported relay differs from the wanted one.

    A command goes out where none is under way; a meter still disagreeing after
    ``DISAGREEMENTS_BEFORE_ALARM`` rounds raises an alarm. A prepaid meter without credit
    is off by its own rule and is left alone, and so is a meter wanted off past its
    deadline (dunning's window of the day is over: the next allowed day's decision sends
    the command; inside the window, the command expires at its end). Meters silent for
    ``offline_after()`` are marked offline and alarmed. Running twice in a row issues
    nothing twice. Every meter it changes is locked first, in id order, in one query; a
    fixed number of queries in all, however many meters.
    """
    now = now or clock.now()
    report = ReconcileReport()
    in_flight = MeterCommand.objects.filter(
        status__in=MeterCommand.IN_FLIGHT, action__in=MeterCommand.RELAY_ACTIONS
    ).values("meter_id")
    disagrees = (
        Q(site__isnull=False)
        & ~Q(relay_reported="")
        & ~Q(relay_reported=F("relay_wanted"))
        & ~Q(pk__in=in_flight)
        & ~Q(
            payment_mode=PaymentMode.PREPAID,
            relay_wanted=Relay.ON,
            relay_reported=Relay.OFF,
            credit_kwh__lte=0,
        )
        & (Q(relay_deadline__isnull=True) | Q(relay_deadline__gt=now))
    )
    agrees_again = Q(relay_reported=F("relay_wanted"), disagreements__gt=0)
    silent = Q(online=True, last_seen_at__lt=now - offline_after())
    meters = list(
        Meter.objects.select_for_update()
        .filter(disagrees | agrees_again | silent)
        .annotate(
            disagrees=ExpressionWrapper(disagrees, output_field=BooleanField()),
            silent=ExpressionWrapper(silent, output_field=BooleanField()),
        )
        .order_by("pk")
        .only(
            "pk",
            "serial",
            "relay_wanted",
            "relay_reported",
            "relay_deadline",
            "disagreements",
        )
    )
    commands, disagreeing, alarms = [], [], {}
    for meter in meters:
        if not meter.disagrees:
            continue
        action = (
            MeterCommand.Action.CONNECT
            if meter.relay_wanted == Relay.ON
            else MeterCommand.Action.DISCONNECT
        )
        commands.append(
            _unsaved_command(
                meter,
                action,
                source=MeterCommand.Source.RECONCILIATION,
                reason=_("The meter reported %(reported)s, %(wanted)s is wanted.")
                % {"reported": meter.relay_reported, "wanted": meter.relay_wanted},
                actor=None,
                deadline=meter.relay_deadline,
            )
        )
        disagreeing.append(meter.pk)
        if meter.disagreements + 1 >= DISAGREEMENTS_BEFORE_ALARM:
            alarms[meter.pk] = _(
                "Relay %(reported)s while %(wanted)s is wanted, %(times)d times in a row."
            ) % {
                "reported": meter.relay_reported,
                "wanted": meter.relay_wanted,
                "times": meter.disagreements + 1,
            }
    _commands_insert(commands)
    if disagreeing:
        Meter.objects.filter(among("pk", disagreeing)).update(disagreements=F("disagreements") + 1)
    _alarms_open(alarms, MeterAlarm.Kind.DISAGREEMENT, now)
    agreeing = [m.pk for m in meters if m.relay_reported == m.relay_wanted and m.disagreements > 0]
    if agreeing:
        _alarms_close(agreeing, MeterAlarm.Kind.DISAGREEMENT, now)
        Meter.objects.filter(among("pk", agreeing)).update(disagreements=0)
    gone = [meter.pk for meter in meters if meter.silent]
    if gone:
        Meter.objects.filter(among("pk", gone)).update(online=False)
        minutes = int(offline_after().total_seconds() // 60)
        _alarms_open(
            dict.fromkeys(gone, _("No message for %(minutes)d minutes.") % {"minutes": minutes}),
            MeterAlarm.Kind.OFFLINE,
            now,
        )
    report.commands, report.alarms, report.offline = len(commands), len(alarms), len(gone)
    return report


# --- Prepaid tokens ------------------------------------------------------------------------


def _token_generate(
    meter: Meter,
    *,
    energy_kwh: int,
    actor: User | None,
    reason: str,
    send: bool,
    sale: tuple[Decimal, Tariff] | None = None,
) -> PrepaidToken:
    """The next OpenPAYGO token of a locked prepaid meter; ``sale``: what it was sold for
    (VAT included, in the tariff's currency) and the tariff that priced it."""
    if meter.payment_mode != PaymentMode.PREPAID or not meter.token_secret:
        raise ValidationError({"meter": _("This meter is not a prepaid meter.")})
    new_count, digits = openpaygo.generate_token(
        secret_key=decrypt(meter.token_secret),
        count=meter.token_count,
        value=energy_kwh,
        token_type=openpaygo.TokenType.ADD_TIME,
    )
    Meter.objects.filter(pk=meter.pk).update(token_count=new_count)
    command = None
    if send and meter.site_id is not None:
        command = _new_command(
            meter,
            MeterCommand.Action.TOKEN,
            source=MeterCommand.Source.TOKEN,
            reason=reason,
            actor=actor,
            token=str(digits),
        )
    amount, tariff = sale if sale else (None, None)
    return PrepaidToken.objects.create(
        meter=meter,
        count=new_count,
        energy_kwh=energy_kwh,
        token=str(digits),
        reason=reason[:200],
        created_by=actor,
        command=command,
        amount=amount,
        currency=tariff.currency if tariff else "",
        tariff=tariff,
    )


def _token_grouped(token: str) -> str:
    """``123 456 789``: the digits in threes, as the client types them."""
    return " ".join(token[i : i + 3] for i in range(0, len(token), 3))


def _token_notify(token: PrepaidToken, site: Site, *, amount: Decimal, currency: str) -> None:
    """Send the site's client their token (SMS always; email too if they read email).

    Queued in the caller's transaction, delivered after commit. A message that cannot be
    made (a template broken in the admin) is logged and does not undo the sale: the token
    also goes to the meter over MQTT, and the person at the counter reads it out.
    """
    try:
        notification_send(
            client=site.client,
            event="prepaid_token",
            context={
                "meter_serial": token.meter.serial,
                "token": _token_grouped(token.token),
                "energy_kwh": token.energy_kwh,
                "amount": amount,
                "currency": currency,
            },
            related=token,
            idempotency_key=f"prepaid_token:{token.pk}",
        )
    except ApplicationError:
        logger.exception("prepaid token %s: the client's message could not be made", token.pk)


def _installed_site(meter: Meter) -> Site | None:
    if meter.site_id is None:
        return None
    return Site.objects.select_related("client__agency__province", "agency__province").get(
        pk=meter.site_id
    )


@transaction.atomic
def prepaid_token_issue(
    *,
    meter_id: int,
    energy_kwh: int,
    actor: User | None,
    reason: str = "",
    send: bool = True,
) -> PrepaidToken:
    """Generate the next OpenPAYGO token adding ``energy_kwh`` to a prepaid meter.

    The meter's token count moves forward in the same transaction, so two sales never get
    the same token. With ``send``, the token also goes to the meter over MQTT (the client
    can still type it). The client of the site where the meter is installed receives the
    token by SMS; such a credit is not a sale (``prepaid_token_for_amount`` is), so the
    message says it cost 0,00 in the currency of the site's tariff (CDF without one).
    Staff need ``issue_token``.
    """
    if actor is not None and not actor.has_perm("metering.issue_token"):
        raise PermissionDenied
    if not 1 <= energy_kwh <= MAX_TOKEN_KWH:
        raise ValidationError({"energy_kwh": _("A token carries 1 to %d kWh.") % MAX_TOKEN_KWH})
    meter = _locked_meter(meter_id, actor)
    token = _token_generate(meter, energy_kwh=energy_kwh, actor=actor, reason=reason, send=send)
    site = _installed_site(meter)
    if site is not None:
        try:
            currency = tariff_in_force(
                category=site.category, on=clock.today(site.agency.time_zone)
            ).currency
        except ApplicationError:
            currency = Currency.CDF.value
        _token_notify(token, site, amount=Decimal("0.00"), currency=currency)
    return token


@dataclass(frozen=True)
class TokenSale:
    token: PrepaidToken
    charged: Decimal  # in the tariff's currency, VAT included
    change: Decimal  # what the amount paid leaves over, in the tariff's currency
    currency: str


@transaction.atomic
def prepaid_token_for_amount(
    *, meter_id: int, amount: Decimal, currency: str, actor: User | None
) -> TokenSale:
    """Sell a prepaid meter the whole kWh that ``amount`` buys at its site's tariff.

    The tariff in force today for the site's category prices the kWh by blocks of what the
    meter has bought this month (in the agency's time zone), VAT on top; an amount in the
    other currency is converted at the week's BCC rate. The token carries whole kWh; what
    they do not use up is returned as ``change``. The fixed monthly charge is for postpaid
    invoices only. The site's client receives the token by SMS with what it cost
    (``charged``, in the tariff's currency). Staff need ``issue_token``.
    """
    if not amount.is_finite() or amount <= 0:
        raise ValidationError({"amount": _("Enter an amount above zero.")})
    meter = _locked_meter(meter_id, actor)
    site = _installed_site(meter)
    if site is None:
        raise ValidationError({"meter": _("This meter is not installed.")})
    zone = ZoneInfo(site.agency.time_zone)
    today = clock.now().astimezone(zone).date()
    tariff = tariff_in_force(category=site.category, on=today)
    paid = amount_in(amount=amount, currency=currency, target=tariff.currency, on=today)
    month_start = dt.datetime(today.year, today.month, 1, tzinfo=zone)
    bought = meter.tokens.filter(created_at__gte=month_start).aggregate(kwh=Sum("energy_kwh"))
    already = Decimal(bought["kwh"] or 0)
    bands = tariff_bands(tariff)
    vat = 1 + tariff.vat_rate
    kwh = int(energy_for_amount(bands, already_kwh=already, amount=paid / vat))
    if kwh < 1:
        one = round_money(energy_cost(bands, already_kwh=already, kwh=Decimal(1)) * vat)
        raise ValidationError(
            {
                "amount": _("This amount does not buy 1 kWh: 1 kWh costs %(price)s %(currency)s.")
                % {"price": number_format(one, decimal_pos=2), "currency": tariff.currency}
            }
        )
    if kwh > MAX_TOKEN_KWH:
        raise ValidationError(
            {"amount": _("One token carries at most %d kWh: sell several.") % MAX_TOKEN_KWH}
        )
    if actor is not None and not actor.has_perm("metering.issue_token"):
        raise PermissionDenied
    charged = round_money(energy_cost(bands, already_kwh=already, kwh=Decimal(kwh)) * vat)
    token = _token_generate(
        meter,
        energy_kwh=kwh,
        actor=actor,
        reason=_("Sale of %(amount)s %(currency)s") % {"amount": amount, "currency": currency},
        send=True,
        sale=(charged, tariff),
    )
    _token_notify(token, site, amount=charged, currency=tariff.currency)
    change = round_money(paid) - charged
    return TokenSale(token=token, charged=charged, change=change, currency=tariff.currency)


@transaction.atomic
def meter_read_request(*, meter_id: int, actor: User | None) -> MeterCommand:
    """Ask an installed meter for a reading now (it answers with telemetry)."""
    meter = _locked_meter(meter_id, actor)
    if meter.site_id is None:
        raise ValidationError({"meter": _("This meter is not installed.")})
    return _new_command(
        meter, MeterCommand.Action.READ, source=MeterCommand.Source.STAFF, reason="", actor=actor
    )


@transaction.atomic
def readings_mark_reviewed(*, reading_ids: Sequence[int], actor: User) -> int:
    """Staff checked these flagged readings: each keeps who reviewed it and when (a bill may
    then rest on it). Readings already reviewed keep their first reviewer; unflagged ones
    and those the actor may not see are left alone. Needs ``change_meterreading``.
    Returns how many were marked."""
    if not actor.has_perm("metering.change_meterreading"):
        raise PermissionDenied
    readings = visible_to(
        MeterReading.objects.filter(among("pk", reading_ids), reviewed=False).exclude(flag=""),
        actor,
    )
    return readings.update(reviewed=True, reviewed_by=actor, reviewed_at=clock.now())
