"""The billing back office as staff use it: who sees which runs, invoices and credit notes,
and the actions that review, issue and credit them."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from playwright.sync_api import expect

from mwolo.accounts.tests.factories import (
    AdministratorFactory,
    EmployeeFactory,
    PortalUserFactory,
)
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing import delivery, services
from mwolo.billing.models import (
    AccountEntry,
    BillingRun,
    CreditNote,
    ExchangeRate,
    Invoice,
    Tariff,
)
from mwolo.billing.runner import billing_run_execute
from mwolo.billing.tests.factories import (
    FRENCH_MONTHS,
    OCTOBER,
    local,
    metered_site,
    next_month,
    pdf_text,
    tariff,
)
from mwolo.core import clock
from mwolo.core.permissions import Role
from mwolo.geo.tests.factories import commune

pytestmark = pytest.mark.django_db

PASSWORD = "motdepasse-solide-2026"  # UserFactory's
RUNS = reverse("admin:billing_billingrun_changelist")
RUN_ADD = reverse("admin:billing_billingrun_add")
INVOICES = reverse("admin:billing_invoice_changelist")
CREDIT_NOTES = reverse("admin:billing_creditnote_changelist")
TARIFFS = reverse("admin:billing_tariff_changelist")
SCOPED_MODELS = ["billingrun", "invoice", "creditnote", "accountentry"]
CHANGING_ACTIONS = {
    "review_invoices",
    "issue_invoices",
    "redraft_invoices",
    "credit_invoices",
    "regenerate_pdfs",
}


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM", name="Agence Gombe")


@pytest.fixture
def lubumbashi():
    return AgencyFactory(
        code="LSH-CTR", name="Agence Lubumbashi", commune=commune("Kampemba", "Lubumbashi")
    )


@pytest.fixture
def residential():
    # 2 500 CDF a month; the first 50 kWh at 100 CDF, the rest at 200 CDF; VAT 16 %.
    return tariff()


@pytest.fixture
def manager(gombe):
    return EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)


def read_site(agency):
    """A site read at both ends of October: 120 kWh, a draft ready to issue."""
    return metered_site(
        agency=agency, readings=[(local("2026-09-30"), "1100"), (local("2026-10-31"), "1220")]
    )


def unread_site(agency):
    """A site with no reading in October: its draft is estimated and waits for a person."""
    return metered_site(
        agency=agency,
        readings=[(local("2026-08-31", "09:00"), "1900"), (local("2026-09-30", "09:00"), "2800")],
    )


def billed_month(agency):
    """October billed for ``agency`` by a run: an issued invoice, an estimated draft held
    for review, a credit note on the invoice, and their account entries."""
    read, unread = read_site(agency), unread_site(agency)
    run = services.billing_run_start(period=OCTOBER, agency_id=agency.pk, actor=None, issue=True)
    billing_run_execute(run=run)
    issued = Invoice.objects.get(site=read)
    note = services.credit_note_issue(
        invoice_id=issued.pk, reason="Geste commercial", amount=Decimal("1000"), actor=None
    )
    return {
        "billingrun": BillingRun.objects.get(pk=run.pk),
        "invoice": issued,
        "draft": Invoice.objects.get(site=unread),
        "creditnote": note,
        "accountentry": AccountEntry.objects.get(credit_note=note),
    }


def pages(model, row):
    return (
        reverse(f"admin:billing_{model}_changelist"),
        reverse(f"admin:billing_{model}_change", args=[row.pk]),
    )


def marker(model, month):
    """What identifies ``month``'s row of ``model`` on a page."""
    if model == "billingrun":
        return f"2026-10 – {month['billingrun'].agency.code}"
    if model == "creditnote":
        return month["creditnote"].number
    return month["invoice"].number


def offered_actions(response):
    form = response.context["action_form"]  # None when the user has no action at all
    return set() if form is None else set(dict(form.fields["action"].choices)) - {""}


# --- Who may see what ----------------------------------------------------------------------


