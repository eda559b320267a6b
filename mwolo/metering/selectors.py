"""Reads of metering data: consumption is derived from readings here, and only here."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, QuerySet

from .models import Meter, MeterReading

# Readings a bill may rest on: unflagged, rollovers, and flagged ones staff reviewed.
TRUSTED = Q(flag="") | Q(flag=MeterReading.Flag.ROLLOVER) | Q(reviewed=True)


@dataclass(frozen=True)
class Consumption:
    """Energy used by a meter between two moments, and how sure we are of it."""

    kwh: Decimal | None  # None when a boundary has no reading to rest on
    start: MeterReading | None
    end: MeterReading | None
    suspicious: int  # flagged readings in the period nobody has reviewed yet

    @property
    def complete(self) -> bool:
        return self.kwh is not None and self.suspicious == 0


def _last_trusted(readings: QuerySet[MeterReading], at: dt.datetime) -> MeterReading | None:
    return readings.filter(TRUSTED, taken_at__lte=at).order_by("-taken_at").first()


def meter_consumption(*, meter: Meter, start: dt.datetime, end: dt.datetime) -> Consumption:
    """kWh between the last trusted readings at or before ``start`` and ``end``.

    A register that rolled over in between counts its capacity once per rollover.
    Unreviewed suspicious readings in the period are reported, not used.
    """
    readings = MeterReading.objects.filter(meter=meter)
    first = _last_trusted(readings, start)
    last = _last_trusted(readings, end)
    in_period = readings.filter(taken_at__gt=start, taken_at__lte=end)
    suspicious = in_period.exclude(TRUSTED).count()
    if first is None or last is None:
        return Consumption(kwh=None, start=first, end=last, suspicious=suspicious)
    rollovers = in_period.filter(
        flag=MeterReading.Flag.ROLLOVER, taken_at__lte=last.taken_at
    ).count()
    kwh = last.energy_kwh - first.energy_kwh + rollovers * meter.register_capacity_kwh
    return Consumption(kwh=kwh, start=first, end=last, suspicious=suspicious)
