"""The dunning back office: who sees what, the pages' query counts, and staff's actions."""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mwolo.accounts.tests.factories import EmployeeFactory, PortalUserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core import clock
from mwolo.core.permissions import Role, visible_to
from mwolo.dunning.models import (
    Disconnection,
    DunningExemption,
    DunningPolicy,
    DunningStep,
    PromiseToPay,
    PublicHoliday,
    Reminder,
)
from mwolo.dunning.services import dunning_exemption_grant, promise_to_pay_record
from mwolo.dunning.tests.factories import billed_site, open_episode, overdue_invoice
from mwolo.dunning.tests.test_ladder import walk
from mwolo.geo.tests.factories import commune
from mwolo.metering.models import MeterCommand
from mwolo.metering.tests.factories import installed_meter
from mwolo.notifications.models import Notification

pytestmark = pytest.mark.django_db

DUE = dt.date(2026, 11, 2)  # cut on Monday 16 November
MODELS = ["reminder", "disconnection", "promisetopay", "dunningexemption"]


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )


def dunned(agency) -> dict:
    """A site cut, a promise and an exemption at ``agency``."""
    cut = overdue_invoice(agency=agency, due=DUE)
    walk(0, 14, due=DUE, agency_id=agency.pk)
    promised = overdue_invoice(agency=agency, due=DUE)
    promise = promise_to_pay_record(
        client_id=promised.client_id,
        invoice_id=promised.pk,
        promised_on=clock.today("Africa/Kinshasa") + dt.timedelta(days=7),
        amount=Decimal(10000),
        reason="Salaire",
        actor=None,
    )
    exempt = billed_site(agency=agency)
    exemption = dunning_exemption_grant(
        client_id=exempt.client_id,
        site_id=exempt.pk,
        effect=DunningExemption.Effect.NO_DISCONNECTION,
        reason=f"Hôpital général de {agency.name}",
        actor=None,
    )
    return {
        "invoice": cut,
        "reminder": Reminder.objects.filter(invoice=cut).first(),
        "disconnection": open_episode(cut.site),
        "promisetopay": promise,
        "dunningexemption": exemption,
    }


def pages(model: str, row) -> tuple[str, str]:
    return (
        reverse(f"admin:dunning_{model}_changelist"),
        reverse(f"admin:dunning_{model}_change", args=[row.pk]),
    )


def marker(model: str, records: dict) -> str:
    if model == "dunningexemption":
        return records["dunningexemption"].reason
    if model == "promisetopay":
        return records["promisetopay"].client.number
    if model == "disconnection":
        return records["invoice"].site.reference
    return records["invoice"].number


def offered_actions(response) -> set[str]:
    form = response.context["action_form"]
    return set() if form is None else set(dict(form.fields["action"].choices)) - {""}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.BILLING_AGENT, Role.SUPPORT_AGENT])
def test_staff_see_only_their_agencys_dunning(client, gombe, lubumbashi, residential, model, role):
    mine, theirs = dunned(gombe), dunned(lubumbashi)
    client.force_login(EmployeeFactory(role=role, agency=gombe))
    list_url, own_url = pages(model, mine[model])

    listed = client.get(list_url)

    assert listed.status_code == 200
    text = listed.content.decode()
    assert marker(model, mine) in text
    assert marker(model, theirs) not in text
    assert client.get(own_url).status_code == 200
    foreign = client.get(pages(model, theirs[model])[1])
    assert foreign["Location"] == reverse("admin:index")


@pytest.mark.parametrize("model", MODELS)
def test_clients_are_sent_to_the_login_page(client, gombe, residential, model):
    mine = dunned(gombe)
    portal_user = PortalUserFactory()
    owner = mine["invoice"].client
    owner.user = portal_user
    owner.save()
    client.force_login(portal_user)

    response = client.get(pages(model, mine[model])[0])

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_client_reads_their_own_reminders_only(gombe, residential):
    mine, other = dunned(gombe), overdue_invoice(agency=gombe, due=DUE)
    walk(3, 3, due=DUE)
    portal_user = PortalUserFactory()
    owner = mine["invoice"].client
    owner.user = portal_user
    owner.save()

    seen = visible_to(Reminder.objects.all(), portal_user)

    assert portal_user.has_perm("dunning.view_reminder")
    assert set(seen.values_list("invoice", flat=True)) == {mine["invoice"].pk}
    assert Reminder.objects.filter(invoice=other).exists()


