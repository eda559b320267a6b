"""The review queue (Paiements à vérifier): money an operator reports that did not match
its request. A person records what the operator reports (a payment, its allocation, its
receipt) or records nothing (the case is closed with the reason); once, by those who may."""

import subprocess
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from mwolo.accounts.tests.factories import EmployeeFactory, PortalUserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing.models import Invoice
from mwolo.billing.selectors import client_balances
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.geo.tests.factories import commune
from mwolo.integrations.payments.base import PaymentStatus
from mwolo.notifications.models import Notification
from mwolo.payments import services
from mwolo.payments.models import Payment, PaymentIntent, PaymentReview
from mwolo.payments.tests.factories import (
    D,
    PaymentIntentFactory,
    PaymentReviewFactory,
    site_with_invoices,
)

pytestmark = pytest.mark.django_db

REVIEWS = reverse("admin:payments_paymentreview_changelist")


@pytest.fixture
def case():
    """Gombe's client owes 24 940 CDF; M-Pesa says 20 000 CDF were paid for the request
    of 24 940 CDF that paid the invoice. Lubumbashi is another agency."""
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    site, (invoice,) = site_with_invoices(agency=gombe)
    review = PaymentReviewFactory(
        intent=PaymentIntentFactory(
            client=site.client, purpose=PaymentIntent.Purpose.INVOICE, invoice=invoice
        )
    )
    return SimpleNamespace(
        gombe=gombe,
        lubumbashi=lubumbashi,
        client=site.client,
        invoice=invoice,
        review=review,
        intent=review.intent,
    )


def unchanged(case):
    """Nothing was written: the case open, no payment, the request and the invoice as
    they were, the balance in full."""
    review = PaymentReview.objects.get(pk=case.review.pk)
    assert (review.resolved_at, review.resolved_by, review.resolution) == (None, None, "")
    assert not Payment.objects.exists()
    intent = PaymentIntent.objects.get(pk=case.intent.pk)
    assert (intent.status, intent.amount) == (PaymentStatus.PENDING, D(24940))
    assert Invoice.objects.get(pk=case.invoice.pk).status == Invoice.Status.ISSUED
    assert client_balances(client_id=case.client.pk) == {"CDF": D("24940.00")}


def receipt_text(payment, tmp_path):
    from mwolo.payments.delivery import receipt_pdf

    path = tmp_path / "receipt.pdf"
    path.write_bytes(receipt_pdf(payment_id=payment.pk).open("rb").read())
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_recording_what_the_operator_reports_pays_the_invoice_with_a_receipt(
    case, tmp_path, django_capture_on_commit_callbacks
):
    agent = EmployeeFactory(role=Role.BILLING_AGENT, agency=case.gombe)

    with django_capture_on_commit_callbacks(execute=True):
        review = services.payment_review_resolve(
            review_id=case.review.pk, accept=True, note="Relevé Safaricom vérifié", actor=agent
        )

    payment = Payment.objects.get()
    assert (payment.client, payment.method, payment.amount, payment.currency) == (
        case.client,
        "mpesa",
        D(20000),
        "CDF",
    )
    assert payment.operator_transaction_id == case.review.operator_transaction_id
    assert payment.payer == "+243970000101"
    assert payment.intent == case.intent
    assert payment.receipt_number.startswith("REC-")
    # Allocated to the invoice, which is partly paid; 4 940 CDF left to pay.
    assert Invoice.objects.get(pk=case.invoice.pk).status == Invoice.Status.PARTIALLY_PAID
    assert client_balances(client_id=case.client.pk) == {"CDF": D("4940.00")}
    text = receipt_text(payment, tmp_path)
    assert payment.receipt_number in text
    assert "20 000,00" in text
    assert case.invoice.number in text
    assert Notification.objects.filter(event="payment_receipt", client=case.client).count() == 1
    # The case is closed, saying who and what was checked; the request is paid.
    assert review.resolved_by == agent
    assert review.resolved_at is not None
    assert review.resolution == "Enregistré : Relevé Safaricom vérifié"
    intent = PaymentIntent.objects.get(pk=case.intent.pk)
    assert (intent.status, intent.amount) == (PaymentStatus.SUCCEEDED, D(20000))


