"""``manage.py billing_run``: its messages, bad input, and a real crash in the middle."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing.models import BillingRun, Invoice
from mwolo.billing.tests.factories import local, metered_site, tariff
from mwolo.core.models import Sequence

ROOT = Path(__file__).resolve().parents[3]
READINGS = [(local("2026-09-30"), "1000"), (local("2026-10-31"), "1050")]


@pytest.mark.django_db
def test_the_command_drafts_issues_and_says_what_it_did():
    tariff()
    agency = AgencyFactory(code="KIN-GOM")
    for _ in range(3):
        metered_site(agency=agency, readings=READINGS)
    flagged = metered_site(agency=agency, installed_at=local("2026-09-30", "10:00"))
    out = io.StringIO()

    call_command("billing_run", "--period", "2026-10", "--agency", "KIN-GOM", "--issue", stdout=out)

    assert "4 drafted (1 to review)" in out.getvalue()
    assert "3 issued, 1 held for review" in out.getvalue()
    assert Invoice.objects.filter(status=Invoice.Status.ISSUED).count() == 3
    assert Invoice.objects.get(site=flagged).status == Invoice.Status.DRAFT

    again = io.StringIO()
    call_command("billing_run", "--period", "2026-10", "--issue", stdout=again)
    assert "3 already issued or reviewed" in again.getvalue()
    assert Invoice.objects.count() == 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--period", "2026/10"], "--period must be a month"),
        (["--period", "2026-13"], "--period must be a month"),
        (["--period", "2099-01"], "pas terminé"),
        (["--period", "2026-10", "--agency", "NOPE"], "No agency has the code"),
        (["--period", "2026-10", "--workers", "0"], "at least 1"),
    ],
)
def test_bad_arguments_stop_the_command_and_write_nothing(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("billing_run", *arguments, stdout=io.StringIO())
    assert not BillingRun.objects.exists()
    assert not Invoice.objects.exists()


def _database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user, host, port = settings["USER"], settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


def _billing_run(*extra: str) -> subprocess.Popen:
    environment = {**os.environ, "DATABASE_URL": _database_url()}
    return subprocess.Popen(
        [sys.executable, "manage.py", "billing_run", "--period", "2026-10", *extra],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # Its own process group: the crash kills the command and its worker processes.
        start_new_session=True,
    )


def _kill_when(process: subprocess.Popen, reached) -> None:
    deadline = time.monotonic() + 120
    while not reached():
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the run never reached the point of the crash"
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("phase", "workers"), [("drafting", "1"), ("issuing", "1"), ("issuing", "2")]
)
def test_a_crash_mid_run_then_a_rerun_leaves_one_invoice_per_site_and_no_gap(phase, workers):
    tariff()
    agency = AgencyFactory(code="KIN-GOM")
    sites = [metered_site(agency=agency, readings=READINGS) for _ in range(90)]
    drafts = Invoice.objects.filter(status=Invoice.Status.DRAFT)
    issued = Invoice.objects.filter(status=Invoice.Status.ISSUED)
    options = ("--chunk-size", "3", "--workers", workers)

    # A run that only drafts, or one that issues each chunk as it drafts it (with two
    # workers, both may be in a chunk's transaction, one of them holding the counter).
    if phase == "drafting":
        crashing = _billing_run(*options)
        _kill_when(crashing, lambda: drafts.count() >= 3)
        assert drafts.count() < len(sites)
    else:
        crashing = _billing_run("--issue", *options)
        _kill_when(crashing, lambda: issued.count() >= 3)
        assert issued.count() < len(sites)
    # Every process of the run is gone: nothing is written any more.
    left = (Invoice.objects.count(), issued.count())
    time.sleep(1)
    assert (Invoice.objects.count(), issued.count()) == left

    rerun = _billing_run("--issue", *options)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output.decode()

    assert Invoice.objects.count() == len(sites)
    assert set(Invoice.objects.values_list("site_id", flat=True)) == {s.pk for s in sites}
    numbers = sorted(int(number[-6:]) for number in issued.values_list("number", flat=True))
    assert numbers == list(range(1, len(sites) + 1))
    # The counter gave back what the killed transactions had taken.
    (counter,) = Sequence.objects.filter(key__startswith="invoice-").values_list(
        "last_value", flat=True
    )
    assert counter == len(sites)
