from collections.abc import Sequence

from celery import shared_task

from .services import notification_deliver, notifications_deliver_due


@shared_task(name="notifications.notification_deliver")
def notification_deliver_task(notification_id: int) -> str | None:
    notification = notification_deliver(notification_id=notification_id)
    return notification.status if notification is not None else None


@shared_task(name="notifications.notifications_retry_due")
def notifications_retry_due_task() -> dict[str, int]:
    report = notifications_deliver_due()
    return {"sent": report.sent, "failed": report.failed, "given_up": report.given_up}


@shared_task(name="notifications.notifications_deliver_batch")
def notifications_deliver_batch_task(notification_ids: Sequence[int]) -> int:
    """Deliver a batch of messages written in bulk (each once; failures retry on their own,
    as any message's); returns how many were tried."""
    return sum(
        notification_deliver(notification_id=notification_id) is not None
        for notification_id in notification_ids
    )