@pytest.mark.parametrize("model", [*SCOPED_MODELS, "tariff"])
@pytest.mark.parametrize("who", ["anonymous", "client"])
def test_visitors_and_clients_are_sent_to_the_login_page(client, gombe, residential, model, who):
    mine = {**billed_month(gombe), "tariff": residential}
    if who == "client":
        # Even the client whose invoice it is: the portal is their place, not the admin.
        portal_user = PortalUserFactory()
        owner = mine["invoice"].client
        owner.user = portal_user
        owner.save()
        client.force_login(portal_user)

    for url in pages(model, mine[model]):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("model", SCOPED_MODELS)
@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.BILLING_AGENT])
def test_billing_staff_see_only_their_agencys_records(
    client, gombe, lubumbashi, residential, model, role
):
    mine, theirs = billed_month(gombe), billed_month(lubumbashi)
    client.force_login(EmployeeFactory(role=role, agency=gombe))
    list_url, own_url = pages(model, mine[model])
    _list_url, foreign_url = pages(model, theirs[model])

    listed = client.get(list_url)
    assert listed.status_code == 200
    text = listed.content.decode()
    assert marker(model, mine) in text
    assert marker(model, theirs) not in text

    assert client.get(own_url).status_code == 200
    foreign = client.get(foreign_url)
    assert foreign.status_code == 302
    assert foreign["Location"] == reverse("admin:index")


def test_billing_staff_see_the_drafts_waiting_for_them(client, manager, gombe, residential):
    mine = billed_month(gombe)
    client.force_login(manager)

    listed = client.get(INVOICES).content.decode()

    assert mine["draft"].site.reference in listed
    assert "À vérifier" in listed or "à vérifier" in listed
    assert client.get(pages("invoice", mine["draft"])[1]).status_code == 200


@pytest.mark.parametrize("role", [Role.CASHIER, Role.SUPPORT_AGENT])
def test_cashiers_and_support_see_issued_invoices_only_and_change_nothing(
    client, gombe, lubumbashi, residential, role
):
    mine, theirs = billed_month(gombe), billed_month(lubumbashi)
    client.force_login(EmployeeFactory(role=role, agency=gombe))

    listed = client.get(INVOICES)
    assert listed.status_code == 200
    text = listed.content.decode()
    assert mine["invoice"].number in text
    assert theirs["invoice"].number not in text
    assert mine["draft"].site.reference not in text
    assert offered_actions(listed) & CHANGING_ACTIONS == set()
    assert client.get(pages("invoice", mine["invoice"])[1]).status_code == 200
    assert client.get(pages("invoice", mine["draft"])[1])["Location"] == reverse("admin:index")

    for model in ("creditnote", "accountentry"):
        list_url, own_url = pages(model, mine[model])
        assert marker(model, mine) in client.get(list_url).content.decode()
        assert client.get(own_url).status_code == 200
    # Billing runs are the billing staff's work.
    assert client.get(RUNS).status_code == 403
    assert client.get(RUN_ADD).status_code == 403


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_an_administrator_sees_every_agency(client, gombe, lubumbashi, residential, model):
    mine, theirs = billed_month(gombe), billed_month(lubumbashi)
    client.force_login(AdministratorFactory())
    list_url, own_url = pages(model, mine[model])
    _list_url, foreign_url = pages(model, theirs[model])

    listed = client.get(list_url).content.decode()
    assert marker(model, mine) in listed
    assert marker(model, theirs) in listed
    for url in (own_url, foreign_url):
        assert client.get(url).status_code == 200


def test_the_agency_filter_offers_only_the_agencies_one_sees(
    client, manager, gombe, lubumbashi, residential
):
    limete = AgencyFactory(code="KIN-LIM", name="Agence Limete")
    manager.additional_agencies.add(limete)
    for agency in (gombe, limete, lubumbashi):
        billed_month(agency)
    client.force_login(manager)

    for url in (INVOICES, RUNS, CREDIT_NOTES):
        text = client.get(url).content.decode()
        assert "Agence Gombe" in text, url
        assert "Agence Limete" in text, url
        assert "Agence Lubumbashi" not in text, url
        assert "LSH-CTR" not in text, url


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"status__exact": "draft"}, "draft", "invoice"),
        ({"status__exact": "issued"}, "invoice", "draft"),
        ({"to_review": "yes"}, "draft", "invoice"),
        ({"estimated__exact": "1"}, "draft", "invoice"),
    ],
)
def test_the_invoice_filters_narrow_the_list(
    client, manager, gombe, residential, query, shown, hidden
):
    mine = billed_month(gombe)
    client.force_login(manager)

    listed = client.get(INVOICES, query)

    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == [mine[shown]]


