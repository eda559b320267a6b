import datetime as dt
from decimal import Decimal

import factory

from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core import clock
from mwolo.crm.models import Site
from mwolo.metering import services
from mwolo.metering.models import Meter, PaymentMode

TOKEN_SECRET = "0123456789abcdef0123456789abcdef"


class MeterFactory(factory.django.DjangoModelFactory):
    """A meter in its agency's stock (``installed_meter`` puts one on a site)."""

    class Meta:
        model = Meter

    serial = factory.Sequence(lambda n: f"MTR-{n:06d}")
    vendor = "Hexing"
    hardware_model = "HXE110"
    agency = factory.SubFactory(AgencyFactory)
    payment_mode = PaymentMode.POSTPAID


def installed_meter(
    site: Site,
    *,
    register: str = "1000.000",
    prepaid: bool = False,
    at: dt.datetime | None = None,
    serial: str | None = None,
) -> Meter:
    """A meter registered (with a token secret if prepaid) and installed at ``site``."""
    meter = Meter(
        serial=serial or f"MTR-{Meter.objects.count() + 1:06d}-{site.pk}",
        vendor="Hexing",
        hardware_model="HXE110",
        agency=site.agency,
        payment_mode=PaymentMode.PREPAID if prepaid else PaymentMode.POSTPAID,
    )
    services.meter_register(meter=meter, actor=None, token_secret=TOKEN_SECRET if prepaid else "")
    services.meter_install(
        meter_id=meter.pk,
        site=site,
        register_kwh=Decimal(register),
        actor=None,
        at=at or clock.now() - dt.timedelta(days=30),
    )
    meter.refresh_from_db()
    return meter
