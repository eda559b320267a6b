"""Daily load curves, integrated exactly.

A category's demand is a weekly, piecewise-linear curve: one point per local hour (the
fraction of the meter's rated power drawn at that hour) times a weekday factor. Because the
curve is piecewise linear, the energy drawn between two instants has a closed form, so a
meter's register never depends on how often the simulator happens to look at it, and the
register of any past instant can be computed in O(1) (``publish_history`` relies on it).
"""

from dataclasses import dataclass
from enum import StrEnum

# Distribution in the DRC runs on Kinshasa time (UTC+1) in the west; the curves are local.
LOCAL_UTC_OFFSET_S = 3600
HOUR_S = 3600
WEEK_S = 7 * 24 * HOUR_S
# 1970-01-01 was a Thursday: Monday 1970-01-05 00:00 local starts week zero.
_WEEK_ORIGIN_S = 4 * 24 * HOUR_S - LOCAL_UTC_OFFSET_S


class Category(StrEnum):
    RESIDENTIAL = "residential"
    COMMERCIAL = "commercial"


# Share of rated power by local hour 00..23.
# fmt: off
_DAILY_SHAPE: dict[Category, tuple[float, ...]] = {
    # A small night base (fridge, security light), a morning peak, an evening peak.
    Category.RESIDENTIAL: (
        0.12, 0.10, 0.09, 0.09, 0.10, 0.18, 0.45, 0.60, 0.45, 0.30, 0.25, 0.25,
        0.30, 0.28, 0.25, 0.25, 0.30, 0.50, 0.85, 1.00, 0.95, 0.80, 0.50, 0.25,
    ),
    # Shops and offices: opening hours carry the load, refrigeration keeps a base at night.
    Category.COMMERCIAL: (
        0.15, 0.15, 0.15, 0.15, 0.15, 0.18, 0.25, 0.50, 0.80, 0.95, 1.00, 1.00,
        0.90, 0.95, 1.00, 0.95, 0.90, 0.80, 0.60, 0.45, 0.35, 0.25, 0.20, 0.15,
    ),
}
# fmt: on

# Monday..Sunday: households use more at the weekend, businesses far less.
_WEEKDAY_FACTOR: dict[Category, tuple[float, ...]] = {
    Category.RESIDENTIAL: (1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.15),
    Category.COMMERCIAL: (1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.3),
}


@dataclass(frozen=True)
class LoadCurve:
    """Demand of a 1 W-rated meter of one category, as a weekly piecewise-linear curve."""

    points: tuple[float, ...]  # 169 values: share of rated power at each hour of the week
    cumulative_wh: tuple[float, ...]  # 169 values: Wh per rated W from Monday 00:00

    @classmethod
    def for_category(cls, category: Category) -> "LoadCurve":
        shape, weekdays = _DAILY_SHAPE[category], _WEEKDAY_FACTOR[category]
        points = [shape[k % 24] * weekdays[k // 24] for k in range(7 * 24)]
        points.append(points[0])  # the week wraps around
        cumulative = [0.0]
        for k in range(7 * 24):
            cumulative.append(cumulative[-1] + (points[k] + points[k + 1]) / 2)
        return cls(points=tuple(points), cumulative_wh=tuple(cumulative))

    def _locate(self, t: float) -> tuple[float, int, float]:
        weeks, into_week = divmod(t - _WEEK_ORIGIN_S, WEEK_S)
        hour, into_hour = divmod(into_week, HOUR_S)
        return weeks, int(hour), into_hour / HOUR_S

    def share(self, t: float) -> float:
        """Share of rated power drawn at epoch second ``t``."""
        _, k, x = self._locate(t)
        return self.points[k] + (self.points[k + 1] - self.points[k]) * x

    def energy_wh(self, t: float) -> float:
        """Wh a 1 W-rated meter has drawn from an arbitrary origin to epoch second ``t``.

        Only differences are meaningful: ``energy_wh(t1) - energy_wh(t0)``.
        """
        weeks, k, x = self._locate(t)
        start, slope = self.points[k], self.points[k + 1] - self.points[k]
        return (
            weeks * self.cumulative_wh[-1] + self.cumulative_wh[k] + start * x + slope * x * x / 2
        )


CURVES: dict[Category, LoadCurve] = {c: LoadCurve.for_category(c) for c in Category}
