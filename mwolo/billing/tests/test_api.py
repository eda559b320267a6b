"""Billing over the API: who sees which invoices, the steps of an invoice, bad input."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing import selectors, services
from mwolo.billing.models import AccountEntry, BillingRun, CreditNote, Invoice
from mwolo.billing.tests.factories import OCTOBER, local, metered_site, pdf_text, tariff
from mwolo.core import clock
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.geo.tests.factories import commune
from mwolo.payments import services as payments

D = Decimal

pytestmark = pytest.mark.django_db

INVOICES = "/api/billing/invoices/"
CREDIT_NOTES = "/api/billing/credit-notes/"
RUNS = "/api/billing/runs/"
READINGS = [(local("2026-09-30"), "1100"), (local("2026-10-31"), "1220")]


@pytest.fixture
def world():
    tariff()
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    own = metered_site(agency=gombe, readings=READINGS)
    neighbour = metered_site(agency=gombe, readings=READINGS)
    other = metered_site(agency=lubumbashi, readings=READINGS)
    services.invoices_draft(period=OCTOBER, site_ids=[own.pk, neighbour.pk, other.pk])
    for site in (own, neighbour):
        services.invoice_issue(invoice_id=Invoice.objects.get(site=site).pk, actor=None)
    draft = metered_site(agency=gombe, readings=READINGS)
    services.invoices_draft(period=OCTOBER, site_ids=[draft.pk])
    services.invoice_issue(invoice_id=Invoice.objects.get(site=other).pk, actor=None)
    return {
        "gombe": gombe,
        "lubumbashi": lubumbashi,
        "own": Invoice.objects.get(site=own),
        "neighbour": Invoice.objects.get(site=neighbour),
        "other": Invoice.objects.get(site=other),
        "draft": Invoice.objects.get(site=draft),
    }


def login(actor, world):
    api = APIClient()
    if actor == "anonymous":
        return api
    if actor == "administrator":
        user = AdministratorFactory()
    elif actor == "client":
        user = UserFactory()
        user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
        client = world["own"].client
        client.user = user
        client.save()
    else:
        user = EmployeeFactory(role=Role(actor), agency=world["gombe"])
    api.force_authenticate(user)
    return api


# Which invoices each kind of user lists: own = the client's, neighbour = another client of
# the same agency, other = another agency's, draft = a draft of the agency.
VISIBLE = {
    "anonymous": None,
    "administrator": {"own", "neighbour", "other", "draft"},
    "agency_manager": {"own", "neighbour", "draft"},
    "billing_agent": {"own", "neighbour", "draft"},
    "cashier": {"own", "neighbour"},
    "support_agent": {"own", "neighbour"},
    "technician": None,
    "hr_officer": None,
    "client": {"own"},
}


@pytest.mark.parametrize(("actor", "visible"), VISIBLE.items())
def test_who_sees_which_invoices(world, actor, visible):
    api = login(actor, world)

    listed = api.get(INVOICES)

    if visible is None:
        assert listed.status_code in (401, 403)
        for name in ("own", "other"):
            assert api.get(f"{INVOICES}{world[name].pk}/").status_code in (401, 403)
            assert api.get(f"{INVOICES}{world[name].pk}/pdf/").status_code in (401, 403)
        assert not Invoice.objects.exclude(pdf="").exists()  # nothing was even drawn
        return
    assert listed.status_code == 200
    ids = {row["id"] for row in listed.json()["results"]}
    assert ids == {world[name].pk for name in visible}
    for name in ("own", "neighbour", "other", "draft"):
        expected = 200 if name in visible else 404
        assert api.get(f"{INVOICES}{world[name].pk}/").status_code == expected
        if name != "draft":
            pdf = api.get(f"{INVOICES}{world[name].pk}/pdf/")
            assert pdf.status_code == expected
            if expected == 200:
                assert pdf["Content-Type"] == "application/pdf"
                assert b"".join(pdf.streaming_content).startswith(b"%PDF")


def test_an_invoice_reads_with_its_lines_and_totals(world):
    api = login("billing_agent", world)

    body = api.get(f"{INVOICES}{world['own'].pk}/").json()

    assert body["number"] == world["own"].number
    assert body["status_label"] == "Émise"
    assert body["total"] == "24940.00"
    assert [line["kind"] for line in body["lines"]] == ["fixed", "energy", "energy"]
    assert body["consumption_kwh"] == "120.000"


def test_the_invoice_list_reads_a_fixed_number_of_queries(world):
    api = login("administrator", world)

    def count():
        with CaptureQueriesContext(connection) as captured:
            assert api.get(INVOICES).status_code == 200
        return len(captured)

    count()  # the user's permissions are read once, then cached
    few = count()
    sites = [metered_site(agency=world["gombe"], readings=READINGS) for _ in range(5)]
    services.invoices_draft(period=OCTOBER, site_ids=[s.pk for s in sites])
    assert count() == few


# --- Overdue ------------------------------------------------------------------------------


def due_on(invoice, day):
    Invoice.objects.filter(pk=invoice.pk).update(due_date=day)


def test_an_unpaid_invoice_due_yesterday_is_overdue_and_filtered_as_such(world):
    today = clock.today("Africa/Kinshasa")  # Gombe's day
    due_on(world["own"], today - dt.timedelta(days=1))
    due_on(world["neighbour"], today)
    paid = metered_site(agency=world["gombe"], readings=READINGS)
    services.invoices_draft(period=OCTOBER, site_ids=[paid.pk])
    paid = services.invoice_issue(invoice_id=Invoice.objects.get(site=paid).pk, actor=None)
    due_on(paid, today - dt.timedelta(days=1))
    cashier = EmployeeFactory(role=Role.CASHIER, agency=world["gombe"])
    payments.cash_session_open(
        cashier=cashier, agency_id=world["gombe"].pk, opening_cdf=D(0), opening_usd=D(0)
    )
    payments.payment_record_cash(
        cashier=cashier, client_id=paid.client_id, amount=D(24940), currency="CDF"
    )
    api = login("billing_agent", world)

    listed = {row["id"]: row["overdue"] for row in api.get(INVOICES).json()["results"]}
    overdue = api.get(INVOICES, {"overdue": "true"}).json()["results"]
    not_overdue = api.get(INVOICES, {"overdue": "false"}).json()["results"]

    assert listed == {
        world["own"].pk: True,
        world["neighbour"].pk: False,  # due today
        paid.pk: False,  # due yesterday, but paid
        world["draft"].pk: False,
    }
    assert [row["number"] for row in overdue] == [world["own"].number]
    assert {row["id"] for row in not_overdue} == {world["neighbour"].pk, paid.pk, world["draft"].pk}
    assert api.get(f"{INVOICES}{world['own'].pk}/").json()["overdue"] is True
    refused = api.get(INVOICES, {"overdue": "peut-être"})
    assert refused.status_code == 400
    assert "peut-être" in refused.json()["overdue"][0], refused.json()
    # The client sees it on their own invoice too.
    mine = login("client", world).get(INVOICES, {"overdue": "true"}).json()["results"]
    assert [row["id"] for row in mine] == [world["own"].pk]


def test_the_agencys_time_zone_decides_when_an_invoice_falls_overdue(world):
    # Kinshasa is UTC+1, Lubumbashi UTC+2: at 22:30 UTC it is already the next day in the east.
    due_day = dt.date(2026, 11, 15)
    for name in ("own", "other"):
        due_on(world[name], due_day)
    own, other = world["own"].pk, world["other"].pk

    def overdue_at(utc_time):
        at = dt.datetime.fromisoformat(f"2026-11-15T{utc_time}+00:00")
        invoices = selectors.invoices_with_overdue(Invoice.objects.all(), at=at)
        return set(invoices.filter(overdue=True).values_list("pk", flat=True))

    assert overdue_at("21:30") == set()  # 22:30 in Kinshasa, 23:30 in Lubumbashi
    assert overdue_at("22:30") == {other}  # 23:30 in Kinshasa, 00:30 on the 16th in Lubumbashi
    assert overdue_at("23:30") == {own, other}
    assert overdue_at("23:30") == set(
        Invoice.objects.filter(
            selectors.invoices_overdue_condition(at=dt.datetime(2026, 11, 16, 0, 30, tzinfo=dt.UTC))
        ).values_list("pk", flat=True)
    )


# --- PDFs drawn again -----------------------------------------------------------------------


def pdf_words(response, folder):
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/pdf"
    return " ".join(pdf_text(b"".join(response.streaming_content), folder).split())


def test_billing_staff_regenerate_an_invoice_pdf_and_others_may_not(world, tmp_path):
    url = f"{INVOICES}{world['own'].pk}/pdf/"
    owner_api = login("client", world)
    assert "Facture n°" in pdf_words(owner_api.get(url), tmp_path)
    owner = Invoice.objects.get(pk=world["own"].pk).client
    owner.preferred_language = "en"
    owner.save()
    stored = Invoice.objects.get(pk=world["own"].pk).pdf.name

    # The stored PDF is served as it is; the client and a cashier may not have it redrawn.
    assert "Facture n°" in pdf_words(owner_api.get(url), tmp_path)
    for who in (owner_api, login("cashier", world)):
        refused = who.get(url, {"regenerate": "true"})
        assert refused.status_code == 403
    bad = login("billing_agent", world).get(url, {"regenerate": "peut-être"})
    assert bad.status_code == 400
    assert "regenerate" in bad.json()
    assert Invoice.objects.get(pk=world["own"].pk).pdf.name == stored
    assert "Facture n°" in pdf_words(owner_api.get(url), tmp_path)

    redrawn = pdf_words(login("billing_agent", world).get(url, {"regenerate": "true"}), tmp_path)

    assert "Invoice no." in redrawn
    assert world["own"].number in redrawn
    assert "24,940.00 CDF" in redrawn
    # The new file replaced the old one: everyone now gets it.
    assert "Invoice no." in pdf_words(owner_api.get(url), tmp_path)


def test_billing_staff_regenerate_a_credit_note_pdf_of_their_agency_only(world, tmp_path):
    agent = login("billing_agent", world)
    notes = {}
    for name in ("own", "other"):
        notes[name] = services.credit_note_issue(
            invoice_id=world[name].pk, reason="Index corrigé", actor=None, amount=D("1160")
        )
        assert "Avoir n°" in pdf_words(
            login("administrator", world).get(f"{CREDIT_NOTES}{notes[name].pk}/pdf/"), tmp_path
        )
    owner = notes["own"].client
    owner.preferred_language = "en"
    owner.save()
    own_url = f"{CREDIT_NOTES}{notes['own'].pk}/pdf/"

    assert login("client", world).get(own_url, {"regenerate": "true"}).status_code == 403
    foreign = agent.get(f"{CREDIT_NOTES}{notes['other'].pk}/pdf/", {"regenerate": "true"})
    assert foreign.status_code == 404
    redrawn = pdf_words(agent.get(own_url, {"regenerate": "true"}), tmp_path)

    assert "Credit note no." in redrawn
    assert "1,160.00" in redrawn
    assert "Index corrigé" in redrawn


# --- Credit notes and runs: who sees which, in a fixed number of queries --------------------


def credit_notes(world):
    """A credit note on the client's invoice, on a neighbour's and on another agency's."""
    return {
        name: services.credit_note_issue(
            invoice_id=world[name].pk, reason="Geste", actor=None, amount=D("10")
        )
        for name in ("own", "neighbour", "other")
    }


