"""A policy changed while invoices are on its ladder (staff edit it in the admin, or a new
policy takes over an agency): each invoice goes on from the furthest step it took, takes
no step twice, and is never cut without its final notice nor before the day it named."""

import datetime as dt

import pytest
from django.urls import reverse

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.core.permissions import Role
from mwolo.dunning.models import Action, Disconnection, DunningPolicy, DunningStep
from mwolo.dunning.services import dunning_run
from mwolo.dunning.tests.factories import day, overdue_invoice, steps_taken
from mwolo.dunning.tests.test_ladder import LADDER, sms, walk

pytestmark = pytest.mark.django_db

REMIND, NOTICE, CUT = Action.REMIND, Action.FINAL_NOTICE, Action.DISCONNECT
Row = tuple[int, int, str, int]  # position, days after due, action, gap after the previous


def default_policy() -> DunningPolicy:
    return DunningPolicy.objects.get(agency=None, site_category="")


def ladder_edit(client, policy: DunningPolicy, rows: dict[int | None, Row]) -> None:
    """Save the policy's steps in the admin as ``rows`` says: step id (None for a new
    step) -> its position, days, action and gap. The other fields as the page shows them."""
    client.force_login(EmployeeFactory(role=Role.ADMINISTRATOR))
    url = reverse("admin:dunning_dunningpolicy_change", args=[policy.pk])
    page = client.get(url)
    data: dict[str, str] = {}
    for bound in page.context["adminform"].form:
        value = bound.value()
        if isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        else:
            data[bound.html_name] = "" if value is None else str(value)
    existing = list(policy.steps.order_by("position").values_list("pk", flat=True))
    ordered = [(pk, rows[pk]) for pk in existing] + [(None, row) for row in rows.get(None, ())]
    data.update(
        {
            "steps-TOTAL_FORMS": str(len(ordered)),
            "steps-INITIAL_FORMS": str(len(existing)),
            "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000",
        }
    )
    for index, (pk, (position, days, action, gap)) in enumerate(ordered):
        data.update(
            {
                f"steps-{index}-id": "" if pk is None else str(pk),
                f"steps-{index}-policy": str(policy.pk),
                f"steps-{index}-position": str(position),
                f"steps-{index}-days_after_due": str(days),
                f"steps-{index}-action": action,
                f"steps-{index}-channel": "preferred",
                f"steps-{index}-min_days_after_previous": str(gap),
            }
        )
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.context["inline_admin_formsets"][0].formset.errors


def default_steps() -> list[int]:
    return list(default_policy().steps.order_by("position").values_list("pk", flat=True))


def test_a_reminder_inserted_after_the_first_one_was_sent_is_taken_in_its_place(
    client, residential
):
    invoice = overdue_invoice()
    walk(0, 3)
    first, second, notice, cut = default_steps()

    # A third reminder on D+10: the final notice and the cut move down one position.
    ladder_edit(
        client,
        default_policy(),
        {
            first: (1, 3, REMIND, 1),
            second: (2, 7, REMIND, 2),
            notice: (4, 12, NOTICE, 2),
            cut: (5, 14, CUT, 2),
            None: [(3, 10, REMIND, 2)],
        },
    )
    walk(4, 20)

    assert steps_taken(invoice) == [(3, REMIND), (7, REMIND), (10, REMIND), (12, NOTICE), (14, CUT)]
    assert len(sms(invoice, "reminder")) == 3
    assert "est impayée depuis 10 jours" in sms(invoice, "reminder")[2]
    assert Disconnection.objects.count() == 1


def test_a_reminder_inserted_before_the_one_sent_is_not_sent_late(client, residential):
    invoice = overdue_invoice()
    walk(0, 3)
    first, second, notice, cut = default_steps()

    ladder_edit(
        client,
        default_policy(),
        {
            first: (2, 3, REMIND, 1),
            second: (3, 7, REMIND, 2),
            notice: (4, 12, NOTICE, 2),
            cut: (5, 14, CUT, 2),
            None: [(1, 1, REMIND, 1)],
        },
    )
    walk(4, 20)

    assert steps_taken(invoice) == LADDER


def test_days_moved_after_the_first_reminder_are_followed_from_then_on(client, residential):
    invoice = overdue_invoice()
    walk(0, 3)
    first, second, notice, cut = default_steps()

    ladder_edit(
        client,
        default_policy(),
        {
            first: (1, 3, REMIND, 1),
            second: (2, 9, REMIND, 2),
            notice: (3, 13, NOTICE, 2),
            cut: (4, 16, CUT, 2),
        },
    )
    walk(4, 20)

    assert steps_taken(invoice) == [(3, REMIND), (9, REMIND), (13, NOTICE), (16, CUT)]
    assert sms(invoice, "final_notice")[0].endswith("avant le 17/02/2027, le courant sera coupé.")


def test_a_cut_moved_earlier_after_the_final_notice_still_waits_for_the_day_it_named(
    client, residential
):
    due = dt.date(2027, 2, 3)  # a Wednesday: notice Monday 15, cut named for Wednesday 17
    invoice = overdue_invoice(due=due)
    walk(0, 12, due=due)
    assert sms(invoice, "final_notice")[0].endswith("avant le 17/02/2027, le courant sera coupé.")
    first, second, notice, cut = default_steps()

    ladder_edit(
        client,
        default_policy(),
        {
            first: (1, 3, REMIND, 1),
            second: (2, 7, REMIND, 2),
            notice: (3, 12, NOTICE, 2),
            cut: (4, 13, CUT, 1),
        },
    )
    report = dunning_run(as_of=day(13, due))  # Tuesday: the new day of the cut
    walk(14, 16, due=due)

    assert report.disconnections == 0
    assert steps_taken(invoice) == LADDER


@pytest.mark.parametrize(
    ("walked", "ladder", "then"),
    [
        # Its final notice went out: the new ladder's cut comes next, nothing before it.
        (12, [(2, REMIND), (4, NOTICE), (6, CUT)], [(14, CUT)]),
        (
            12,
            [(2, REMIND), (4, REMIND), (6, REMIND), (8, REMIND), (10, NOTICE), (14, CUT)],
            [(14, CUT)],
        ),
        # One reminder went out: the new ladder's second reminder comes next.
        (
            5,
            [(2, REMIND), (5, REMIND), (9, REMIND), (12, NOTICE), (15, CUT)],
            [(6, REMIND), (9, REMIND), (12, NOTICE), (15, CUT)],
        ),
        # Two reminders went out, the new ladder has one: its final notice, then the cut.
        (8, [(5, REMIND), (10, NOTICE), (12, CUT)], [(10, NOTICE), (14, CUT)]),
    ],
    ids=[
        "after-the-notice-shorter-ladder",
        "after-the-notice-longer-ladder",
        "after-one-reminder",
        "more-reminders-than-the-new-ladder",
    ],
)
def test_a_new_policy_takes_over_an_invoice_where_its_ladder_had_got_to(
    residential, walked, ladder, then
):
    invoice = overdue_invoice()
    walk(0, walked)
    taken = steps_taken(invoice)
    agency = DunningPolicy.objects.create(name="Gombe", agency=invoice.agency)
    for position, (days, action) in enumerate(ladder, start=1):
        DunningStep.objects.create(
            policy=agency,
            position=position,
            days_after_due=days,
            action=action,
            min_days_after_previous=1,
        )

    walk(walked + 1, 25)

    assert steps_taken(invoice) == taken + then
    assert Disconnection.objects.count() == (1 if (then and then[-1][1] == CUT) else 0)