@pytest.mark.parametrize("model", ["reminder", "disconnection"])
def test_list_pages_cost_the_same_queries_for_one_or_many_rows(client, gombe, residential, model):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    url = reverse(f"admin:dunning_{model}_changelist")
    overdue_invoice(agency=gombe, due=DUE)
    walk(0, 14, due=DUE)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200

    later = DUE + dt.timedelta(days=28)  # cut on Monday 14 December
    for _ in range(4):
        overdue_invoice(agency=gombe, due=later)
    walk(0, 14, due=later)
    with CaptureQueriesContext(connection) as five:
        assert client.get(url).status_code == 200

    assert Disconnection.objects.count() == 5
    assert len(five.captured_queries) == len(one.captured_queries)


# --- Actions -------------------------------------------------------------------------------


def test_reconnecting_asks_for_a_reason_then_reconnects(client, gombe, residential):
    records = dunned(gombe)
    episode = records["disconnection"]
    client.force_login(EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe))
    url = reverse("admin:dunning_disconnection_changelist")
    chosen = {"action": "reconnect", "_selected_action": [episode.pk]}

    asked = client.post(url, chosen)
    assert asked.status_code == 200
    assert "Rétablir des sites" in asked.content.decode()
    assert records["invoice"].site.reference in asked.content.decode()

    refused = client.post(url, {**chosen, "confirm": "yes", "reason": ""})
    assert "Ce champ est obligatoire." in refused.content.decode()
    assert open_episode(records["invoice"].site) == episode

    done = client.post(url, {**chosen, "confirm": "yes", "reason": "Malade sous oxygène"})
    assert done.status_code == 302
    episode.refresh_from_db()
    assert (episode.closed_reason, episode.close_note) == ("override", "Malade sous oxygène")


def test_support_agents_read_but_do_not_reconnect(client, gombe, residential):
    dunned(gombe)
    client.force_login(EmployeeFactory(role=Role.SUPPORT_AGENT, agency=gombe))

    listed = client.get(reverse("admin:dunning_disconnection_changelist"))

    assert offered_actions(listed) == set()
    assert client.get(reverse("admin:dunning_promisetopay_add")).status_code == 403


def test_a_promise_recorded_in_the_admin_goes_through_the_service(client, gombe, residential):
    invoice = overdue_invoice(agency=gombe, due=DUE)
    client.force_login(EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe))
    url = reverse("admin:dunning_promisetopay_add")
    form = {
        "client": invoice.client_id,
        "invoice": invoice.pk,
        "amount": "10000",
        "currency": "",
        "reason": "Salaire du mois",
    }

    past = client.post(url, {**form, "promised_on": "01/01/2026"})
    assert past.status_code == 200
    assert "Ce jour est passé." in past.content.decode()
    assert not PromiseToPay.objects.exists()

    soon = clock.today("Africa/Kinshasa") + dt.timedelta(days=5)
    done = client.post(url, {**form, "promised_on": soon.strftime("%d/%m/%Y")})

    assert done.status_code == 302
    promise = PromiseToPay.objects.get()
    assert (promise.currency, promise.recorded_by.username) == (
        "CDF",
        done.wsgi_request.user.username,
    )


def test_an_exemption_granted_in_the_admin_is_read_only_and_ends_by_the_action(
    client, gombe, residential
):
    site = billed_site(agency=gombe)
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    added = client.post(
        reverse("admin:dunning_dunningexemption_add"),
        {
            "client": site.client_id,
            "site": site.pk,
            "effect": "hold",
            "reason": "Facture contestée",
            "starts_on": "",
            "ends_on": "",
        },
    )
    assert "Une suspension doit avoir son dernier jour." in added.content.decode()
    assert not DunningExemption.objects.exists()

    exemption = dunning_exemption_grant(
        client_id=site.client_id, effect="no_disconnection", reason="Hôpital", actor=None
    )
    url = reverse("admin:dunning_dunningexemption_changelist")
    client.post(url, {"action": "end_today", "_selected_action": [exemption.pk]})

    exemption.refresh_from_db()
    assert exemption.ends_on == clock.today("Africa/Kinshasa")
    change = client.post(pages("dunningexemption", exemption)[1], {"reason": "autre"})
    assert change.status_code == 403


# --- Policies ------------------------------------------------------------------------------


