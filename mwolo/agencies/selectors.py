"""Reads on agencies: what the public site (and anyone else) may list about them."""

import datetime as dt
from dataclasses import dataclass
from itertools import groupby

from django.db.models import Prefetch

from .models import Agency, OpeningHours

Slot = tuple[dt.time, dt.time]


@dataclass(frozen=True)
class OpeningDays:
    """Consecutive weekdays that share the same opening slots; no slots means closed."""

    first: OpeningHours.Weekday
    last: OpeningHours.Weekday
    slots: tuple[Slot, ...]

    @property
    def is_closed(self) -> bool:
        return not self.slots

    @property
    def is_single_day(self) -> bool:
        return self.first == self.last


def agencies_public_list() -> list[Agency]:
    """Active agencies, by province then name, with their places and opening hours.

    Two queries whatever the number of agencies: one for the agencies joined to their
    province, territory and commune, one for all their opening hours.
    """
    hours = OpeningHours.objects.order_by("weekday", "opens_at")
    return list(
        Agency.objects.filter(is_active=True)
        .select_related("province", "territory", "commune")
        .prefetch_related(Prefetch("opening_hours", queryset=hours))
        .order_by("province__name", "name")
    )


def agency_opening_days(agency: Agency) -> list[OpeningDays]:
    """The agency's week, Monday to Sunday, with days of identical hours merged.

    Reads ``agency.opening_hours`` as prefetched by ``agencies_public_list`` (no query).
    An agency that has published no hours at all gets an empty list, not "closed".
    """
    slots_by_day: dict[int, list[Slot]] = {day: [] for day in OpeningHours.Weekday.values}
    for slot in agency.opening_hours.all():
        slots_by_day[slot.weekday].append((slot.opens_at, slot.closes_at))
    if not any(slots_by_day.values()):
        return []
    week = [(day, tuple(sorted(slots))) for day, slots in sorted(slots_by_day.items())]
    merged = []
    for slots, days in groupby(week, key=lambda day_slots: day_slots[1]):
        numbers = [day for day, _slots in days]
        merged.append(
            OpeningDays(
                first=OpeningHours.Weekday(numbers[0]),
                last=OpeningHours.Weekday(numbers[-1]),
                slots=slots,
            )
        )
    return merged
