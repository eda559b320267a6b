"""Celery tasks of billing: each takes ids and calls a service (see ``services``)."""

from collections.abc import Sequence

from celery import shared_task

from mwolo.accounts.models import User

from . import delivery, services


@shared_task(name="billing.run_draft_chunk", acks_late=True)
def billing_run_draft_chunk(run_id: int, index: int) -> dict[str, int]:
    report = services.billing_run_draft_chunk(run_id=run_id, index=index)
    return {
        "drafted": report.drafted,
        "flagged": report.flagged,
        "kept": report.kept,
        "issued": report.issued,
    }


@shared_task(name="billing.run_issue_chunk", acks_late=True)
def billing_run_issue_chunk(run_id: int, index: int, actor_id: int | None) -> dict[str, int]:
    actor = User.objects.get(pk=actor_id) if actor_id else None
    report = services.billing_run_issue_chunk(run_id=run_id, index=index, actor=actor)
    return {"issued": report.issued, "held": report.held}


@shared_task(name="billing.invoices_deliver", acks_late=True)
def invoices_deliver(invoice_ids: Sequence[int]) -> int:
    return delivery.invoices_deliver(invoice_ids=invoice_ids)


# At most this many invoices per run of the backlog job, so one run ends well before the next.
BACKLOG_LIMIT = 500


@shared_task(name="billing.invoices_backlog")
def invoices_backlog() -> dict[str, int]:
    report = delivery.invoices_backlog_deliver(limit=BACKLOG_LIMIT)
    return {"found": report.found, "delivered": report.delivered, "failed": report.failed}


@shared_task(name="billing.credit_note_document", acks_late=True)
def credit_note_document(credit_note_id: int) -> None:
    delivery.credit_note_deliver(credit_note_id=credit_note_id)