def test_overdue_invoices_are_marked_and_filtered(client, manager, gombe, residential):
    mine = billed_month(gombe)
    late = read_site(gombe)
    services.invoices_draft(period=OCTOBER, site_ids=[late.pk])
    late = services.invoice_issue(invoice_id=Invoice.objects.get(site=late).pk, actor=None)
    yesterday = clock.today("Africa/Kinshasa") - dt.timedelta(days=1)
    Invoice.objects.filter(pk=late.pk).update(due_date=yesterday)
    client.force_login(manager)

    listed = client.get(INVOICES)
    overdue = client.get(INVOICES, {"overdue": "yes"})
    on_time = client.get(INVOICES, {"overdue": "no"})

    rows = {row.pk: row for row in listed.context["cl"].result_list}
    assert [pk for pk, row in rows.items() if row.overdue] == [late.pk]
    assert listed.content.decode().count("badge text-bg-danger") == 1
    assert "En retard" in listed.content.decode()
    assert list(overdue.context["cl"].result_list) == [late]
    assert set(on_time.context["cl"].result_list) == {mine["invoice"], mine["draft"]}


# --- Lists read a fixed number of queries --------------------------------------------------


def add_rows(agency, count, actor):
    """``count`` more sites billed in October for ``agency``: issued, credited, and as
    many estimated drafts."""
    sites = [read_site(agency) for _ in range(count)] + [unread_site(agency) for _ in range(count)]
    services.invoices_draft(period=OCTOBER, site_ids=[site.pk for site in sites])
    drafts = Invoice.objects.filter(site__in=sites).values_list("pk", flat=True)
    report = services.invoices_issue(invoice_ids=list(drafts), actor=actor)
    for invoice in Invoice.objects.filter(number__in=report.numbers):
        services.credit_note_issue(
            invoice_id=invoice.pk, reason="Geste", amount=Decimal("10"), actor=actor
        )


@pytest.mark.parametrize("model", [*SCOPED_MODELS, "tariff", "exchangerate"])
def test_the_lists_read_a_fixed_number_of_queries(
    client, manager, gombe, lubumbashi, residential, model
):
    url = reverse(f"admin:billing_{model}_changelist")
    client.force_login(manager)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        return len(captured), response.context["cl"].result_count

    def more_reference_rows(n):
        start = ExchangeRate.objects.count()
        ExchangeRate.objects.bulk_create(
            ExchangeRate(day=dt.date(2026, 1, 1) + dt.timedelta(days=start + i), cdf_per_usd=2850)
            for i in range(n)
        )
        for i in range(n):
            tariff(
                code=f"IND-{start + i}",
                category="industrial",
                valid_from=dt.date(2020, 1, 1) + dt.timedelta(days=30 * (start + i)),
                valid_to=dt.date(2020, 1, 1) + dt.timedelta(days=30 * (start + i) + 29),
            )

    billed_month(gombe)
    more_reference_rows(2)
    few, shown = queries()
    add_rows(gombe, 6, manager)
    # Another agency's month too, for the runs' list.
    billed_month(lubumbashi)
    BillingRun.objects.filter(agency=lubumbashi).update(agency=gombe, period=dt.date(2026, 9, 1))
    more_reference_rows(6)
    many, shown_after = queries()

    assert shown_after > shown >= 1
    assert many == few


# --- Reviewing, issuing, crediting ---------------------------------------------------------