def policy_form(agency, steps: list[tuple[int, int, str, int]]) -> dict:
    data = {
        "name": "Gombe commerces",
        "agency": agency.pk,
        "site_category": "commercial",
        "is_active": "on",
        "minimum_cdf": "1000",
        "minimum_usd": "1",
        "promise_max_days": "15",
        "quiet_weekends": "on",
        "quiet_public_holidays": "on",
        "disconnection_cutoff": "14:00",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for index, (position, days, action, gap) in enumerate(steps):
        data.update(
            {
                f"steps-{index}-position": str(position),
                f"steps-{index}-days_after_due": str(days),
                f"steps-{index}-action": action,
                f"steps-{index}-channel": "preferred",
                f"steps-{index}-min_days_after_previous": str(gap),
            }
        )
    return data


def test_an_agency_writes_its_own_policy_and_reads_the_default(client, gombe, lubumbashi):
    DunningPolicy.objects.create(name="Lubumbashi", agency=lubumbashi)
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    listed = client.get(reverse("admin:dunning_dunningpolicy_changelist")).content.decode()
    assert "Politique par défaut" in listed
    assert "Lubumbashi" not in listed
    default = DunningPolicy.objects.get(agency=None, site_category="")
    assert client.post(pages("dunningpolicy", default)[1], {}).status_code == 403

    url = reverse("admin:dunning_dunningpolicy_add")
    skipped = client.post(url, policy_form(gombe, [(1, 3, "remind", 1), (2, 10, "disconnect", 2)]))
    assert "La coupure est la dernière étape, juste après le dernier avis." in (
        skipped.content.decode()
    )
    done = client.post(
        url,
        policy_form(
            gombe,
            [(1, 5, "remind", 1), (2, 10, "final_notice", 2), (3, 12, "disconnect", 2)],
        ),
    )

    assert done.status_code == 302
    policy = DunningPolicy.objects.get(agency=gombe)
    assert [step.action for step in policy.steps.order_by("position")] == [
        "remind",
        "final_notice",
        "disconnect",
    ]


def test_a_step_less_than_a_day_after_the_previous_one_is_refused_on_its_field(client, gombe):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))

    refused = client.post(
        reverse("admin:dunning_dunningpolicy_add"),
        policy_form(
            gombe,
            [(1, 5, "remind", 1), (2, 10, "final_notice", 2), (3, 10, "disconnect", 0)],
        ),
    )

    assert refused.status_code == 200
    [steps] = refused.context["inline_admin_formsets"]
    assert steps.formset.errors[2] == {
        "min_days_after_previous": [
            "Au moins 1 jour : une facture franchit une étape par jour au plus."
        ]
    }
    assert "Au moins 1 jour : une facture franchit une étape par jour au plus." in (
        refused.content.decode()
    )
    assert not DunningPolicy.objects.filter(agency=gombe).exists()


def test_steps_saved_with_a_gap_of_0_days_get_a_day():
    migration = importlib.import_module("mwolo.dunning.migrations.0005_step_gap_at_least_one_day")
    DunningStep.objects.filter(position__lte=2).update(min_days_after_previous=0)

    migration.at_least_one_day(django_apps, None)

    assert not DunningStep.objects.filter(min_days_after_previous__lt=1).exists()
    assert DunningStep.objects.filter(min_days_after_previous=2).exists()  # others kept


# --- Anonymous visitors --------------------------------------------------------------------


@pytest.mark.parametrize("model", [*MODELS, "dunningpolicy", "publicholiday"])
def test_an_anonymous_visitor_is_sent_to_the_login_page_and_sees_nothing(
    client, gombe, residential, model
):
    records = dunned(gombe)
    row = {
        "dunningpolicy": DunningPolicy.objects.get(agency=None, site_category=""),
        "publicholiday": PublicHoliday.objects.first(),
    }.get(model) or records[model]
    list_url = reverse(f"admin:dunning_{model}_changelist")
    change_url = reverse(f"admin:dunning_{model}_change", args=[row.pk])

    for url in (list_url, change_url):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('admin:login')}?next={url}"


