"""Tariffs and exchange rates: what may be saved, and which applies on a day."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.urls import reverse

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
from mwolo.billing.models import Currency, ExchangeRate, Tariff
from mwolo.billing.selectors import amount_in, tariff_bands, tariff_in_force
from mwolo.billing.tests.factories import RESIDENTIAL_BANDS, tariff
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.crm.models import SiteCategory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ((), "au moins une tranche"),
        (((D(50), D(100)),), "dernière tranche"),
        (((None, D(100)), (None, D(200))), "Seule la dernière"),
        (((D(50), D(100)), (D(50), D(150)), (None, D(200))), "croître"),
        (((D(50), D(0)), (None, D(200))), "prix"),
    ],
)
def test_bands_that_make_no_sense_are_refused(bands, message):
    with pytest.raises(ValidationError, match=message):
        tariff(bands=bands)
    assert not Tariff.objects.exists()


def test_a_social_price_above_a_band_below_its_ceiling_is_refused():
    # The first 50 kWh at 100, the rest at 200: a social month of 80 kWh at 150 would cost
    # more than the bands.
    for ceiling, price in ((D(30), D("100.01")), (D(80), D(150))):
        with pytest.raises(ValidationError, match="prix social"):
            tariff(social_ceiling_kwh=ceiling, social_price_per_kwh=price)
    assert not Tariff.objects.exists()

    tariff(social_ceiling_kwh=D(80), social_price_per_kwh=D(100))
    # Falling blocks: only the bands below the ceiling count.
    tariff(
        code="IND-2026",
        category=SiteCategory.INDUSTRIAL,
        bands=((D(50), D(200)), (None, D(100))),
        social_ceiling_kwh=D(30),
        social_price_per_kwh=D(150),
    )
    assert Tariff.objects.count() == 2


def test_two_tariffs_of_a_category_cannot_overlap():
    tariff(code="RES-2026", valid_to=dt.date(2026, 12, 31))
    with pytest.raises(ValidationError, match="RES-2026"):
        tariff(code="RES-2026B", valid_from=dt.date(2026, 6, 1))
    tariff(code="COM-2026", category=SiteCategory.COMMERCIAL, valid_from=dt.date(2026, 6, 1))
    tariff(code="RES-2027", valid_from=dt.date(2027, 1, 1))
    assert Tariff.objects.count() == 3


POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.mark.skipif(not POSTGRES, reason="SQLite has one writer: its transactions never interleave")
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_tariffs_saved_at_once_are_not_both_saved():
    """One tariff is saved and its transaction not yet committed when another of the same
    category and dates is saved: the second waits, then is refused, naming the first."""
    errors: dict[str, ValidationError] = {}
    holding, release = threading.Event(), threading.Event()

    def save(code: str, *, hold: bool = False) -> threading.Thread:
        def run() -> None:
            try:
                with transaction.atomic():
                    tariff(code=code, valid_from=dt.date(2026, 6, 1))
                    if hold:
                        holding.set()
                        release.wait(20)
            except ValidationError as error:
                errors[code] = error
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    first = save("RES-2026A", hold=True)
    assert holding.wait(10)
    second = save("RES-2026B")
    second.join(1)
    waited = second.is_alive()  # for the first to commit
    release.set()
    for thread in (first, second):
        thread.join(30)

    assert list(Tariff.objects.values_list("code", flat=True)) == ["RES-2026A"]
    assert waited
    assert errors["RES-2026B"].message_dict == {
        "valid_from": ["Ces dates chevauchent le tarif RES-2026A de la même catégorie."]
    }


def test_the_tariff_in_force_follows_the_dates():
    old = tariff(code="RES-2026", valid_to=dt.date(2026, 12, 31))
    new = tariff(code="RES-2027", valid_from=dt.date(2027, 1, 1), bands=((None, D(180)),))

    assert tariff_in_force(category="residential", on=dt.date(2026, 12, 31)) == old
    assert tariff_in_force(category="residential", on=dt.date(2027, 1, 1)) == new
    assert tariff_bands(new) == [(None, D("180.0000"))]
    assert tariff_bands(old) == [(D("50.000"), D("100.0000")), (None, D("200.0000"))]
    with pytest.raises(ApplicationError, match="Aucun tarif"):
        tariff_in_force(category="industrial", on=dt.date(2026, 12, 31))


def test_amounts_convert_at_the_weeks_rate_and_not_older():
    day = dt.date(2026, 11, 20)
    ExchangeRate.objects.create(day=day - dt.timedelta(days=10), cdf_per_usd=D(2700))
    with pytest.raises(ApplicationError, match="taux"):
        amount_in(amount=D(10), currency=Currency.USD, target=Currency.CDF, on=day)
    ExchangeRate.objects.create(day=day - dt.timedelta(days=2), cdf_per_usd=D(2800))

    assert amount_in(amount=D(10), currency="USD", target="CDF", on=day) == D(28000)
    assert amount_in(amount=D(14000), currency="CDF", target="USD", on=day) == D(5)
    assert amount_in(amount=D(7), currency="USD", target="USD", on=day) == D(7)


def band_form(**overrides) -> dict:
    return {
        "code": "RES-2026",
        "name": "Résidentiel 2026",
        "category": "residential",
        "currency": "CDF",
        "fixed_monthly_charge": "2500",
        "vat_rate": "0.16",
        "social_ceiling_kwh": "",
        "social_price_per_kwh": "",
        "payment_terms_days": "15",
        "valid_from": "2026-01-01",
        "valid_to": "",
        "bands-TOTAL_FORMS": "2",
        "bands-INITIAL_FORMS": "0",
        "bands-0-up_to_kwh": "50",
        "bands-0-price_per_kwh": "100",
        "bands-1-up_to_kwh": "",
        "bands-1-price_per_kwh": "200",
        **overrides,
    }


def test_an_administrator_enters_a_block_tariff_in_the_admin(client):
    client.force_login(AdministratorFactory())

    response = client.post(reverse("admin:billing_tariff_add"), band_form())

    assert response.status_code == 302
    assert tariff_bands(Tariff.objects.get()) == [
        (D("50.000"), D("100.0000")),
        (None, D("200.0000")),
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {"bands-1-up_to_kwh": "80"},  # no open last band
        {"bands-0-price_per_kwh": "-5"},
        {"vat_rate": "16"},  # 1600%
        {"valid_to": "2025-12-31"},  # before valid_from
    ],
)
def test_a_bad_tariff_form_shows_errors_and_saves_nothing(client, overrides):
    client.force_login(AdministratorFactory())

    response = client.post(reverse("admin:billing_tariff_add"), band_form(**overrides))

    assert response.status_code == 200
    assert (
        response.context["errors"]
        or response.context["inline_admin_formsets"][0].formset.non_form_errors()
    )
    assert not Tariff.objects.exists()


def test_an_overlapping_tariff_is_refused_in_the_admin_too(client):
    tariff(bands=RESIDENTIAL_BANDS)
    client.force_login(AdministratorFactory())

    response = client.post(reverse("admin:billing_tariff_add"), band_form(code="RES-BIS"))

    assert response.status_code == 200
    assert "RES-2026" in response.content.decode()
    assert Tariff.objects.count() == 1


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.CASHIER, 200), (Role.AGENCY_MANAGER, 200), (Role.TECHNICIAN, 403)],
)
def test_who_sees_the_tariffs(client, role, status):
    client.force_login(EmployeeFactory(role=role))
    assert client.get(reverse("admin:billing_tariff_changelist")).status_code == status
    assert client.post(reverse("admin:billing_tariff_add"), band_form()).status_code == 403
    assert not Tariff.objects.exists()


def test_billing_agents_manage_the_tariffs(client):
    client.force_login(EmployeeFactory(role=Role.BILLING_AGENT))

    response = client.post(reverse("admin:billing_tariff_add"), band_form())

    assert response.status_code == 302
    assert Tariff.objects.get().code == "RES-2026"


def test_a_social_price_above_the_bands_is_refused_in_the_admin(client):
    client.force_login(AdministratorFactory())

    response = client.post(
        reverse("admin:billing_tariff_add"),
        band_form(social_ceiling_kwh="30", social_price_per_kwh="120"),
    )

    assert response.status_code == 200
    assert "Le prix social ne peut pas dépasser" in response.content.decode()
    assert not Tariff.objects.exists()
    accepted = client.post(
        reverse("admin:billing_tariff_add"),
        band_form(social_ceiling_kwh="30", social_price_per_kwh="60"),
    )
    assert accepted.status_code == 302
    assert Tariff.objects.get().social_price_per_kwh == D(60)


def test_a_social_tranche_needs_its_ceiling_and_its_price(client):
    client.force_login(AdministratorFactory())

    response = client.post(reverse("admin:billing_tariff_add"), band_form(social_ceiling_kwh="30"))

    assert response.status_code == 200
    assert "plafond et son prix" in response.content.decode()
    assert not Tariff.objects.exists()
