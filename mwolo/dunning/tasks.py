from collections.abc import Sequence
from dataclasses import asdict

from celery import shared_task

from mwolo.core import clock
from mwolo.notifications.tasks import notifications_deliver_batch_task


@shared_task(name="dunning.dunning_run_zone")
def dunning_run_zone(time_zone: str) -> dict[str, object]:
    """The day's pass for the agencies of one time zone (beat: 09:00 there)."""
    from .services import dunning_run

    report = dunning_run(as_of=clock.today(time_zone), time_zone=time_zone)
    return {**asdict(report), "as_of": report.as_of.isoformat()}


@shared_task(
    name="dunning.overdue_cleared_check",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=30,  # 30 s, 1, 2, 4… minutes; the next daily pass catches what is left
    retry_backoff_max=600,
    max_retries=10,
)
def overdue_cleared_check_task(client_id: int, source: str = "dunning") -> list[int]:
    """Reconnect what dunning cut for the client if nothing is overdue any more; returns
    the disconnections closed (idempotent: a second run closes nothing)."""
    from .services import overdue_cleared_check

    return [episode.pk for episode in overdue_cleared_check(client_id=client_id, source=source)]


@shared_task(name="dunning.notices_deliver")
def notices_deliver(notification_ids: Sequence[int]) -> int:
    """What passes before messages were written by ``notifications_send_bulk`` queued: the
    same as ``notifications.notifications_deliver_batch``."""
    return notifications_deliver_batch_task(notification_ids)