def test_accepting_flagged_drafts_asks_what_was_checked(client, manager, gombe, residential):
    month = billed_month(gombe)
    draft = month["draft"]
    client.force_login(manager)
    chosen = {"action": "review_invoices", "_selected_action": [draft.pk]}

    confirmation = client.post(INVOICES, chosen)
    text = confirmation.content.decode()
    assert confirmation.status_code == 200
    assert "Accepter des brouillons signalés" in text
    assert "Cela concerne 1 facture" in text
    assert "Ce que vous avez vérifié" in text

    for blank in ("", "   "):
        again = client.post(INVOICES, {**chosen, "confirm": "yes", "note": blank})
        assert again.status_code == 200
        assert "Ce champ est obligatoire." in again.content.decode()
    draft.refresh_from_db()
    assert draft.reviewed_at is None

    done = client.post(
        INVOICES, {**chosen, "confirm": "yes", "note": "Compteur inaccessible"}, follow=True
    )
    assert "1 brouillon accepté." in done.content.decode()
    draft.refresh_from_db()
    assert (draft.reviewed_by, draft.review_note) == (manager, "Compteur inaccessible")
    assert draft.status == Invoice.Status.DRAFT


def test_issuing_issues_the_ready_drafts_and_says_how_many_were_held(
    client, manager, gombe, residential
):
    ready, flagged = read_site(gombe), unread_site(gombe)
    services.invoices_draft(period=OCTOBER, site_ids=[ready.pk, flagged.pk])
    drafts = Invoice.objects.order_by("pk")
    client.force_login(manager)

    done = client.post(
        INVOICES,
        {"action": "issue_invoices", "_selected_action": [d.pk for d in drafts]},
        follow=True,
    )

    text = done.content.decode()
    issued = Invoice.objects.get(site=ready)
    assert issued.status == Invoice.Status.ISSUED
    assert f"1 facture émise : {issued.number}." in text
    assert "1 brouillon doit d’abord être vérifié : il n’a pas été émis." in text
    assert Invoice.objects.get(site=flagged).status == Invoice.Status.DRAFT


def test_a_credit_note_asks_a_reason_and_an_amount(client, manager, gombe, residential):
    invoice = billed_month(gombe)["invoice"]
    client.force_login(manager)
    chosen = {"action": "credit_invoices", "_selected_action": [invoice.pk]}

    confirmation = client.post(INVOICES, chosen)
    text = confirmation.content.decode()
    assert "Émettre des avoirs" in text
    assert "Motif" in text
    assert "Montant (TVA comprise)" in text

    done = client.post(
        INVOICES,
        {**chosen, "confirm": "yes", "reason": "Index mal relevé", "amount": "4940"},
        follow=True,
    )

    note = CreditNote.objects.filter(invoice=invoice).latest("issued_at")
    assert (note.total, note.reason, note.issued_by) == (
        Decimal("4940"),
        "Index mal relevé",
        manager,
    )
    assert f"Avoir {note.number} : 4\xa0940,00\xa0CDF." in done.content.decode()


def test_regenerating_pdfs_asks_first_then_redraws_them(
    client, manager, gombe, residential, tmp_path
):
    month = billed_month(gombe)
    invoice, note, draft = month["invoice"], month["creditnote"], month["draft"]
    owner = invoice.client
    owner.preferred_language = "en"  # since the PDFs were drawn, in French
    owner.save()
    stored = {
        "invoice": delivery.invoice_pdf(invoice_id=invoice.pk).name,
        "creditnote": delivery.credit_note_pdf(credit_note_id=note.pk).name,
    }
    client.force_login(manager)
    chosen = {"action": "regenerate_pdfs", "_selected_action": [invoice.pk, draft.pk]}

    confirmation = client.post(INVOICES, chosen).content.decode()
    assert "Régénérer les PDF" in confirmation
    assert invoice.number in confirmation
    assert "mêmes numéro, lignes et montants" in confirmation
    assert Invoice.objects.get(pk=invoice.pk).pdf.name == stored["invoice"]  # not yet

    done = client.post(INVOICES, {**chosen, "confirm": "yes"}, follow=True).content.decode()

    assert "1 PDF régénéré." in done
    assert "Un brouillon n’a pas de PDF" in done
    redrawn = Invoice.objects.get(pk=invoice.pk).pdf
    words = " ".join(pdf_text(redrawn.open("rb").read(), tmp_path).split())
    assert "Invoice no." in words
    assert "24,940.00 CDF" in words
    assert LogEntry.objects.get_for_object(invoice).get().actor == manager

    client.post(
        CREDIT_NOTES,
        {"action": "regenerate_pdfs", "_selected_action": [note.pk], "confirm": "yes"},
    )
    redrawn = CreditNote.objects.get(pk=note.pk).pdf
    words = " ".join(pdf_text(redrawn.open("rb").read(), tmp_path).split())
    assert "Credit note no." in words
    assert "1,000.00" in words