def test_recording_nothing_closes_the_case_with_the_reason_and_for_good(case):
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=case.gombe)

    review = services.payment_review_resolve(
        review_id=case.review.pk,
        accept=False,
        note="Safaricom rembourse le client",
        actor=manager,
    )

    assert review.resolution == "Non enregistré : Safaricom rembourse le client"
    assert (review.resolved_by, review.resolved_at is not None) == (manager, True)
    assert not Payment.objects.exists()
    assert Invoice.objects.get(pk=case.invoice.pk).status == Invoice.Status.ISSUED
    assert client_balances(client_id=case.client.pk) == {"CDF": D("24940.00")}
    # The request is over: the reconciliation never asks about it again, nor records it.
    intent = PaymentIntent.objects.get(pk=case.intent.pk)
    assert intent.status == PaymentStatus.FAILED
    assert intent.message == "Non enregistré après vérification : l’opérateur rend l’argent."
    assert services.payment_intents_reconcile().checked == 0


@pytest.mark.parametrize("accept", [True, False])
def test_a_case_is_resolved_once(case, accept):
    agent = EmployeeFactory(role=Role.BILLING_AGENT, agency=case.gombe)
    services.payment_review_resolve(
        review_id=case.review.pk, accept=accept, note="Vérifié", actor=agent
    )
    before = PaymentReview.objects.get(pk=case.review.pk)

    for again in (True, False):
        with pytest.raises(ApplicationError, match="Cette vérification est déjà traitée"):
            services.payment_review_resolve(
                review_id=case.review.pk, accept=again, note="Encore", actor=agent
            )

    after = PaymentReview.objects.get(pk=case.review.pk)
    assert (after.resolution, after.resolved_at) == (before.resolution, before.resolved_at)
    assert Payment.objects.count() == (1 if accept else 0)
    expected = {"CDF": D("4940.00")} if accept else {"CDF": D("24940.00")}
    assert client_balances(client_id=case.client.pk) == expected


@pytest.mark.parametrize(
    ("role", "at", "refusal"),
    [
        (Role.CASHIER, "lubumbashi", PermissionDenied),
        (Role.CASHIER, "gombe", PermissionDenied),
        (Role.BILLING_AGENT, "lubumbashi", "Cette vérification n’existe pas."),
        (Role.AGENCY_MANAGER, "lubumbashi", "Cette vérification n’existe pas."),
        (Role.SUPPORT_AGENT, "gombe", PermissionDenied),
        (Role.CLIENT, None, PermissionDenied),
    ],
)
@pytest.mark.parametrize("accept", [True, False])
def test_who_may_not_resolve_a_case_changes_nothing(case, role, at, refusal, accept):
    if role == Role.CLIENT:
        actor = PortalUserFactory()
        case.client.user = actor
        case.client.save()
    else:
        actor = EmployeeFactory(role=role, agency=getattr(case, at))

    if refusal is PermissionDenied:
        with pytest.raises(PermissionDenied):
            services.payment_review_resolve(
                review_id=case.review.pk, accept=accept, note="Vérifié", actor=actor
            )
    else:
        with pytest.raises(ApplicationError, match=refusal) as refused:
            services.payment_review_resolve(
                review_id=case.review.pk, accept=accept, note="Vérifié", actor=actor
            )
        assert refused.value.status == 404

    unchanged(case)


