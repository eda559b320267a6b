"""Payments over the API: who may see and do what; bad input; fixed query counts."""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing.selectors import client_balances
from mwolo.core import clock
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.geo.tests.factories import commune
from mwolo.payments import services
from mwolo.payments.models import CashSession, Payment, PaymentIntent
from mwolo.payments.tests.factories import D, cashier_of, site_with_invoices

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/payments/payments/"


@pytest.fixture
def world():
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    own_site, _ = site_with_invoices(agency=gombe)
    other_site, _ = site_with_invoices(agency=lubumbashi)
    paid = {}
    for name, agency, site in (("own", gombe, own_site), ("other", lubumbashi, other_site)):
        cashier = cashier_of(agency)
        services.cash_session_open(
            cashier=cashier, agency_id=agency.pk, opening_cdf=D(0), opening_usd=D(0)
        )
        paid[name] = services.payment_record_cash(
            cashier=cashier, client_id=site.client_id, amount=D(1000), currency="CDF"
        )
    return {"gombe": gombe, "own": own_site, "other": other_site, **paid}


def login(actor, world):
    api = APIClient()
    if actor == "anonymous":
        return api, None
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
    return api, user


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        ("anonymous", None),
        ("administrator", {"own", "other"}),
        ("agency_manager", {"own"}),
        ("billing_agent", {"own"}),
        ("cashier", {"own"}),
        ("support_agent", {"own"}),
        ("technician", None),
        ("hr_officer", None),
        ("client", {"own"}),
    ],
)
def test_who_sees_which_payments_and_receipts(world, actor, sees):
    api, _user = login(actor, world)

    listed = api.get(PAYMENTS)

    if sees is None:
        assert listed.status_code in (401, 403)
        assert api.get(f"{PAYMENTS}{world['own'].pk}/receipt/").status_code in (401, 403)
        return
    assert {row["receipt_number"] for row in listed.json()["results"]} == {
        world[name].receipt_number for name in sees
    }
    for name in ("own", "other"):
        receipt = api.get(f"{PAYMENTS}{world[name].pk}/receipt/")
        assert receipt.status_code == (200 if name in sees else 404)
        if name in sees:
            assert b"".join(receipt.streaming_content).startswith(b"%PDF")
    ticket = api.get(f"{PAYMENTS}{world['own'].pk}/receipt/", {"page": "ticket80"})
    assert ticket.status_code == 200
    assert ticket.content.startswith(b"%PDF")


def test_the_payment_list_reads_a_fixed_number_of_queries(world):
    api, _user = login("administrator", world)

    def count():
        with CaptureQueriesContext(connection) as captured:
            assert api.get(PAYMENTS).status_code == 200
        return len(captured)

    count()
    few = count()
    cashier = CashSession.objects.get(agency=world["gombe"]).cashier
    for _ in range(5):
        services.payment_record_cash(
            cashier=cashier, client_id=world["own"].client_id, amount=D(10), currency="CDF"
        )
    assert count() == few


def test_a_cashier_takes_cash_through_the_api_and_closes_the_till(world):
    api, _cashier = login("cashier", world)

    opened = api.post(
        "/api/payments/tills/open/",
        {"agency": world["gombe"].pk, "opening_cdf": "10000", "opening_usd": "0"},
    )
    assert opened.status_code == 201
    paid = api.post(
        f"{PAYMENTS}cash/", {"client": world["own"].client_id, "amount": "5000", "currency": "CDF"}
    )
    assert paid.status_code == 201
    assert paid.json()["method_label"] == "Espèces"
    refused = api.post("/api/payments/tills/close/", {"counted_cdf": "14000", "counted_usd": "0"})
    assert refused.status_code == 400
    assert "note" in refused.json()
    closed = api.post(
        "/api/payments/tills/close/",
        {"counted_cdf": "14000", "counted_usd": "0", "note": "Erreur de rendu"},
    )
    assert closed.status_code == 200
    assert closed.json()["variance_cdf"] == "-1000.00"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount": "-5", "currency": "CDF"}, "amount"),
        ({"amount": "abc", "currency": "CDF"}, "amount"),
        ({"amount": "5", "currency": "EUR"}, "currency"),
        ({"amount": "5"}, "currency"),
    ],
)
def test_bad_cash_through_the_api_is_a_400_and_writes_nothing(world, payload, field):
    api, cashier = login("cashier", world)
    services.cash_session_open(
        cashier=cashier, agency_id=world["gombe"].pk, opening_cdf=D(0), opening_usd=D(0)
    )
    before = Payment.objects.count()

    response = api.post(f"{PAYMENTS}cash/", {"client": world["own"].client_id, **payload})

    assert response.status_code == 400
    assert field in response.json()
    assert Payment.objects.count() == before


def test_a_client_pays_only_for_themself(world):
    api, _user = login("client", world)

    # The client field is ignored: a client always pays their own account.
    response = api.post(
        "/api/payments/intents/",
        {
            "client": world["other"].client_id,
            "provider": "airtel",
            "msisdn": "+243970000101",
            "amount": "5000",
            "currency": "CDF",
            "invoice": world["other"].client.invoices.get().pk,
        },
    )

    assert response.status_code == 400
    assert "invoice" in response.json()
    assert not PaymentIntent.objects.exists()


