"""Giving credit back: the API (POST /api/payments/refunds/) and the back office's page
with its confirmation step. Never beyond the client's credit; cash from the open till of
whoever gives it, never beyond what it holds; only the roles with payments.add_refund."""

from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing.models import AccountEntry
from mwolo.billing.selectors import client_balances
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.geo.tests.factories import commune
from mwolo.payments import services
from mwolo.payments.models import CashSession, Refund
from mwolo.payments.tests.factories import D, cashier_of, site_with_invoices

pytestmark = pytest.mark.django_db

REFUNDS = "/api/payments/refunds/"
ADD = reverse("admin:payments_refund_add")
CREDIT = D("5060.00")  # 30 000 CDF paid on an invoice of 24 940 CDF


def paid_over(agency):
    """A client of ``agency`` who paid 30 000 CDF cash on 24 940 CDF owed: 5 060 of credit."""
    site, _ = site_with_invoices(agency=agency)
    cashier = cashier_of(agency)
    services.cash_session_open(
        cashier=cashier, agency_id=agency.pk, opening_cdf=D(0), opening_usd=D(0)
    )
    services.payment_record_cash(
        cashier=cashier, client_id=site.client_id, amount=D(30000), currency="CDF"
    )
    return site.client


@pytest.fixture
def world():
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    return {
        "gombe": gombe,
        "lubumbashi": lubumbashi,
        "own": paid_over(gombe),
        "other": paid_over(lubumbashi),
    }


def employee(world, role, *, till=None):
    """An employee of Gombe; with ``till`` (CDF), their till open with that float."""
    user = EmployeeFactory(role=role, agency=world["gombe"])
    if till is not None:
        services.cash_session_open(
            cashier=user, agency_id=world["gombe"].pk, opening_cdf=D(till), opening_usd=D(0)
        )
    return user


def portal_user(world):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
    client = world["own"]
    client.user = user
    client.save()
    return user


def api_as(user):
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def refund(world, **changes):
    return {
        "client": world["own"].pk,
        "amount": "5060",
        "currency": "CDF",
        "method": "cash",
        "reason": "Trop perçu en octobre",
        **changes,
    }


def untouched(world):
    """Nothing written: no refund, both credits whole, no refund entry."""
    assert not Refund.objects.exists()
    assert not AccountEntry.objects.filter(kind=AccountEntry.Kind.REFUND).exists()
    for name in ("own", "other"):
        assert client_balances(client_id=world[name].pk) == {"CDF": -CREDIT}


def audited(refund, actor):
    """The refund's audit entry: who gave the money back, how much and why."""
    entry = LogEntry.objects.get_for_object(refund).get()
    assert (entry.action, entry.actor) == (LogEntry.Action.CREATE, actor)
    assert entry.changes_dict["reason"][1] == "Trop perçu en octobre"
    assert D(entry.changes_dict["amount"][1]) == CREDIT


# --- API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.BILLING_AGENT])
def test_credit_is_given_back_in_cash_from_the_open_till(world, role):
    user = employee(world, role, till=10000)

    response = api_as(user).post(REFUNDS, refund(world))

    assert response.status_code == 201
    body = response.json()
    assert (body["amount"], body["currency"], body["method_label"]) == ("5060.00", "CDF", "Espèces")
    assert body["reason"] == "Trop perçu en octobre"
    made = Refund.objects.get()
    assert (made.client, made.refunded_by) == (world["own"], user)
    till = CashSession.objects.get(cashier=user)
    assert made.cash_session == till
    assert services.cash_session_expected(till) == {"CDF": D("4940.00"), "USD": D("0.00")}
    assert client_balances(client_id=world["own"].pk) == {"CDF": D("0.00")}
    assert client_balances(client_id=world["other"].pk) == {"CDF": -CREDIT}
    listed = api_as(user).get(REFUNDS).json()["results"]
    assert [row["id"] for row in listed] == [made.pk]
    audited(made, user)


def test_credit_given_back_by_transfer_needs_no_till(world):
    user = employee(world, Role.BILLING_AGENT)

    response = api_as(user).post(REFUNDS, refund(world, amount="1000", method="bank"))

    assert response.status_code == 201
    assert Refund.objects.get().cash_session is None
    assert client_balances(client_id=world["own"].pk) == {"CDF": D("-4060.00")}