@pytest.mark.parametrize("model", ["invoice", "creditnote"])
def test_a_cashier_cannot_regenerate_pdfs_even_by_posting(client, gombe, residential, model):
    month = billed_month(gombe)
    record = month[model]
    if model == "invoice":
        delivery.invoice_pdf(invoice_id=record.pk)
    else:
        delivery.credit_note_pdf(credit_note_id=record.pk)
    stored = type(record).objects.get(pk=record.pk).pdf.name
    logged = LogEntry.objects.get_for_object(record).count()
    client.force_login(EmployeeFactory(role=Role.CASHIER, agency=gombe))
    url = reverse(f"admin:billing_{model}_changelist")

    assert "regenerate_pdfs" not in offered_actions(client.get(url))
    client.post(
        url, {"action": "regenerate_pdfs", "_selected_action": [record.pk], "confirm": "yes"}
    )

    assert type(record).objects.get(pk=record.pk).pdf.name == stored
    assert LogEntry.objects.get_for_object(record).count() == logged


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "Saisissez un montant supérieur à zéro."),
        ("-5", "Saisissez un montant supérieur à zéro."),
        ("abc", "Saisissez un nombre."),
        ("12.345", "Assurez-vous qu’il n’y a pas plus de 2 chiffres après la virgule."),
        ("99999", "Au plus 23\xa0940,00 CDF de cette facture peuvent être crédités."),
    ],
)
def test_a_bad_credit_amount_is_refused_and_nothing_is_written(
    client, manager, gombe, residential, amount, message
):
    invoice = billed_month(gombe)["invoice"]
    notes, entries = CreditNote.objects.count(), AccountEntry.objects.count()
    client.force_login(manager)

    response = client.post(
        INVOICES,
        {
            "action": "credit_invoices",
            "_selected_action": [invoice.pk],
            "confirm": "yes",
            "reason": "Index mal relevé",
            "amount": amount,
        },
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert (CreditNote.objects.count(), AccountEntry.objects.count()) == (notes, entries)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED


def test_a_credit_note_needs_a_reason(client, manager, gombe, residential):
    invoice = billed_month(gombe)["invoice"]
    client.force_login(manager)

    response = client.post(
        INVOICES,
        {
            "action": "credit_invoices",
            "_selected_action": [invoice.pk],
            "confirm": "yes",
            "reason": "  ",
            "amount": "",
        },
    )

    assert "Ce champ est obligatoire." in response.content.decode()
    assert CreditNote.objects.count() == 1  # the month's own


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("review_invoices", {"note": "Vu"}),
        ("issue_invoices", {}),
        ("redraft_invoices", {}),
        ("credit_invoices", {"reason": "Geste", "amount": "100"}),
    ],
)
def test_a_cashier_cannot_run_the_billing_actions_even_by_posting(
    client, gombe, residential, action, fields
):
    month = billed_month(gombe)
    before = {
        invoice.pk: (invoice.status, invoice.reviewed_at, invoice.updated_at)
        for invoice in Invoice.objects.all()
    }
    client.force_login(EmployeeFactory(role=Role.CASHIER, agency=gombe))

    client.post(
        INVOICES,
        {
            "action": action,
            "_selected_action": [month["invoice"].pk, month["draft"].pk],
            "confirm": "yes",
            **fields,
        },
    )

    after = {
        invoice.pk: (invoice.status, invoice.reviewed_at, invoice.updated_at)
        for invoice in Invoice.objects.all()
    }
    assert after == before
    assert CreditNote.objects.count() == 1