def runs(world):
    """October's run of Gombe, of Lubumbashi, and September's of every agency."""
    return {
        "own": services.billing_run_start(period=OCTOBER, agency_id=world["gombe"].pk, actor=None),
        "other": services.billing_run_start(
            period=OCTOBER, agency_id=world["lubumbashi"].pk, actor=None
        ),
        "all": services.billing_run_start(period=dt.date(2026, 9, 1), agency_id=None, actor=None),
    }


STAFF_OF_GOMBE = {"own", "neighbour"}
# Who sees a client's credit notes and statements: those who see the client.
CLIENT_DOCUMENTS_VISIBLE = {
    "anonymous": 401,
    "administrator": {"own", "neighbour", "other"},
    "agency_manager": STAFF_OF_GOMBE,
    "billing_agent": STAFF_OF_GOMBE,
    "cashier": STAFF_OF_GOMBE,
    "support_agent": STAFF_OF_GOMBE,
    "technician": 403,
    "hr_officer": 403,
    "client": {"own"},
}
RUNS_VISIBLE = {
    "anonymous": 401,
    "administrator": {"own", "other", "all"},
    "agency_manager": {"own"},
    "billing_agent": {"own"},
    "cashier": 403,
    "support_agent": 403,
    "technician": 403,
    "hr_officer": 403,
    "client": 403,
}


