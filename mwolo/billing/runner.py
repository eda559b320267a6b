"""Running a billing run's chunks here and now: one after the other, or in processes.

The Celery tasks are the way a run goes in production (``tasks``); this is the same work
for ``manage.py billing_run`` and the benchmark, where the caller waits for the end.
"""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from django.db import connections

from mwolo.accounts.models import User

from . import services
from .models import BillingRun


@dataclass
class RunTotals:
    drafted: int = 0
    flagged: int = 0
    kept: int = 0
    issued: int = 0
    held: int = 0


def _draft(args: tuple[int, int]) -> tuple[int, int, int]:
    run_id, index = args
    report = services.billing_run_draft_chunk(run_id=run_id, index=index)
    return report.drafted, report.flagged, report.kept


def _issue(args: tuple[int, int, int | None]) -> tuple[int, int]:
    run_id, index, actor_id = args
    actor = User.objects.get(pk=actor_id) if actor_id else None
    report = services.billing_run_issue_chunk(run_id=run_id, index=index, actor=actor)
    return report.issued, report.held


def _map(function: Callable, jobs: list, workers: int) -> list:
    if workers <= 1 or len(jobs) <= 1:
        return [function(job) for job in jobs]
    # Forked children share the parent's settings (and so its database, a test one
    # included) and open connections of their own: none may be inherited open.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(function, jobs))


def billing_run_execute(*, run: BillingRun, issue: bool, workers: int = 1) -> RunTotals:
    """Draft every chunk of ``run``, then issue them when asked; wait for the end."""
    totals = RunTotals()
    chunks = range(len(run.chunks))
    for drafted, flagged, kept in _map(_draft, [(run.pk, i) for i in chunks], workers):
        totals.drafted += drafted
        totals.flagged += flagged
        totals.kept += kept
    if issue:
        jobs = [(run.pk, i, run.created_by_id) for i in chunks]
        for issued, held in _map(_issue, jobs, workers):
            totals.issued += issued
            totals.held += held
    return totals
