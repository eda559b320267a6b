from mwolo.metering.models import Meter, PaymentMode

from .models import DemoRecord


def demo_meter_serials() -> tuple[list[str], set[str]]:
    """The serials of the demo's meters still in service, and those of the prepaid ones."""
    meter_ids = DemoRecord.objects.filter(key__startswith="meter:").values("object_id")
    meters = Meter.objects.filter(pk__in=meter_ids, site__isnull=False).order_by("serial")
    rows = list(meters.values_list("serial", "payment_mode"))
    return [serial for serial, _ in rows], {s for s, mode in rows if mode == PaymentMode.PREPAID}
