from collections.abc import Sequence
from dataclasses import asdict

from celery import shared_task

from mwolo.core import clock
from mwolo.notifications.services import notification_deliver


@shared_task(name="dunning.dunning_run_zone")
def dunning_run_zone(time_zone: str) -> dict[str, object]:
    """The day's pass for the agencies of one time zone (beat: 09:00 there)."""
    from .services import dunning_run

    report = dunning_run(as_of=clock.today(time_zone), time_zone=time_zone)
    return {**asdict(report), "as_of": report.as_of.isoformat()}


@shared_task(name="dunning.notices_deliver")
def notices_deliver(notification_ids: Sequence[int]) -> int:
    """Deliver a batch of the pass's messages (each once; failures retry on their own)."""
    return sum(
        notification_deliver(notification_id=notification_id) is not None
        for notification_id in notification_ids
    )
