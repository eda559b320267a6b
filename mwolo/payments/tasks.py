"""Celery tasks of payments: each takes ids and calls a service."""

from celery import shared_task

from . import delivery, services


@shared_task(name="payments.intent_push", acks_late=True)
def payment_intent_push(intent_id: int) -> str:
    return str(services.payment_intent_push(intent_id=intent_id).status)


@shared_task(name="payments.after_commit", acks_late=True)
def payment_after_commit(payment_id: int, client_id: int) -> None:
    """The receipt to the client, then what the payment cleared (reconnection)."""
    delivery.receipt_deliver(payment_id=payment_id)
    delivery.overdue_cleared(client_id=client_id)


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
