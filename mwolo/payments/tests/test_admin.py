"""The payments back office: who sees what, the actions, fixed query counts."""

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.geo.tests.factories import commune
from mwolo.payments import services
from mwolo.payments.models import CashSession, Payment, PaymentIntent, WebhookCall
from mwolo.payments.tests.factories import (
    D,
    PaymentIntentFactory,
    PaymentReviewFactory,
    cashier_of,
    site_with_invoices,
)

pytestmark = pytest.mark.django_db

PAYMENTS = reverse("admin:payments_payment_changelist")


def rows_of(agency):
    """One of each record the payments back office lists, for a client of ``agency``: a
    cash payment (30 000 CDF on 24 940 owed) at a cashier's till, a refund of part of the
    credit, a mobile-money request, and a case sent for review (with its own request)."""
    site, _ = site_with_invoices(agency=agency)
    cashier = cashier_of(agency)
    till = services.cash_session_open(
        cashier=cashier, agency_id=agency.pk, opening_cdf=D(0), opening_usd=D(0)
    )
    payment = services.payment_record_cash(
        cashier=cashier, client_id=site.client_id, amount=D(30000), currency="CDF"
    )
    refund = services.refund_record(
        actor=EmployeeFactory(role=Role.BILLING_AGENT, agency=agency),
        client_id=site.client_id,
        amount=D(1000),
        currency="CDF",
        method="bank",
        reason="Trop perçu",
    )
    intent = PaymentIntentFactory(client=site.client)
    review = PaymentReviewFactory(intent=PaymentIntentFactory(client=site.client))
    return {
        "payment": {payment},
        "cashsession": {till},
        "paymentintent": {intent, review.intent},
        "refund": {refund},
        "paymentreview": {review},
    }


@pytest.fixture
def world():
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    return {
        "gombe": gombe,
        "lubumbashi": lubumbashi,
        "own": rows_of(gombe),
        "other": rows_of(lubumbashi),
    }


LISTS = ["payment", "cashsession", "paymentintent", "refund", "paymentreview"]


@pytest.mark.parametrize("model", LISTS)
def test_an_agency_manager_sees_only_their_agency(client, world, model):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=world["gombe"]))

    listed = client.get(reverse(f"admin:payments_{model}_changelist"))

    assert listed.status_code == 200
    assert set(listed.context["cl"].result_list) == world["own"][model]
    text = listed.content.decode()
    for row in world["own"][model]:
        assert reverse(f"admin:payments_{model}_change", args=[row.pk]) in text
        opened = client.get(reverse(f"admin:payments_{model}_change", args=[row.pk]))
        assert opened.status_code == 200
    for row in world["other"][model]:
        assert reverse(f"admin:payments_{model}_change", args=[row.pk]) not in text
        foreign = client.get(reverse(f"admin:payments_{model}_change", args=[row.pk]))
        assert foreign.status_code == 302  # "does not exist", back to the list
        assert foreign["Location"] == reverse("admin:index")


def test_an_administrator_sees_every_agency(client, world):
    client.force_login(AdministratorFactory())

    for model in LISTS:
        listed = client.get(reverse(f"admin:payments_{model}_changelist"))
        assert set(listed.context["cl"].result_list) == world["own"][model] | world["other"][model]


def test_raw_operator_calls_are_for_administrators_only(client, world):
    WebhookCall.objects.create(provider="airtel", path="/x/", body="{}", outcome="rejected")
    url = reverse("admin:payments_webhookcall_changelist")

    assert client.get(url).status_code == 302
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=world["gombe"]))
    assert client.get(url).status_code == 403
    client.force_login(AdministratorFactory())
    assert client.get(url).status_code == 200


def test_reversing_asks_for_a_reason_and_only_managers_may(client, world):
    (payment,) = world["own"]["payment"]
    chosen = {"action": "reverse_payments", "_selected_action": [payment.pk]}
    client.force_login(CashSession.objects.get(agency=world["gombe"]).cashier)
    action_form = client.get(PAYMENTS).context["action_form"]
    assert action_form is None or "reverse_payments" not in dict(
        action_form.fields["action"].choices
    )

    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=world["gombe"])
    client.force_login(manager)
    asked = client.post(PAYMENTS, chosen)
    assert asked.status_code == 200
    assert "Annuler des paiements" in asked.content.decode()
    blank = client.post(PAYMENTS, {**chosen, "confirm": "yes", "reason": ""})
    assert "Ce champ est obligatoire." in blank.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.RECORDED

    done = client.post(
        PAYMENTS, {**chosen, "confirm": "yes", "reason": "Mauvais client"}, follow=True
    )

    assert f"{payment.receipt_number} annulé." in done.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.REVERSED
    # The audit trail says who reversed it and why, on the payment's history page too.
    entry = LogEntry.objects.get_for_object(payment).get(action=LogEntry.Action.UPDATE)
    assert entry.actor == manager
    assert entry.changes_dict["reversal_reason"] == ["", "Mauvais client"]
    assert entry.changes_dict["status"] == ["recorded", "reversed"]
    history = client.get(reverse("admin:payments_payment_auditlog", args=[payment.pk]))
    assert "Mauvais client" in history.content.decode()


@pytest.mark.parametrize(
    ("model", "role"),
    [
        *((model, role) for model in LISTS for role in (Role.ADMINISTRATOR, Role.AGENCY_MANAGER)),
        ("webhookcall", Role.ADMINISTRATOR),  # raw operator calls: administrators only
    ],
)
def test_the_lists_read_a_fixed_number_of_queries(
    client, world, model, role, django_assert_max_num_queries
):
    if role == Role.ADMINISTRATOR:
        client.force_login(AdministratorFactory())
    else:  # scoped: the agency's rows are found through joins
        client.force_login(EmployeeFactory(role=role, agency=world["gombe"]))
    url = reverse(f"admin:payments_{model}_changelist")
    if model == "webhookcall":
        WebhookCall.objects.create(provider="airtel", path="/x/", body="{}")

    def shown():
        response = client.get(url)
        assert response.status_code == 200
        return len(response.context["cl"].result_list)

    shown()  # the user's permissions and the session are read once
    with CaptureQueriesContext(connection) as few:
        before = shown()
    # Four more of everything in each agency: an N+1 would read more.
    for _ in range(4):
        for agency in (world["gombe"], world["lubumbashi"]):
            rows_of(agency)
            WebhookCall.objects.create(
                provider="airtel",
                path="/x/",
                body="{}",
                intent=PaymentIntent.objects.filter(client__agency=agency).first(),
            )

    with django_assert_max_num_queries(len(few)):
        after = shown()
    assert after > before