def check_visible(api, url, rows, visible):
    listed = api.get(url)
    if isinstance(visible, int):
        assert listed.status_code == visible
        for row in rows.values():
            assert api.get(f"{url}{row.pk}/").status_code == visible
        return
    assert listed.status_code == 200
    assert {row["id"] for row in listed.json()["results"]} == {rows[n].pk for n in visible}
    for name, row in rows.items():
        assert api.get(f"{url}{row.pk}/").status_code == (200 if name in visible else 404)


@pytest.mark.parametrize(("actor", "visible"), CLIENT_DOCUMENTS_VISIBLE.items())
def test_who_sees_which_credit_notes(world, actor, visible):
    notes = credit_notes(world)

    check_visible(login(actor, world), CREDIT_NOTES, notes, visible)


@pytest.mark.parametrize(("actor", "visible"), CLIENT_DOCUMENTS_VISIBLE.items())
def test_who_downloads_which_credit_note_pdfs(world, actor, visible, tmp_path):
    notes = credit_notes(world)
    api = login(actor, world)

    for name, note in notes.items():
        response = api.get(f"{CREDIT_NOTES}{note.pk}/pdf/")
        if isinstance(visible, int):
            assert response.status_code == visible
        elif name in visible:
            words = pdf_words(response, tmp_path)
            assert note.number in words
            assert world[name].number in words
        else:
            assert response.status_code == 404
    if not isinstance(visible, set):  # nothing drawn for those who may not have it
        assert not CreditNote.objects.exclude(pdf="").exists()


