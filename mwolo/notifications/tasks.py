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