@pytest.mark.parametrize("note", ["", "   "])
@pytest.mark.parametrize("accept", [True, False])
def test_a_resolution_without_a_note_is_refused_on_the_note(case, note, accept):
    agent = EmployeeFactory(role=Role.BILLING_AGENT, agency=case.gombe)

    with pytest.raises(ValidationError) as refused:
        services.payment_review_resolve(
            review_id=case.review.pk, accept=accept, note=note, actor=agent
        )

    assert refused.value.message_dict == {"note": ["Dites ce que vous avez vérifié."]}
    unchanged(case)


def test_a_request_paid_meanwhile_is_not_paid_twice(case):
    """The reconciliation recorded the request while the case waited (Daraja's status
    query says "paid" and names no amount): recording the report again is refused,
    recording nothing closes the case and leaves that payment alone."""
    agent = EmployeeFactory(role=Role.BILLING_AGENT, agency=case.gombe)
    intent = PaymentIntent.objects.get(pk=case.intent.pk)
    paid = services._pay(
        services._locked_intent(intent.pk), transaction_id="ws_CO_1", payer="+243970000101"
    )

    with pytest.raises(ApplicationError, match=f"La demande {intent.reference} est déjà payée"):
        services.payment_review_resolve(
            review_id=case.review.pk, accept=True, note="Vérifié", actor=agent
        )
    assert PaymentReview.objects.get(pk=case.review.pk).resolved_at is None
    closed = services.payment_review_resolve(
        review_id=case.review.pk, accept=False, note="Déjà payé", actor=agent
    )

    assert closed.resolved_at is not None
    assert list(Payment.objects.all()) == [paid]
    assert PaymentIntent.objects.get(pk=intent.pk).status == PaymentStatus.SUCCEEDED
    assert client_balances(client_id=case.client.pk) == {"CDF": D("0.00")}


# --- The admin's actions ---------------------------------------------------------------------


def chosen(action, *reviews):
    return {"action": action, "_selected_action": [review.pk for review in reviews]}


@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.BILLING_AGENT])
def test_a_case_is_recorded_from_the_queue_after_a_confirmation(client, case, role):
    client.force_login(EmployeeFactory(role=role, agency=case.gombe))
    action = chosen("record_reported", case.review)

    asked = client.post(REVIEWS, action)

    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Enregistrer ce que l’opérateur indique" in page
    assert "montant 20000 au lieu de 24940.00" in page  # what is about to be recorded
    assert not Payment.objects.exists()

    done = client.post(REVIEWS, {**action, "confirm": "yes", "note": "Relevé vérifié"}, follow=True)

    payment = Payment.objects.get()
    assert f"{case.intent.reference} : paiement enregistré, reçu {payment.receipt_number}." in (
        done.content.decode()
    )
    assert payment.amount == D(20000)
    review = PaymentReview.objects.get(pk=case.review.pk)
    assert review.resolution == "Enregistré : Relevé vérifié"
    assert "Relevé vérifié" in done.content.decode()  # the queue shows how it was settled


def test_recording_nothing_from_the_queue_closes_the_case(client, case):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=case.gombe))
    action = chosen("refuse_reported", case.review)

    done = client.post(
        REVIEWS, {**action, "confirm": "yes", "note": "L’opérateur rembourse"}, follow=True
    )

    assert f"{case.intent.reference} : clos, rien n’a été enregistré." in done.content.decode()
    assert not Payment.objects.exists()
    review = PaymentReview.objects.get(pk=case.review.pk)
    assert review.resolution == "Non enregistré : L’opérateur rembourse"


@pytest.mark.parametrize("action", ["record_reported", "refuse_reported"])
def test_the_queue_asks_what_was_checked_and_writes_nothing_without_it(client, case, action):
    client.force_login(EmployeeFactory(role=Role.BILLING_AGENT, agency=case.gombe))

    blank = client.post(REVIEWS, {**chosen(action, case.review), "confirm": "yes", "note": ""})

    assert blank.status_code == 200
    assert "Ce champ est obligatoire." in blank.content.decode()
    unchanged(case)


