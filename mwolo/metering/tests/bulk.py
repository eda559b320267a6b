"""Many meters in a few queries, for benchmarks and query-count tests."""

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from mwolo.agencies.models import Agency
from mwolo.crm.models import Site
from mwolo.metering.models import Meter, MeterInstallation, PaymentMode, Relay


def bulk_meters(
    *,
    registers: Mapping[str, Decimal],
    agency: Agency,
    read_at: dt.datetime,
    sites: Sequence[Site] = (),
) -> list[Meter]:
    """Postpaid meters of ``agency``, serial -> the register of their last reading at
    ``read_at``; the first ones installed on ``sites`` (one each) since then."""
    meters = Meter.objects.bulk_create(
        [
            Meter(
                serial=serial,
                vendor="Hexing",
                hardware_model="HXE110",
                agency=agency,
                payment_mode=PaymentMode.POSTPAID,
                last_energy_kwh=register,
                last_reading_at=read_at,
                relay_reported=Relay.ON,
                relay_reported_at=read_at,
                site=site,
            )
            for (serial, register), site in zip(
                registers.items(), [*sites, *[None] * (len(registers) - len(sites))], strict=True
            )
        ],
        batch_size=2000,
    )
    MeterInstallation.objects.bulk_create(
        [
            MeterInstallation(
                meter=meter,
                site=meter.site,
                installed_at=read_at,
                installed_register_kwh=meter.last_energy_kwh,
            )
            for meter in meters
            if meter.site is not None
        ],
        batch_size=2000,
    )
    return meters
