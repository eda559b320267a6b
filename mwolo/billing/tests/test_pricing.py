"""Block tariff arithmetic: the properties every bill and every token sale rests on."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from mwolo.billing.pricing import (
    Segment,
    Terms,
    consumption_split,
    energy_cost,
    energy_for_amount,
    month_price,
    round_money,
)

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


# --- A month's invoice ---------------------------------------------------------------------

CENT = Decimal("0.01")
terms_strategy = st.builds(
    Terms,
    key=st.integers(1, 3),
    bands=st.just(BANDS),
    fixed_monthly_charge=st.decimals(min_value=0, max_value=50_000, places=2),
    vat_rate=st.sampled_from([Decimal(0), Decimal("0.16"), Decimal("0.08")]),
)
shares = st.lists(st.integers(1, 31), min_size=1, max_size=3).filter(lambda days: sum(days) <= 31)


@given(kwh=kwh, days=st.lists(st.integers(1, 31), min_size=1, max_size=4))
def test_consumption_splits_to_the_wh_and_adds_up(kwh, days):
    parts = consumption_split(kwh, [Decimal(d) for d in days])
    assert sum(parts) == kwh
    assert all(part == part.quantize(Decimal("0.001")) for part in parts)


@given(kwh=kwh, days=shares, terms=st.lists(terms_strategy, min_size=3, max_size=3))
def test_an_invoice_adds_up_on_paper_and_is_within_rounding_of_the_exact_price(kwh, days, terms):
    segment_shares = [Decimal(d) / 31 for d in days]
    parts = consumption_split(kwh, segment_shares)
    segments = [
        Segment(terms=t, share=share, kwh=part)
        for t, share, part in zip(terms, segment_shares, parts, strict=False)
    ]

    priced = month_price(segments)

    assert priced.subtotal == sum(line.amount for line in priced.lines)
    assert priced.total == priced.subtotal + priced.vat
    assert all(line.amount == line.amount.quantize(CENT) for line in priced.lines)
    assert sum(line.quantity for line in priced.lines if line.kind != "fixed") == kwh
    # Each rounded amount is within half a cent of its exact value.
    exact = sum((line.quantity * line.unit_price) * (1 + line.vat_rate) for line in priced.lines)
    rates = {line.vat_rate for line in priced.lines}
    assert abs(priced.total - exact) <= CENT / 2 * (len(priced.lines) * 2 + len(rates))


@given(first=kwh, more=kwh)
def test_using_more_never_costs_less(first, more):
    terms = Terms(key=1, bands=BANDS, fixed_monthly_charge=Decimal(2500), vat_rate=Decimal("0.16"))
    low = month_price([Segment(terms=terms, share=Decimal(1), kwh=first)])
    high = month_price([Segment(terms=terms, share=Decimal(1), kwh=first + more)])
    assert high.total >= low.total
