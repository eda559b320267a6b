"""Running a billing run's chunks here and now: one after the other, or in processes.

The Celery tasks are the way a run goes in production (``tasks``); this is the same work
for ``manage.py billing_run`` and the benchmark, where the caller waits for the end.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from django.db import connections

from . import services
from .models import BillingRun
from .services import DraftReport


def _draft(job: tuple[int, int]) -> DraftReport:
    run_id, index = job
    return services.billing_run_draft_chunk(run_id=run_id, index=index)


def billing_run_execute(*, run: BillingRun, workers: int = 1) -> DraftReport:
    """Draft every chunk of ``run`` (issuing as it drafts when the run was started with
    ``issue``) in ``workers`` processes, and wait for the end; returns the totals."""
    jobs = [(run.pk, index) for index in range(len(run.chunks))]
    if workers <= 1 or len(jobs) <= 1:
        return sum((_draft(job) for job in jobs), DraftReport())
    # Forked children share the parent's settings (and so its database, a test one
    # included) and open connections of their own: none may be inherited open.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return sum(pool.map(_draft, jobs), DraftReport())
