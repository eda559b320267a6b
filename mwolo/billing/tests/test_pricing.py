"""Block tariff arithmetic: the properties every bill and every token sale rests on."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from mwolo.billing.pricing import energy_cost, energy_for_amount, round_money

BANDS = ((Decimal(50), Decimal(100)), (Decimal(200), Decimal(150)), (None, Decimal(300)))

kwh = st.decimals(min_value=0, max_value=5000, places=3)
money = st.decimals(min_value=0, max_value=2_000_000, places=2)


def test_a_consumption_across_bands_pays_each_block_at_its_price():
    # 50 at 100, 150 at 150, 20 at 300
    assert energy_cost(BANDS, already_kwh=Decimal(0), kwh=Decimal(220)) == Decimal(33500)
    # the month had 180 already: 20 at 150, then 20 at 300
    assert energy_cost(BANDS, already_kwh=Decimal(180), kwh=Decimal(40)) == Decimal(9000)


def test_money_rounds_halves_away_from_zero():
    assert round_money(Decimal("10.005")) == Decimal("10.01")
    assert round_money(Decimal("10.004")) == Decimal("10.00")


@given(already=kwh, first=kwh, second=kwh)
def test_buying_in_two_steps_costs_what_buying_at_once_does(already, first, second):
    at_once = energy_cost(BANDS, already_kwh=already, kwh=first + second)
    in_two = energy_cost(BANDS, already_kwh=already, kwh=first) + energy_cost(
        BANDS, already_kwh=already + first, kwh=second
    )
    assert at_once == in_two


@given(already=kwh, amount=money)
def test_the_energy_an_amount_buys_costs_that_amount(already, amount):
    bought = energy_for_amount(BANDS, already_kwh=already, amount=amount)
    assert abs(energy_cost(BANDS, already_kwh=already, kwh=bought) - amount) < Decimal("1e-12")


@given(already=kwh, smaller=money, larger=money)
def test_more_money_never_buys_less_energy(already, smaller, larger):
    smaller, larger = sorted((smaller, larger))
    assert energy_for_amount(BANDS, already_kwh=already, amount=smaller) <= energy_for_amount(
        BANDS, already_kwh=already, amount=larger
    )


@given(already=kwh, amount=kwh)
def test_later_in_the_month_a_kwh_never_costs_less(already, amount):
    later = already + Decimal(10)
    assert energy_cost(BANDS, already_kwh=later, kwh=amount) >= energy_cost(
        BANDS, already_kwh=already, kwh=amount
    )