def test_only_managers_reverse_payments(world):
    cashier_api, _ = login("cashier", world)
    manager_api, _ = login("agency_manager", world)
    url = f"{PAYMENTS}{world['own'].pk}/reverse/"

    assert cashier_api.post(url, {"reason": "Erreur"}).status_code == 403
    assert manager_api.post(url, {"reason": ""}).status_code == 400
    other = manager_api.post(f"{PAYMENTS}{world['other'].pk}/reverse/", {"reason": "Erreur"})
    assert other.status_code == 404
    done = manager_api.post(url, {"reason": "Mauvais client"})
    assert done.status_code == 200
    assert done.json()["status"] == "reversed"
    assert Payment.objects.get(pk=world["other"].pk).status == "recorded"


def test_a_reversal_through_the_api_is_audited_with_who_and_why(world):
    api, manager = login("agency_manager", world)
    payment = world["own"]

    done = api.post(f"{PAYMENTS}{payment.pk}/reverse/", {"reason": "Chèque sans provision"})

    assert done.status_code == 200
    entry = LogEntry.objects.get_for_object(payment).get(action=LogEntry.Action.UPDATE)
    assert entry.actor == manager
    assert entry.changes_dict["reversal_reason"] == ["", "Chèque sans provision"]
    assert entry.changes_dict["status"] == ["recorded", "reversed"]
    assert entry.changes_dict["reversed_by"][1] == str(manager.pk)


# --- Bank transfers ----------------------------------------------------------------------

BANK = f"{PAYMENTS}bank/"


def transfer(world, **changes):
    """What is left on the Gombe client's invoice (23 940 CDF), by transfer."""
    return {
        "client": world["own"].client_id,
        "amount": "23940",
        "currency": "CDF",
        "bank_reference": "RAW-2026-11-0042",
        **changes,
    }


def nothing_written(world):
    """Only the fixture's two cash payments; each invoice still owes 23 940 CDF."""
    assert set(Payment.objects.values_list("method", flat=True)) == {"cash"}
    assert Payment.objects.count() == 2
    for name in ("own", "other"):
        assert client_balances(client_id=world[name].client_id) == {"CDF": D(23940)}


@pytest.mark.parametrize(
    ("actor", "status"),
    [
        ("billing_agent", 201),
        ("agency_manager", 201),
        ("administrator", 201),
        ("cashier", 403),  # cash at the till only
        ("support_agent", 403),
        ("technician", 403),
        ("hr_officer", 403),
        ("client", 403),
        ("anonymous", 401),
    ],
)
def test_who_records_bank_transfers(world, actor, status):
    api, user = login(actor, world)

    response = api.post(BANK, transfer(world))

    assert response.status_code == status
    if status != 201:
        if status == 401:
            assert response["WWW-Authenticate"].startswith("Bearer")
        nothing_written(world)
        return
    body = response.json()
    assert (body["method"], body["method_label"]) == ("bank", "Virement bancaire")
    assert (body["amount"], body["currency"]) == ("23940.00", "CDF")
    assert body["operator_transaction_id"] == "RAW-2026-11-0042"
    payment = Payment.objects.get(method="bank")
    assert (payment.receipt_number, payment.recorded_by) == (body["receipt_number"], user)
    assert payment.client_id == world["own"].client_id
    assert world["own"].client.invoices.get().status == "paid"
    assert client_balances(client_id=world["own"].client_id) == {"CDF": D("0.00")}
    assert client_balances(client_id=world["other"].client_id) == {"CDF": D(23940)}


def test_a_transfer_for_a_client_of_another_agency_is_refused(world):
    api, _user = login("billing_agent", world)

    response = api.post(BANK, transfer(world, client=world["other"].client_id))

    assert response.status_code == 404
    nothing_written(world)


