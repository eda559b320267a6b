"""Block tariff arithmetic: the properties every bill and every token sale rests on."""

from dataclasses import replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from hypothesis import example, given
from hypothesis import strategies as st

from mwolo.billing.pricing import (
    KWH,
    Segment,
    Terms,
    consumption_split,
    energy_cost,
    energy_for_amount,
    month_price,
    round_money,
)
from mwolo.billing.services import social_tranche_check

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
vat_rates = st.sampled_from([Decimal(0), Decimal("0.16"), Decimal("0.08")])


def social_tranche_accepted(ceiling: Decimal, price: Decimal) -> bool:
    """Whether the tariff service lets a tariff on ``BANDS`` have this social tranche."""
    try:
        social_tranche_check(BANDS, ceiling_kwh=ceiling, price_per_kwh=price)
    except ValidationError:
        return False
    return True


@st.composite
def terms_strategy(draw, *, social=None):
    """A tariff on ``BANDS`` the service accepts, with a social tranche or without
    (``social`` None: either)."""
    ceiling = price = None
    if draw(st.booleans()) if social is None else social:
        ceiling = draw(st.decimals(min_value="0.001", max_value=400, places=3))
        price = draw(
            st.decimals(min_value="0.0001", max_value=150, places=4).filter(
                lambda price: social_tranche_accepted(ceiling, price)
            )
        )
    return Terms(
        key=draw(st.integers(1, 3)),
        bands=BANDS,
        fixed_monthly_charge=draw(st.decimals(min_value=0, max_value=50_000, places=2)),
        vat_rate=draw(vat_rates),
        social_ceiling_kwh=ceiling,
        social_price_per_kwh=price,
    )


shares = st.lists(st.integers(1, 31), min_size=1, max_size=3).filter(lambda days: sum(days) <= 31)


@given(kwh=kwh, days=st.lists(st.integers(1, 31), min_size=1, max_size=4))
def test_consumption_splits_to_the_wh_and_adds_up(kwh, days):
    parts = consumption_split(kwh, [Decimal(d) for d in days])
    assert sum(parts) == kwh
    assert all(part == part.quantize(Decimal("0.001")) for part in parts)


@given(kwh=kwh, days=shares, terms=st.lists(terms_strategy(), min_size=3, max_size=3))
def test_an_invoice_adds_up_on_paper_and_is_within_rounding_of_the_exact_price(kwh, days, terms):
    """Part months (a tariff change, a meter installed mid-month) prorate the fixed charge,
    the band limits and the social ceiling; the rounding rule holds whatever the mix."""
    segment_shares = [Decimal(d) / 31 for d in days]
    parts = consumption_split(kwh, segment_shares)
    segments = [
        Segment(terms=t, share=share, kwh=part)
        for t, share, part in zip(terms, segment_shares, parts, strict=False)
    ]

    priced = month_price(segments)

    # Each line rounded once, the VAT of each rate rounded once, the rest exact sums.
    assert all(line.amount == round_money(line.quantity * line.unit_price) for line in priced.lines)
    bases: dict[Decimal, Decimal] = {}
    for line in priced.lines:
        bases[line.vat_rate] = bases.get(line.vat_rate, Decimal(0)) + line.amount
    assert priced.vat == sum(round_money(base * rate) for rate, base in bases.items())
    assert priced.subtotal == sum(line.amount for line in priced.lines)
    assert priced.total == priced.subtotal + priced.vat
    assert sum(line.quantity for line in priced.lines if line.kind != "fixed") == kwh
    # Each rounded amount is within half a cent of its exact value.
    exact = sum((line.quantity * line.unit_price) * (1 + line.vat_rate) for line in priced.lines)
    assert abs(priced.total - exact) <= CENT / 2 * (len(priced.lines) * 2 + len(bases))


@given(first=kwh, more=kwh, terms=terms_strategy())
@example(  # one Wh over the social ceiling: the whole month at the bands' prices
    first=Decimal(30),
    more=Decimal("0.001"),
    terms=Terms(
        key=1,
        bands=BANDS,
        fixed_monthly_charge=Decimal(2500),
        vat_rate=Decimal("0.16"),
        social_ceiling_kwh=Decimal(30),
        social_price_per_kwh=Decimal(100),
    ),
)
def test_using_more_never_costs_less(first, more, terms):
    low = month_price([Segment(terms=terms, share=Decimal(1), kwh=first)])
    high = month_price([Segment(terms=terms, share=Decimal(1), kwh=first + more)])
    assert high.total >= low.total


@given(
    terms=terms_strategy(social=True),
    days=st.integers(1, 31),
    thousandths=st.integers(0, 1000),
)
def test_a_month_within_the_social_ceiling_is_billed_at_the_social_price_and_never_dearer(
    terms, days, thousandths
):
    """At or below its ceiling (prorated for a part month) the whole month is at the social
    price, which never costs more than the normal bands would have."""
    share = Decimal(days) / 31
    ceiling = (terms.social_ceiling_kwh * share).quantize(KWH, rounding=ROUND_HALF_UP)
    used = (ceiling * thousandths / 1000).quantize(KWH, rounding=ROUND_DOWN)
    normal_terms = replace(terms, social_ceiling_kwh=None, social_price_per_kwh=None)

    social = month_price([Segment(terms=terms, share=share, kwh=used)])
    normal = month_price([Segment(terms=normal_terms, share=share, kwh=used)])

    energy = [line for line in social.lines if line.kind != "fixed"]
    if used > 0:
        (line,) = energy
        assert (line.kind, line.quantity, line.unit_price) == (
            "social",
            used,
            terms.social_price_per_kwh,
        )
        assert line.band_to_kwh == ceiling
    else:
        assert energy == []
    assert social.total <= normal.total
