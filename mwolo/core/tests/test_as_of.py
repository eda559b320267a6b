"""``--as-of`` on every scheduled job's command: a bad moment is refused before any work."""

import io

import pytest
from django.core.management import CommandError, call_command

COMMANDS = ["reconcile_payments", "reconcile_meters", "send_notifications", "deliver_invoices"]


@pytest.mark.django_db
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "moment",
    ["demain", "2026-13-45T09:00:00+01:00", "2026-12-20T09:00:00", "2026-12-20"],
)
def test_a_moment_that_is_not_one_is_refused_clearly(command, moment, django_assert_num_queries):
    out = io.StringIO()
    with django_assert_num_queries(0), pytest.raises(CommandError) as refused:
        call_command(command, "--as-of", moment, stdout=out)

    assert str(refused.value) == (
        "--as-of must be a date and time with its offset, e.g. 2026-12-20T09:00:00+01:00"
    )
    assert out.getvalue() == ""


@pytest.mark.django_db
@pytest.mark.parametrize("command", COMMANDS)
def test_a_moment_with_its_offset_runs_the_job(command):
    out = io.StringIO()
    call_command(command, "--as-of", "2026-12-20T09:00:00+01:00", stdout=out)

    assert out.getvalue().strip()