@pytest.mark.parametrize(("actor", "visible"), RUNS_VISIBLE.items())
def test_who_sees_which_billing_runs(world, actor, visible):
    started = runs(world)

    check_visible(login(actor, world), RUNS, started, visible)


def list_queries(api, url):
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200
    return len(captured), response.json()["count"]


def test_the_credit_note_list_reads_a_fixed_number_of_queries(world):
    credit_notes(world)
    api = login("billing_agent", world)
    list_queries(api, CREDIT_NOTES)  # the user's permissions are read once, then cached
    few, shown = list_queries(api, CREDIT_NOTES)
    for name in ("own", "neighbour"):
        for _ in range(3):
            services.credit_note_issue(
                invoice_id=world[name].pk, reason="Geste", actor=None, amount=D("10")
            )

    many, shown_after = list_queries(api, CREDIT_NOTES)

    assert (shown, shown_after) == (2, 8)
    assert many == few


def test_the_billing_run_list_reads_a_fixed_number_of_queries(world):
    runs(world)
    api = login("administrator", world)
    list_queries(api, RUNS)
    few, shown = list_queries(api, RUNS)
    for month in range(3, 9):
        for agency in ("gombe", "lubumbashi"):
            services.billing_run_start(
                period=dt.date(2026, month, 1), agency_id=world[agency].pk, actor=None
            )

    many, shown_after = list_queries(api, RUNS)

    assert (shown, shown_after) == (3, 15)
    assert many == few


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [("billing_agent", True), ("agency_manager", True), ("cashier", False), ("client", False)],
)
def test_who_may_issue_a_draft(world, actor, allowed):
    api = login(actor, world)

    response = api.post(f"{INVOICES}{world['draft'].pk}/issue/")

    draft = Invoice.objects.get(pk=world["draft"].pk)
    if allowed:
        assert response.status_code == 200
        assert response.json()["number"].startswith("FAC-")
        assert draft.status == Invoice.Status.ISSUED
    else:
        assert response.status_code in (403, 404)
        assert draft.status == Invoice.Status.DRAFT


def test_another_agencys_invoice_cannot_be_credited(world):
    api = login("billing_agent", world)

    response = api.post(f"{INVOICES}{world['other'].pk}/credit/", {"reason": "Erreur"})

    assert response.status_code == 404
    assert not CreditNote.objects.exists()


def test_a_credit_note_through_the_api(world):
    api = login("billing_agent", world)
    url = f"{INVOICES}{world['own'].pk}/credit/"

    for bad, field in (({"amount": "10"}, "reason"), ({"reason": "x", "amount": "abc"}, "amount")):
        refused = api.post(url, bad)
        assert refused.status_code == 400
        assert field in refused.json()
    too_much = api.post(url, {"reason": "Erreur", "amount": "99999999"})
    assert too_much.status_code == 400
    assert "amount" in too_much.json()
    assert not CreditNote.objects.exists()

    done = api.post(url, {"reason": "Geste commercial", "amount": "1160"})

    assert done.status_code == 201
    assert done.json()["total"] == "1160.00"
    assert AccountEntry.objects.filter(kind="credit_note").count() == 1


def test_review_needs_a_note(world):
    api = login("billing_agent", world)

    response = api.post(f"{INVOICES}{world['draft'].pk}/review/", {"note": ""})

    assert response.status_code == 400
    assert "note" in response.json()
    assert Invoice.objects.get(pk=world["draft"].pk).reviewed_at is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"period": "2026-10-02"}, "period"),
        ({"period": "2099-01-01"}, "period"),
        ({"period": "octobre"}, "period"),
        ({}, "period"),
    ],
)
def test_a_bad_billing_run_is_refused(world, payload, field):
    api = login("billing_agent", world)

    response = api.post("/api/billing/runs/", {"agency": world["gombe"].pk, **payload})

    assert response.status_code == 400
    assert field in response.json()
    assert not BillingRun.objects.exists()


