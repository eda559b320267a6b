"""Celery tasks of payments: each takes ids and calls a service."""

from celery import shared_task

from mwolo.dunning.tasks import overdue_cleared_check_task

from . import delivery, services


@shared_task(name="payments.intent_push", acks_late=True)
def payment_intent_push(intent_id: int) -> str:
    return str(services.payment_intent_push(intent_id=intent_id).status)


@shared_task(
    name="payments.receipt_deliver",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=60,  # 1, 2, 4… minutes
    retry_backoff_max=3600,
    max_retries=8,
)
def receipt_deliver_task(payment_id: int) -> None:
    """The receipt PDF and notice to the client (idempotent: retried until it is sent)."""
    delivery.receipt_deliver(payment_id=payment_id)


@shared_task(name="payments.after_commit", acks_late=True)
def payment_after_commit(payment_id: int, client_id: int) -> None:
    """What payments recorded before the receipt and the reconnection were split queued:
    both, each as its own task (the reconnection first)."""
    overdue_cleared_check_task.delay(client_id, "payment")
    receipt_deliver_task.delay(payment_id)


@shared_task(name="payments.webhook_confirm", acks_late=True)
def webhook_confirm(call_id: int, intent_id: int, claim: dict[str, str | None]) -> str:
    return services.webhook_confirm(call_id=call_id, intent_id=intent_id, claim=claim)


@shared_task(name="payments.intents_reconcile")
def payment_intents_reconcile() -> dict[str, int]:
    report = services.payment_intents_reconcile()
    return {
        "pushed": report.pushed,
        "checked": report.checked,
        "settled": report.settled,
        "failed": report.failed,
        "expired": report.expired,
    }