def test_resolving_twice_from_the_queue_records_once(client, case):
    client.force_login(EmployeeFactory(role=Role.BILLING_AGENT, agency=case.gombe))
    action = {**chosen("record_reported", case.review), "confirm": "yes", "note": "Vérifié"}
    client.post(REVIEWS, action)

    again = client.post(REVIEWS, action, follow=True)

    assert "Cette vérification est déjà traitée." in again.content.decode()
    assert Payment.objects.count() == 1
    assert client_balances(client_id=case.client.pk) == {"CDF": D("4940.00")}


def test_a_case_of_another_agency_is_neither_shown_nor_resolved(client, case):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=case.lubumbashi))

    listed = client.get(REVIEWS)
    posted = client.post(
        REVIEWS,
        {**chosen("record_reported", case.review), "confirm": "yes", "note": "Vérifié"},
        follow=True,
    )

    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == []
    assert posted.status_code == 200
    unchanged(case)


@pytest.mark.parametrize("who", ["cashier", "client", "anonymous"])
def test_the_queue_is_closed_to_cashiers_clients_and_strangers(client, case, who):
    if who == "cashier":
        client.force_login(EmployeeFactory(role=Role.CASHIER, agency=case.gombe))
    elif who == "client":
        user = PortalUserFactory()
        case.client.user = user
        case.client.save()
        client.force_login(user)

    listed = client.get(REVIEWS)
    posted = client.post(
        REVIEWS, {**chosen("record_reported", case.review), "confirm": "yes", "note": "Vérifié"}
    )

    if who == "cashier":  # staff, without the permission to see the queue
        assert (listed.status_code, posted.status_code) == (403, 403)
    else:  # not staff: sent to the login page
        assert listed.status_code == posted.status_code == 302
        assert listed["Location"].startswith(reverse("admin:login"))
    unchanged(case)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_queue_in_a_browser(page, live_server, screenshots):
    gombe = AgencyFactory(code="KIN-GOM")
    site, (invoice,) = site_with_invoices(agency=gombe)
    settled = PaymentReviewFactory(
        intent=PaymentIntentFactory(client=site.client), amount=D(24940), payer="+243970000777"
    )
    settled.reason = "payé depuis +243970000777"
    settled.save()
    open_case = PaymentReviewFactory(
        intent=PaymentIntentFactory(
            client=site.client, purpose=PaymentIntent.Purpose.INVOICE, invoice=invoice
        )
    )
    EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe, username="facturation.gombe")
    services.payment_review_resolve(
        review_id=settled.pk,
        accept=False,
        note="Numéro d’un parent, vérifié par téléphone",
        actor=EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe),
    )
    page.goto(reverse("admin:login"))
    page.fill("input[name=username]", "facturation.gombe")
    page.fill("input[name=password]", "motdepasse-solide-2026")
    page.locator("form [type=submit]").click()
    page.wait_for_url(f"{live_server.url}{reverse('admin:index')}")

    page.goto(REVIEWS, wait_until="networkidle")
    rows = page.locator("#result_list tbody tr")
    assert open_case.intent.reference in rows.nth(0).inner_text()  # the open case first
    assert "Numéro d’un parent" in rows.nth(1).inner_text()
    page.screenshot(path=screenshots / "review-queue.png", full_page=True)
    rows.nth(0).locator("input.action-select").check()
    page.select_option("select[name=action]", "record_reported")
    page.locator("button[name=index], button[type=submit][title]").first.click()
    page.wait_for_load_state("networkidle")
    page.fill("input[name=note]", "Relevé Safaricom vérifié")
    page.screenshot(path=screenshots / "review-confirm.png", full_page=True)
    page.get_by_role("button", name="Confirmer").click()
    page.wait_for_load_state("networkidle")

    receipt = Payment.objects.get().receipt_number
    assert f"paiement enregistré, reçu {receipt}" in page.inner_text("body")
    page.screenshot(path=screenshots / "review-done.png", full_page=True)