def test_a_billing_run_of_another_agency_is_refused(world):
    api = login("billing_agent", world)

    response = api.post(
        "/api/billing/runs/", {"period": "2026-10-01", "agency": world["lubumbashi"].pk}
    )

    assert response.status_code == 400
    assert not BillingRun.objects.exists()


def test_a_billing_run_through_the_api_drafts_and_issues(
    world, django_capture_on_commit_callbacks, mailoutbox
):
    # Celery runs the tasks in this process during tests, once the request commits.
    api = login("billing_agent", world)
    site = metered_site(agency=world["gombe"], readings=READINGS)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/billing/runs/",
            {"period": "2026-10-01", "agency": world["gombe"].pk, "issue_when_drafted": True},
        )

    assert response.status_code == 201
    run = BillingRun.objects.get()
    assert run.status == BillingRun.Status.ISSUED
    assert Invoice.objects.get(site=site).status == Invoice.Status.ISSUED
    # The draft of the agency was drafted again, then issued with the rest.
    assert Invoice.objects.get(site_id=world["draft"].site_id).status == Invoice.Status.ISSUED
    assert Invoice.objects.get(pk=world["other"].pk).run is None


def statement_year(world) -> dict[str, str]:
    """A CDF statement over the calendar year in which the world's invoices were issued."""
    year = world["own"].issue_date.year
    return {"currency": "CDF", "start": f"{year}-01-01", "end": f"{year}-12-31"}


def test_a_client_reads_their_statement_and_no_one_elses(world):
    api = login("client", world)
    own, other = world["own"].client_id, world["other"].client_id
    query = statement_year(world)

    mine = api.get(f"/api/billing/statements/{own}/", query)
    assert mine.status_code == 200
    assert mine.json()["closing"] == "24940.00"
    assert [line["reference"] for line in mine.json()["lines"]] == [world["own"].number]
    assert api.get(f"/api/billing/statements/{other}/", query).status_code == 404
    pdf = api.get(f"/api/billing/statements/{own}/pdf/", query)
    assert pdf.status_code == 200
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")


@pytest.mark.parametrize(("actor", "visible"), CLIENT_DOCUMENTS_VISIBLE.items())
def test_who_reads_which_statements_and_their_pdfs(world, actor, visible, tmp_path):
    """The statement of the client, of a neighbour of the same agency, of another agency's
    client: as data and as a PDF, to those who see the client, and to no one else."""
    api = login(actor, world)
    query = statement_year(world)

    for name in ("own", "neighbour", "other"):
        client = world[name].client
        url = f"/api/billing/statements/{client.pk}/"
        data, pdf = api.get(url, query), api.get(f"{url}pdf/", query)
        if isinstance(visible, int):
            assert (data.status_code, pdf.status_code) == (visible, visible)
        elif name in visible:
            assert data.status_code == 200
            assert [line["reference"] for line in data.json()["lines"]] == [world[name].number]
            words = pdf_words(pdf, tmp_path)
            assert client.number in words
            assert world[name].number in words
        else:
            assert (data.status_code, pdf.status_code) == (404, 404)


@pytest.mark.parametrize(
    "query",
    [
        {"currency": "EUR", "start": "2026-01-01", "end": "2026-12-31"},
        {"currency": "CDF", "start": "2026-12-31", "end": "2026-01-01"},
        {"currency": "CDF", "start": "hier", "end": "2026-01-01"},
        {"currency": "CDF", "start": "2020-01-01", "end": "2026-01-01"},
        {},
    ],
)
def test_a_bad_statement_query_is_a_400(world, query):
    api = login("billing_agent", world)

    response = api.get(f"/api/billing/statements/{world['own'].client_id}/", query)

    assert response.status_code == 400


def test_anyone_reads_the_published_tariffs():
    tariff(social_ceiling_kwh=Decimal(30), social_price_per_kwh=Decimal(60))

    response = APIClient().get("/api/billing/tariffs/")

    assert response.status_code == 200
    (published,) = response.json()
    assert published["code"] == "RES-2026"
    assert published["category_label"] == "Résidentiel"
    assert published["bands"] == [
        {"up_to_kwh": "50.000", "price_per_kwh": "100.0000"},
        {"up_to_kwh": None, "price_per_kwh": "200.0000"},
    ]