@pytest.mark.parametrize(
    ("till", "changes", "field", "message"),
    [
        (10000, {"amount": "5060.01"}, "amount", "Le crédit du client est de 5\xa0060,00 CDF."),
        (
            10000,
            {"amount": "1", "currency": "USD"},
            "amount",
            "Le crédit du client est de 0,00 USD.",
        ),
        (1000, {}, "amount", "Votre caisse contient 1\xa0000,00 CDF : pas assez."),
        (None, {}, "method", "Ouvrez votre caisse avant de rendre des espèces."),
        (10000, {"reason": ""}, "reason", None),
        (10000, {"reason": "   "}, "reason", None),
        (10000, {"amount": "0"}, "amount", None),
        (10000, {"amount": "-5"}, "amount", None),
        (10000, {"amount": "abc"}, "amount", None),
        (10000, {"currency": "EUR"}, "currency", None),
        (10000, {"method": "cheque"}, "method", None),
    ],
)
def test_a_refund_beyond_the_credit_or_the_till_or_badly_asked_is_a_400_and_writes_nothing(
    world, till, changes, field, message
):
    user = employee(world, Role.AGENCY_MANAGER, till=till)

    response = api_as(user).post(REFUNDS, refund(world, **changes))

    assert response.status_code == 400
    assert field in response.json()
    if message:
        assert response.json()[field] == [message]
    untouched(world)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("other agency's client", 404),
        ("client", 403),
        ("cashier", 403),
        ("support_agent", 403),
        ("anonymous", 401),
    ],
)
def test_who_may_not_give_credit_back_writes_nothing(world, who, status):
    target = world["own"]
    if who == "other agency's client":
        user, target = employee(world, Role.AGENCY_MANAGER, till=10000), world["other"]
    elif who == "client":
        user = portal_user(world)
    elif who == "anonymous":
        user = None
    else:
        user = employee(world, Role(who), till=10000 if who == "cashier" else None)

    response = api_as(user).post(REFUNDS, refund(world, client=target.pk))

    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    untouched(world)


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        ("anonymous", None),
        ("administrator", {"own", "other"}),
        ("agency_manager", {"own"}),
        ("billing_agent", {"own"}),
        ("cashier", {"own"}),
        ("support_agent", None),
        ("client", None),
    ],
)
def test_who_sees_which_refunds(world, actor, sees):
    made = {}
    for name in ("own", "other"):
        agency = world["gombe"] if name == "own" else world["lubumbashi"]
        made[name] = services.refund_record(
            actor=EmployeeFactory(role=Role.BILLING_AGENT, agency=agency),
            client_id=world[name].pk,
            amount=D(100),
            currency="CDF",
            method="bank",
            reason="Trop perçu",
        )
    if actor == "anonymous":
        user = None
    elif actor == "administrator":
        user = AdministratorFactory()
    elif actor == "client":
        user = portal_user(world)
    else:
        user = employee(world, Role(actor))
    api = api_as(user)

    listed = api.get(REFUNDS)

    if sees is None:
        assert listed.status_code in (401, 403)
        assert api.get(f"{REFUNDS}{made['own'].pk}/").status_code in (401, 403)
        return
    assert {row["id"] for row in listed.json()["results"]} == {made[n].pk for n in sees}
    for name in ("own", "other"):
        detail = api.get(f"{REFUNDS}{made[name].pk}/")
        assert detail.status_code == (200 if name in sees else 404)


def test_the_refund_list_reads_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    api = api_as(AdministratorFactory())

    def give_back(name, agency):
        services.refund_record(
            actor=EmployeeFactory(role=Role.BILLING_AGENT, agency=agency),
            client_id=world[name].pk,
            amount=D(100),
            currency="CDF",
            method="bank",
            reason="Trop perçu",
        )

    give_back("own", world["gombe"])
    api.get(REFUNDS)  # the user's permissions are read once
    with CaptureQueriesContext(connection) as one:
        assert len(api.get(REFUNDS).json()["results"]) == 1
    for _ in range(4):
        give_back("own", world["gombe"])
        give_back("other", world["lubumbashi"])

    with django_assert_max_num_queries(len(one)):
        assert len(api.get(REFUNDS).json()["results"]) == 9


# --- Back office -------------------------------------------------------------------------------


def step_one(world, **changes):
    return {
        "client": world["own"].pk,
        "amount": "5060",
        "currency": "CDF",
        "method": "cash",
        "reason": "Trop perçu en octobre",
        **changes,
    }


@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.BILLING_AGENT])
def test_the_back_office_gives_credit_back_after_a_confirmation(client, world, role):
    user = employee(world, role, till=10000)
    client.force_login(user)
    listed = client.get(reverse("admin:payments_refund_changelist"))
    assert ADD in listed.content.decode()  # the "add" button is offered

    form = client.get(ADD)
    asked = client.post(ADD, step_one(world))

    assert form.status_code == 200
    assert "Rembourser le crédit d’un client" in form.content.decode()
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Confirmer le remboursement" in page
    assert "5\xa0060,00 CDF" in page  # the credit, and what is given back
    assert "elle doit contenir 10\xa0000,00 CDF" in page  # the till it comes from
    assert str(world["own"]) in page
    untouched(world)  # not before it is confirmed
    edit = client.post(ADD, {**step_one(world), "confirm": "yes", "edit": "yes"})
    assert edit.context["plan"] is None  # back to the form, as filled in
    assert edit.context["form"]["reason"].value() == "Trop perçu en octobre"
    untouched(world)

    done = client.post(ADD, {**step_one(world), "confirm": "yes"}, follow=True)

    made = Refund.objects.get()
    assert done.redirect_chain[-1][0] == reverse("admin:payments_refund_change", args=[made.pk])
    assert f"5\xa0060,00 CDF rendus à {world['own']}." in done.content.decode()
    assert (made.client, made.amount, made.method, made.refunded_by) == (
        world["own"],
        D(5060),
        "cash",
        user,
    )
    assert made.cash_session == CashSession.objects.get(cashier=user)
    assert client_balances(client_id=world["own"].pk) == {"CDF": D("0.00")}
    audited(made, user)
    history = client.get(reverse("admin:payments_refund_auditlog", args=[made.pk]))
    assert "Trop perçu en octobre" in history.content.decode()