def test_another_agencys_invoice_cannot_be_credited(client, manager, lubumbashi, residential):
    foreign = billed_month(lubumbashi)["invoice"]
    client.force_login(manager)

    client.post(
        INVOICES,
        {
            "action": "credit_invoices",
            "_selected_action": [foreign.pk],
            "confirm": "yes",
            "reason": "Geste",
            "amount": "",
        },
    )

    assert CreditNote.objects.count() == 1
    foreign.refresh_from_db()
    assert foreign.status == Invoice.Status.ISSUED


# --- Starting a billing run ----------------------------------------------------------------


def test_a_billing_run_is_started_from_the_add_form(
    client, manager, gombe, residential, django_capture_on_commit_callbacks
):
    read_site(gombe), unread_site(gombe)
    client.force_login(manager)

    form = client.get(RUN_ADD)
    text = form.content.decode()
    for label in ("Période", "Agence", "Émettre au fur et à mesure"):
        assert label in text

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            RUN_ADD,
            {"period": "2026-10-01", "agency": gombe.pk, "issue_when_drafted": "on"},
            follow=True,
        )

    assert done.status_code == 200
    run = BillingRun.objects.get()
    assert (run.period, run.agency, run.created_by) == (OCTOBER, gombe, manager)
    # The chunks ran on the (eager) workers: drafted, then the ready draft issued.
    assert run.status == BillingRun.Status.ISSUED
    assert Invoice.objects.filter(status=Invoice.Status.ISSUED).count() == 1
    assert Invoice.objects.filter(status=Invoice.Status.DRAFT).count() == 1


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2026-10-15", "Une période de facturation commence le premier du mois."),
        (
            f"{next_month():%Y-%m-%d}",
            f"{FRENCH_MONTHS[next_month().month - 1]} {next_month().year} n’est pas terminé",
        ),
        ("pas une date", "Saisissez une date valide."),
    ],
)
def test_a_bad_period_is_shown_on_the_form_and_nothing_is_started(
    client, manager, gombe, residential, period, message
):
    read_site(gombe)
    client.force_login(manager)

    response = client.post(RUN_ADD, {"period": period, "agency": gombe.pk})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["adminform"].form.errors["period"]
    assert not BillingRun.objects.exists()
    assert not Invoice.objects.exists()


def test_an_agency_employee_cannot_bill_another_agency_or_every_agency(
    client, manager, gombe, lubumbashi, residential
):
    read_site(lubumbashi)
    client.force_login(manager)

    offered = client.get(RUN_ADD).context["adminform"].form.fields["agency"].queryset
    assert list(offered) == [gombe]
    foreign = client.post(RUN_ADD, {"period": "2026-10-01", "agency": lubumbashi.pk})
    assert foreign.status_code == 200
    assert foreign.context["adminform"].form.errors["agency"]
    every = client.post(RUN_ADD, {"period": "2026-10-01", "agency": ""})
    assert every.status_code == 200
    assert "Choisissez votre agence." in every.content.decode()
    assert not BillingRun.objects.exists()


def test_an_administrator_may_bill_every_agency_at_once(
    client, gombe, lubumbashi, residential, django_capture_on_commit_callbacks
):
    read_site(gombe), read_site(lubumbashi)
    client.force_login(AdministratorFactory())

    with django_capture_on_commit_callbacks(execute=True):
        client.post(RUN_ADD, {"period": "2026-10-01", "agency": ""})

    run = BillingRun.objects.get()
    assert run.agency is None
    assert run.status == BillingRun.Status.DRAFTED
    assert Invoice.objects.count() == 2


# --- Tariffs -------------------------------------------------------------------------------


def tariff_form(**changes):
    data = {
        "code": "COM-2026",
        "name": "Commercial 2026",
        "category": "commercial",
        "currency": "USD",
        "fixed_monthly_charge": "5",
        "vat_rate": "0,16",  # as staff write it; 0.15 below is understood too
        "payment_terms_days": "15",
        "valid_from": "2026-01-01",
        "valid_to": "",
        "bands-TOTAL_FORMS": "2",
        "bands-INITIAL_FORMS": "0",
        "bands-MIN_NUM_FORMS": "0",
        "bands-MAX_NUM_FORMS": "1000",
        "bands-0-up_to_kwh": "100",
        "bands-0-price_per_kwh": "0,10",
        "bands-1-up_to_kwh": "",
        "bands-1-price_per_kwh": "0.15",
    }
    return {**data, **changes}


