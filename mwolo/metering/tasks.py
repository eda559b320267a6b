from celery import shared_task

from .services import meters_reconcile


@shared_task(name="metering.meters_reconcile")
def meters_reconcile_task() -> dict[str, int]:
    report = meters_reconcile()
    return {"commands": report.commands, "alarms": report.alarms, "offline": report.offline}