@pytest.mark.parametrize("confirm", [False, True])
def test_the_back_office_refuses_more_than_the_credit_on_the_amount(client, world, confirm):
    client.force_login(employee(world, Role.AGENCY_MANAGER, till=10000))
    data = step_one(world, amount="6000")
    if confirm:  # the credit went down between the two steps
        data["confirm"] = "yes"

    refused = client.post(ADD, data)

    assert refused.status_code == 200
    assert refused.context["form"].errors == {
        "amount": ["Le crédit du client est de 5\xa0060,00 CDF."]
    }
    assert "Le crédit du client est de 5\xa0060,00 CDF." in refused.content.decode()
    untouched(world)


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"reason": ""}, "reason"), ({"amount": ""}, "amount"), ({"currency": "EUR"}, "currency")],
)
def test_the_back_office_form_says_what_is_missing_and_writes_nothing(
    client, world, changes, field
):
    client.force_login(employee(world, Role.BILLING_AGENT, till=10000))

    refused = client.post(ADD, {**step_one(world, **changes), "confirm": "yes"})

    assert refused.status_code == 200
    assert field in refused.context["form"].errors
    untouched(world)


def test_the_back_office_offers_no_client_of_another_agency(client, world):
    client.force_login(employee(world, Role.AGENCY_MANAGER, till=10000))

    refused = client.post(ADD, {**step_one(world, client=world["other"].pk), "confirm": "yes"})

    assert refused.status_code == 200
    assert "client" in refused.context["form"].errors
    untouched(world)


@pytest.mark.parametrize("who", ["cashier", "client", "anonymous"])
def test_the_refund_page_is_closed_to_cashiers_clients_and_strangers(client, world, who):
    if who == "cashier":
        client.force_login(employee(world, Role.CASHIER, till=10000))
    elif who == "client":
        client.force_login(portal_user(world))

    shown = client.get(ADD)
    posted = client.post(ADD, {**step_one(world), "confirm": "yes"})

    if who == "cashier":
        assert (shown.status_code, posted.status_code) == (403, 403)
        listed = client.get(reverse("admin:payments_refund_changelist"))
        assert ADD not in listed.content.decode()
    else:
        assert shown.status_code == posted.status_code == 302
        assert shown["Location"].startswith(reverse("admin:login"))
    untouched(world)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_refund_page_in_a_browser(page, live_server, screenshots):
    gombe = AgencyFactory(code="KIN-GOM")
    owner = paid_over(gombe)
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe, username="gerant.gombe")
    services.cash_session_open(
        cashier=manager, agency_id=gombe.pk, opening_cdf=D(10000), opening_usd=D(0)
    )
    page.goto(reverse("admin:login"))
    page.fill("input[name=username]", "gerant.gombe")
    page.fill("input[name=password]", "motdepasse-solide-2026")
    page.locator("form [type=submit]").click()
    page.wait_for_url(f"{live_server.url}{reverse('admin:index')}")

    page.goto(ADD, wait_until="networkidle")
    # The client is searched, as in the clients' list.
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").fill(owner.number)
    page.locator(".select2-results__option", has_text=owner.number).click()
    page.fill("input[name=amount]", "2000")
    page.fill("input[name=reason]", "Trop perçu en octobre")
    page.screenshot(path=screenshots / "refund-form.png", full_page=True)
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_load_state("networkidle")
    summary = page.inner_text("#refund-summary")
    assert "5 060,00 CDF" in summary.replace("\u202f", " ").replace("\xa0", " ")
    page.screenshot(path=screenshots / "refund-confirm.png", full_page=True)
    page.get_by_role("button", name="Confirmer").click()
    page.wait_for_load_state("networkidle")

    assert "rendus à" in page.inner_text("body")
    page.screenshot(path=screenshots / "refund-done.png", full_page=True)
    assert Refund.objects.get().amount == Decimal(2000)
    assert client_balances(client_id=owner.pk) == {"CDF": D("-3060.00")}