def test_a_billing_agent_adds_a_tariff_with_its_bands(client, gombe):
    client.force_login(EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe))

    response = client.post(reverse("admin:billing_tariff_add"), tariff_form())

    assert response.status_code == 302
    created = Tariff.objects.get(code="COM-2026")
    assert [(b.up_to_kwh, b.price_per_kwh) for b in created.bands.all()] == [
        (Decimal("100.000"), Decimal("0.1000")),
        (None, Decimal("0.1500")),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bands-1-up_to_kwh": "50"}, "La dernière tranche ne doit pas avoir de limite haute."),
        ({"valid_from": "2026-06-01", "code": "RES-BIS", "category": "residential"}, "RES-2026"),
    ],
)
def test_a_bad_tariff_is_refused_with_its_reason(client, gombe, residential, changes, message):
    client.force_login(EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe))

    response = client.post(reverse("admin:billing_tariff_add"), tariff_form(**changes))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert list(Tariff.objects.all()) == [residential]


@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.CASHIER])
def test_other_staff_read_the_tariffs_without_changing_them(client, gombe, residential, role):
    client.force_login(EmployeeFactory(role=role, agency=gombe))

    listed = client.get(TARIFFS)
    assert listed.status_code == 200
    assert "RES-2026" in listed.content.decode()
    assert client.get(reverse("admin:billing_tariff_add")).status_code == 403
    page = client.get(reverse("admin:billing_tariff_change", args=[residential.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


# --- Invoice pages -------------------------------------------------------------------------


def test_an_invoice_page_shows_its_lines_anomalies_and_pdf(client, manager, gombe, residential):
    month = billed_month(gombe)
    services.invoice_review(invoice_id=month["draft"].pk, actor=manager, note="Compteur fermé")
    client.force_login(manager)

    issued = client.get(pages("invoice", month["invoice"])[1]).content.decode()
    for expected in (
        month["invoice"].number,
        "Redevance fixe mensuelle",
        "Énergie",
        "14\xa0000,00",
        "24\xa0940,00\xa0CDF",
        "23\xa0940,00\xa0CDF",  # left to pay after the credit note
        reverse("invoice-pdf", args=[month["invoice"].pk]),
    ):
        assert expected in issued, expected

    draft = client.get(pages("invoice", month["draft"])[1]).content.decode()
    assert "Aucun relevé dans la période : consommation estimée" in draft
    assert "vérifié" in draft
    assert "Compteur fermé" in draft


@pytest.mark.parametrize("role", [Role.AGENCY_MANAGER, Role.CASHIER])
def test_the_pdf_links_of_the_back_office_serve_the_agencys_documents_only(
    client, gombe, lubumbashi, residential, role, tmp_path
):
    mine, theirs = billed_month(gombe), billed_month(lubumbashi)
    client.force_login(EmployeeFactory(role=role, agency=gombe))

    for model, route in (("invoice", "invoice-pdf"), ("creditnote", "credit-note-pdf")):
        link = reverse(route, args=[mine[model].pk])
        assert link in client.get(pages(model, mine[model])[1]).content.decode()
        response = client.get(link)
        assert response.status_code == 200
        assert mine[model].number in pdf_text(b"".join(response.streaming_content), tmp_path)
        assert client.get(reverse(route, args=[theirs[model].pk])).status_code == 404
    assert not Invoice.objects.filter(agency=lubumbashi).exclude(pdf="").exists()
    assert not CreditNote.objects.filter(agency=lubumbashi).exclude(pdf="").exists()


# --- In the browser ------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_billing_agent_works_through_the_month_in_french(page, live_server, screenshots):
    gombe = AgencyFactory(code="KIN-GOM", name="Agence Gombe")
    EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe, username="facturation")
    tariff()
    ExchangeRate.objects.create(day=clock.today(), cdf_per_usd=Decimal("2850"))
    month = billed_month(gombe)

    def shoot(name):
        # Transitions finished: a tab fading in is pictured as it ends up.
        page.screenshot(
            path=str(screenshots / f"billing-{name}.png"), full_page=True, animations="disabled"
        )

    page.goto(reverse("admin:login"))
    page.fill("input[name=username]", "facturation")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form [type=submit]").click()
    page.wait_for_url(f"{live_server.url}{reverse('admin:index')}")

    page.goto(INVOICES, wait_until="networkidle")
    headers = page.locator("#result_list thead")
    for label in ("Facture", "Client", "Site", "Période", "Statut", "Total", "Échéance"):
        expect(headers).to_contain_text(label, ignore_case=True)
    rows = page.locator("#result_list tbody")
    issued_row = rows.locator("tr", has_text=month["invoice"].number)
    expect(issued_row).to_contain_text("octobre 2026")
    expect(issued_row).to_contain_text("Émise")
    expect(issued_row).to_contain_text("24 940,00 CDF")
    draft_row = rows.locator("tr", has_text=month["draft"].site.reference)
    expect(draft_row).to_contain_text("Brouillon")
    expect(draft_row).to_contain_text("À vérifier")
    expect(draft_row).to_contain_text("consommation estimée")
    expect(rows).not_to_contain_text("estimated")
    shoot("invoice-list")

    page.goto(pages("invoice", month["invoice"])[1], wait_until="networkidle")
    body = page.locator("body")
    expect(body).to_contain_text(month["invoice"].number)
    expect(page.get_by_role("link", name="Télécharger")).to_be_visible()
    shoot("invoice-change")
    page.get_by_role("tab", name="Montants").click()
    amounts = page.locator("#montants-tab")
    expect(amounts).to_have_class(re.compile(r"\bshow\b"))
    expect(amounts).to_contain_text("24 940,00 CDF")
    expect(amounts).to_contain_text("23 940,00 CDF")  # left to pay after the credit note
    shoot("invoice-amounts")
    page.get_by_role("tab", name="Lignes de facture").click()
    lines = page.locator("#lignes-de-facture-tab")
    expect(lines).to_have_class(re.compile(r"\bshow\b"))
    expect(lines).to_contain_text("Redevance fixe mensuelle")
    expect(lines).to_contain_text("14 000,00")
    shoot("invoice-lines")

    page.goto(INVOICES, wait_until="networkidle")
    page.locator(f"input[name=_selected_action][value='{month['invoice'].pk}']").check()
    page.select_option("select[name=action]", "credit_invoices")
    page.locator("button[name=index], input[name=index], .actions button").first.click()
    page.wait_for_load_state("networkidle")
    expect(body).to_contain_text("Émettre des avoirs")
    expect(body).to_contain_text("Cela concerne 1 facture")
    expect(body).to_contain_text("23 940,00 CDF")
    expect(body).to_contain_text("Montant (TVA comprise)")
    shoot("credit-note-confirm")
    page.fill("input[name=reason]", "Index mal relevé")
    page.fill("input[name=amount]", "99999")
    page.get_by_role("button", name="Confirmer").click()
    page.wait_for_load_state("networkidle")
    expect(body).to_contain_text("Au plus 23 940,00 CDF de cette facture peuvent être crédités.")
    assert CreditNote.objects.count() == 1
    shoot("credit-note-refused")

    page.goto(RUNS, wait_until="networkidle")
    run_row = page.locator("#result_list tbody tr").first
    expect(run_row).to_contain_text("octobre 2026")
    expect(run_row).to_contain_text("Agence Gombe")
    shoot("run-list")

    page.goto(RUN_ADD, wait_until="networkidle")
    page.fill("input[name=period]", f"{next_month():%d/%m/%Y}")
    page.locator("input[name=_save], button[name=_save]").first.click()
    page.wait_for_load_state("networkidle")
    month = f"{FRENCH_MONTHS[next_month().month - 1]} {next_month().year}"
    expect(body).to_contain_text(f"{month} n’est pas terminé")
    assert BillingRun.objects.count() == 1
    shoot("run-add-refused")
