"""Meter fleet simulator: the meter side of protocol v1 (docs/meter-protocol.md).

    python -m sandbox.meters --count 1000 [--broker mqtt://127.0.0.1:11883] ...

Tests and benchmarks use the same fleet in-process, still over a real broker::

    with Fleet("127.0.0.1", 11883, "mwolo", count=10, prepaid=0.3, speed=60) as fleet:
        meter = fleet.meter("SIM-000001")
        meter.relay, meter.register_kwh, meter.credit_kwh
"""

from sandbox.meters.fleet import DEFAULT_PORT, Fleet, SimClock, select_share
from sandbox.meters.history import HistoryResult
from sandbox.meters.load import Category
from sandbox.meters.meter import (
    DEFAULT_FACTORY_KEY,
    TOKEN_START_COUNT,
    Behaviour,
    Meter,
    MeterSpec,
    RecordingLink,
    TokenResult,
    factory_secret,
)

__all__ = [
    "DEFAULT_FACTORY_KEY",
    "DEFAULT_PORT",
    "TOKEN_START_COUNT",
    "Behaviour",
    "Category",
    "Fleet",
    "HistoryResult",
    "Meter",
    "MeterSpec",
    "RecordingLink",
    "SimClock",
    "TokenResult",
    "factory_secret",
    "select_share",
]