def test_a_bank_reference_pays_once(world):
    api, _user = login("billing_agent", world)
    assert api.post(BANK, transfer(world, amount="1000")).status_code == 201
    once = Payment.objects.get(method="bank")

    # The same reference again, typed with spaces around it, or for another client.
    again = api.post(
        BANK,
        transfer(world, amount="1000", bank_reference=" RAW-2026-11-0042 "),
    )
    administrator, _user = login("administrator", world)
    other = administrator.post(
        BANK, transfer(world, client=world["other"].client_id, amount="1000")
    )

    for refused in (again, other):
        assert refused.status_code == 400
        assert refused.json() == {
            "bank_reference": ["Un virement de référence RAW-2026-11-0042 est déjà enregistré."]
        }
    assert list(Payment.objects.filter(method="bank")) == [once]
    assert client_balances(client_id=world["own"].client_id) == {"CDF": D(22940)}
    assert client_balances(client_id=world["other"].client_id) == {"CDF": D(23940)}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "12.345"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "1e30"}, "amount"),
        ({"amount": None}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"currency": None}, "currency"),
        ({"bank_reference": None}, "bank_reference"),
        ({"bank_reference": "   "}, "bank_reference"),
        ({"bank_reference": "R" * 101}, "bank_reference"),
        ({"client": None}, "client"),
        ({"client": "abc"}, "client"),
        ({"invoice": "abc"}, "invoice"),
        ({"invoice": "other"}, "invoice"),  # another client's invoice
        ({"currency": "USD", "amount": "10"}, "detail"),  # no dollar rate this week
    ],
)
def test_a_bad_transfer_is_a_400_and_writes_nothing(world, changes, field):
    api, _user = login("billing_agent", world)
    if changes.get("invoice") == "other":
        changes = {"invoice": world["other"].client.invoices.get().pk}
    payload = {k: v for k, v in transfer(world, **changes).items() if v is not None}

    response = api.post(BANK, payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    nothing_written(world)


def test_the_transfer_list_reads_a_fixed_number_of_queries(world):
    api, _user = login("administrator", world)
    agents = {
        name: EmployeeFactory(role=Role.BILLING_AGENT, agency=world[name].client.agency)
        for name in ("own", "other")
    }

    def record(name, reference):
        services.payment_record_bank(
            actor=agents[name],
            client_id=world[name].client_id,
            amount=D(10),
            currency="CDF",
            bank_reference=reference,
        )

    def count():
        with CaptureQueriesContext(connection) as captured:
            listed = api.get(PAYMENTS, {"method": "bank"})
        assert listed.status_code == 200
        return len(captured), len(listed.json()["results"])

    record("own", "VIR-0")
    count()  # the user's permissions are read once
    few, shown = count()
    for index in range(1, 5):
        record("own", f"VIR-G{index}")
        record("other", f"VIR-L{index}")
    assert count() == (few, shown + 8)


# --- Mobile-money requests and tills: who sees them, fixed query counts -------------------

INTENTS = "/api/payments/intents/"
TILLS = "/api/payments/tills/"


def intent_for(site, msisdn="+243970000101"):
    return PaymentIntent.objects.create(
        client=site.client,
        purpose=PaymentIntent.Purpose.ACCOUNT,
        provider="airtel",
        msisdn=msisdn,
        amount=D(5000),
        currency="CDF",
        expires_at=clock.now() + services.INTENT_LIFETIME,
    )


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        ("anonymous", None),
        ("administrator", {"own", "other"}),
        ("agency_manager", {"own"}),
        ("billing_agent", {"own"}),
        ("cashier", {"own"}),
        ("support_agent", {"own"}),
        ("technician", None),
        ("hr_officer", None),
        ("client", {"own"}),
    ],
)
def test_who_sees_which_mobile_money_requests(world, actor, sees):
    intents = {name: intent_for(world[name]) for name in ("own", "other")}
    api, _user = login(actor, world)

    listed = api.get(INTENTS)

    if sees is None:
        assert listed.status_code in (401, 403)
        assert api.get(f"{INTENTS}{intents['own'].pk}/").status_code in (401, 403)
        return
    assert {row["reference"] for row in listed.json()["results"]} == {
        intents[name].reference for name in sees
    }
    for name in ("own", "other"):
        detail = api.get(f"{INTENTS}{intents[name].pk}/")
        assert detail.status_code == (200 if name in sees else 404)


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        ("anonymous", None),
        ("administrator", {"own", "other"}),
        ("agency_manager", {"own"}),
        ("billing_agent", {"own"}),
        ("cashier", {"own"}),
        ("support_agent", None),
        ("technician", None),
        ("hr_officer", None),
        ("client", None),
    ],
)
def test_who_sees_which_tills(world, actor, sees):
    tills = {
        "own": CashSession.objects.get(agency=world["gombe"]),
        "other": CashSession.objects.exclude(agency=world["gombe"]).get(),
    }
    api, _user = login(actor, world)

    listed = api.get(TILLS)

    if sees is None:
        assert listed.status_code in (401, 403)
        assert api.get(f"{TILLS}{tills['own'].pk}/").status_code in (401, 403)
        return
    assert {row["id"] for row in listed.json()["results"]} == {tills[name].pk for name in sees}
    for name in ("own", "other"):
        assert api.get(f"{TILLS}{tills[name].pk}/").status_code == (200 if name in sees else 404)


def test_the_request_and_till_lists_read_a_fixed_number_of_queries(world):
    api, _user = login("administrator", world)

    def count(url):
        with CaptureQueriesContext(connection) as captured:
            assert api.get(url).status_code == 200
        return len(captured)

    def pay(index):
        paid = intent_for(world["own"], msisdn=f"+24397000020{index}")
        services._pay(paid, transaction_id=f"MP{index:08d}", payer=str(paid.msisdn))

    pay(0)
    intent_for(world["other"])
    [count(url) for url in (INTENTS, TILLS)]  # the user's permissions are read once
    few = {url: count(url) for url in (INTENTS, TILLS)}
    for index in range(1, 6):
        pay(index)
        intent_for(world["other"])
        cashier = cashier_of(world["gombe"])
        services.cash_session_open(
            cashier=cashier, agency_id=world["gombe"].pk, opening_cdf=D(0), opening_usd=D(0)
        )
    assert {url: count(url) for url in (INTENTS, TILLS)} == few
