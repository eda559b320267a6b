"""Reads of metering data: consumption is derived from readings here, and only here."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import OuterRef, Q, QuerySet, Subquery

from .models import Meter, MeterReading

# Readings a bill may rest on: unflagged, rollovers, and flagged ones staff reviewed.
TRUSTED = Q(flag="") | Q(flag=MeterReading.Flag.ROLLOVER) | Q(reviewed=True)


@dataclass(frozen=True)
class RegisterRead:
    """A trusted reading a consumption rests on."""

    taken_at: dt.datetime
    energy_kwh: Decimal


@dataclass(frozen=True)
class Consumption:
    """Energy used by a meter between two moments, and how sure we are of it."""

    kwh: Decimal | None  # None when a boundary has no reading to rest on
    start: RegisterRead | None
    end: RegisterRead | None
    suspicious: int  # flagged readings in the period nobody has reviewed yet

    @property
    def complete(self) -> bool:
        return self.kwh is not None and self.suspicious == 0


def _last_trusted_id(moment: dt.datetime) -> Subquery:
    return Subquery(
        MeterReading.objects.filter(TRUSTED, meter=OuterRef("pk"), taken_at__lte=moment)
        .order_by("-taken_at")
        .values("pk")[:1]
    )


def _first_trusted_id(moment: dt.datetime) -> Subquery:
    return Subquery(
        MeterReading.objects.filter(TRUSTED, meter=OuterRef("pk"), taken_at__gte=moment)
        .order_by("taken_at")
        .values("pk")[:1]
    )


MeterIds = Iterable[int] | QuerySet


def _reads(meters: QuerySet[Meter], boundary: Subquery) -> dict[int, RegisterRead]:
    """The reading ``boundary`` picks for each meter, by meter, in one query (the ids stay
    in the database: a chunk of a billing run passes thousands of meters)."""
    return {
        meter_id: RegisterRead(taken_at=taken_at, energy_kwh=energy)
        for meter_id, taken_at, energy in MeterReading.objects.filter(
            pk__in=meters.annotate(boundary=boundary).values("boundary")
        )
        .order_by()  # the default order joins the meters to sort by serial
        .values_list("meter_id", "taken_at", "energy_kwh")
    }


def _between(
    meter_ids: MeterIds,
    first: Subquery,
    last: Subquery,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[int, Consumption]:
    meters = Meter.objects.filter(pk__in=meter_ids)
    firsts, lasts = _reads(meters, first), _reads(meters, last)
    suspicious: dict[int, int] = defaultdict(int)
    rollovers: dict[int, list[dt.datetime]] = defaultdict(list)
    for meter_id, flag, reviewed, taken_at in (
        MeterReading.objects.filter(meter_id__in=meter_ids, taken_at__gt=start, taken_at__lte=end)
        .exclude(flag="")
        .order_by()
        .values_list("meter_id", "flag", "reviewed", "taken_at")
    ):
        if flag == MeterReading.Flag.ROLLOVER:
            rollovers[meter_id].append(taken_at)
        elif not reviewed:
            suspicious[meter_id] += 1
    capacities = dict(
        Meter.objects.filter(pk__in=list(rollovers)).values_list("pk", "register_capacity_kwh")
    )
    result = {}
    for meter_id in meters.values_list("pk", flat=True):
        read_first, read_last = firsts.get(meter_id), lasts.get(meter_id)
        kwh = None
        if read_first is not None and read_last is not None:
            turns = sum(
                1 for at in rollovers[meter_id] if read_first.taken_at < at <= read_last.taken_at
            )
            kwh = read_last.energy_kwh - read_first.energy_kwh
            if turns:
                kwh += turns * capacities[meter_id]
        result[meter_id] = Consumption(
            kwh=kwh, start=read_first, end=read_last, suspicious=suspicious[meter_id]
        )
    return result


def meters_consumption(
    *, meter_ids: MeterIds, start: dt.datetime, end: dt.datetime
) -> dict[int, Consumption]:
    """``meter_consumption`` for many meters over one window, in four queries.

    The billing run calls this for thousands of meters at a time (``meter_ids`` may be a
    queryset of ids, kept in the database as a subquery): each boundary reading is found
    by one index probe per meter (the unique index on meter and time), and only the
    flagged readings of the window are read, never the window's telemetry.
    """
    return _between(meter_ids, _last_trusted_id(start), _last_trusted_id(end), start, end)


def meters_daily_average(
    *, meter_ids: MeterIds, before: dt.datetime, span: dt.timedelta
) -> dict[int, Decimal]:
    """Each meter's average kWh per day between its trusted readings of the ``span`` up to
    ``before``, for meters read at least a day apart in it (what an estimate rests on)."""
    start = before - span
    used = _between(meter_ids, _first_trusted_id(start), _last_trusted_id(before), start, before)
    rates = {}
    for meter_id, consumption in used.items():
        if consumption.kwh is None or consumption.start is None or consumption.end is None:
            continue
        seconds = (consumption.end.taken_at - consumption.start.taken_at).total_seconds()
        if seconds >= 86400 and consumption.kwh >= 0:
            rates[meter_id] = consumption.kwh * Decimal(86400) / Decimal(seconds)
    return rates


def meter_consumption(*, meter: Meter, start: dt.datetime, end: dt.datetime) -> Consumption:
    """kWh between the last trusted readings at or before ``start`` and ``end``.

    A register that rolled over in between counts its capacity once per rollover.
    Unreviewed suspicious readings in the period are reported, not used.
    """
    return meters_consumption(meter_ids=[meter.pk], start=start, end=end)[meter.pk]
