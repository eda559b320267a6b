"""The payments back office: who sees what, the actions, fixed query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.geo.tests.factories import commune
from mwolo.payments import services
from mwolo.payments.models import CashSession, Payment, WebhookCall
from mwolo.payments.tests.factories import D, cashier_of, site_with_invoices

pytestmark = pytest.mark.django_db

PAYMENTS = reverse("admin:payments_payment_changelist")


@pytest.fixture
def world():
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    paid = {}
    for name, agency in (("own", gombe), ("other", lubumbashi)):
        site, _ = site_with_invoices(agency=agency)
        cashier = cashier_of(agency)
        services.cash_session_open(
            cashier=cashier, agency_id=agency.pk, opening_cdf=D(0), opening_usd=D(0)
        )
        paid[name] = services.payment_record_cash(
            cashier=cashier, client_id=site.client_id, amount=D(1000), currency="CDF"
        )
    return {"gombe": gombe, **paid}


@pytest.mark.parametrize("model", ["payment", "cashsession", "paymentintent", "refund"])
def test_an_agency_manager_sees_only_their_agency(client, world, model):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=world["gombe"]))

    listed = client.get(reverse(f"admin:payments_{model}_changelist"))

    assert listed.status_code == 200
    if model == "payment":
        text = listed.content.decode()
        assert world["own"].receipt_number in text
        assert world["other"].receipt_number not in text
        assert (
            client.get(reverse("admin:payments_payment_change", args=[world["own"].pk])).status_code
            == 200
        )
        foreign = client.get(reverse("admin:payments_payment_change", args=[world["other"].pk]))
        assert foreign.status_code == 302


def test_raw_operator_calls_are_for_administrators_only(client, world):
    WebhookCall.objects.create(provider="airtel", path="/x/", body="{}", outcome="rejected")
    url = reverse("admin:payments_webhookcall_changelist")

    assert client.get(url).status_code == 302
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=world["gombe"]))
    assert client.get(url).status_code == 403
    client.force_login(AdministratorFactory())
    assert client.get(url).status_code == 200


def test_reversing_asks_for_a_reason_and_only_managers_may(client, world):
    payment = world["own"]
    chosen = {"action": "reverse_payments", "_selected_action": [payment.pk]}
    client.force_login(CashSession.objects.get(agency=world["gombe"]).cashier)
    action_form = client.get(PAYMENTS).context["action_form"]
    assert action_form is None or "reverse_payments" not in dict(
        action_form.fields["action"].choices
    )

    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=world["gombe"]))
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


@pytest.mark.parametrize("model", ["payment", "cashsession", "paymentintent", "webhookcall"])
def test_the_lists_read_a_fixed_number_of_queries(client, world, model):
    client.force_login(AdministratorFactory())
    url = reverse(f"admin:payments_{model}_changelist")

    def count():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    count()
    few = count()
    cashier = CashSession.objects.get(agency=world["gombe"]).cashier
    site, _ = site_with_invoices(agency=world["gombe"])
    for _ in range(4):
        services.payment_record_cash(
            cashier=cashier, client_id=site.client_id, amount=D(10), currency="CDF"
        )
        WebhookCall.objects.create(provider="airtel", path="/x/", body="{}")
    assert count() == few