def test_an_anonymous_visitor_cannot_reconnect_nor_record_anything(client, gombe, residential):
    records = dunned(gombe)
    episode = records["disconnection"]

    posted = client.post(
        reverse("admin:dunning_disconnection_changelist"),
        {
            "action": "reconnect",
            "_selected_action": [episode.pk],
            "confirm": "yes",
            "reason": "Anonyme",
        },
    )
    promised = client.post(
        reverse("admin:dunning_promisetopay_add"),
        {
            "client": records["invoice"].client_id,
            "promised_on": "31/12/2026",
            "amount": "1000",
            "reason": "Anonyme",
        },
    )

    assert posted.status_code == promised.status_code == 302
    assert open_episode(records["invoice"].site) == episode
    assert not MeterCommand.objects.filter(action="connect").exists()
    assert PromiseToPay.objects.count() == 1  # the one dunned() recorded


# --- Query counts ----------------------------------------------------------------------------


def page_queries(client, url: str) -> int:
    """Queries of a page served a second time: the first fills per-process caches
    (content types and the like) that a test run alone would count once."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("model", ["promisetopay", "dunningexemption"])
def test_promise_and_exemption_lists_cost_the_same_queries_for_one_or_many_rows(
    client, gombe, residential, model
):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    url = reverse(f"admin:dunning_{model}_changelist")
    dunned(gombe)
    one = page_queries(client, url)

    for _ in range(4):
        dunned(gombe)
    many = page_queries(client, url)

    model_class = PromiseToPay if model == "promisetopay" else DunningExemption
    assert model_class.objects.count() == 5
    assert many == one


def test_the_policy_list_shows_every_ladder_for_the_same_queries(client, gombe, lubumbashi):
    client.force_login(EmployeeFactory(role=Role.ADMINISTRATOR))
    url = reverse("admin:dunning_dunningpolicy_changelist")
    one = page_queries(client, url)

    for agency in (gombe, lubumbashi):
        for category in ("residential", "commercial"):
            policy = DunningPolicy.objects.create(
                name=f"{agency.code} {category}", agency=agency, site_category=category
            )
            for position, (days, action) in enumerate(
                [(5, "remind"), (10, "final_notice"), (13, "disconnect")], start=1
            ):
                policy.steps.create(position=position, days_after_due=days, action=action)
    listed = client.get(url).content.decode()
    many = page_queries(client, url)

    assert DunningPolicy.objects.count() == 6
    assert listed.count("J+5 : Rappel → J+10 : Dernier avis → J+13 : Coupure") == 4
    assert many == one


def test_a_disconnection_page_costs_the_same_queries_for_one_meter_or_four(
    client, gombe, residential
):
    single = overdue_invoice(agency=gombe, due=DUE)
    several = overdue_invoice(agency=gombe, due=DUE)
    for _ in range(3):  # after billing: the invoice counted the first meter's readings
        installed_meter(several.site)
    walk(0, 14, due=DUE, agency_id=gombe.pk)
    episodes = [open_episode(single.site), open_episode(several.site)]
    assert [episode.meters.count() for episode in episodes] == [1, 4]
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))

    one, four = (
        page_queries(client, reverse("admin:dunning_disconnection_change", args=[episode.pk]))
        for episode in episodes
    )

    page = client.get(reverse("admin:dunning_disconnection_change", args=[episodes[1].pk]))
    text = page.content.decode()
    for row in episodes[1].meters.select_related("meter", "cut_command"):
        assert row.meter.serial in text
        assert row.cut_command.action == "disconnect"
    assert text.count("<p>En attente</p>") == 4  # each meter's disconnect command, queued
    assert four == one


# --- Actions across agencies ---------------------------------------------------------------


def test_the_reconnect_action_ignores_another_agencys_disconnection(
    client, gombe, lubumbashi, residential
):
    mine, theirs = dunned(gombe), dunned(lubumbashi)
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    url = reverse("admin:dunning_disconnection_changelist")
    chosen = {"action": "reconnect", "confirm": "yes", "reason": "Erreur de relevé"}

    alone = client.post(url, {**chosen, "_selected_action": [theirs["disconnection"].pk]})
    both = client.post(
        url,
        {
            **chosen,
            "_selected_action": [mine["disconnection"].pk, theirs["disconnection"].pk],
        },
    )

    assert alone.status_code == both.status_code == 302
    assert open_episode(theirs["invoice"].site) == theirs["disconnection"]
    assert open_episode(mine["invoice"].site) is None
    assert list(
        MeterCommand.objects.filter(action="connect").values_list("meter__site", flat=True)
    ) == [mine["invoice"].site_id]
    assert not Notification.objects.filter(
        client_id=theirs["invoice"].client_id, event="reconnection"
    ).exists()
