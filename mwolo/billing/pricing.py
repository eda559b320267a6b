"""Block tariffs as arithmetic: no database, exact Decimals.

A tariff's bands are ``(up_to_kwh, price_per_kwh)`` in ascending order, the last one open
(``up_to_kwh`` None); ``up_to_kwh`` counts the kWh of the month so far. Rounding to money
happens once per billed amount, with ``round_money`` (see ``month_price`` for invoices).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

Band = tuple[Decimal | None, Decimal]
CENT = Decimal("0.01")


def round_money(amount: Decimal) -> Decimal:
    """To the cent, halves away from zero: the rule for every amount billed or charged."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def energy_cost(bands: Sequence[Band], *, already_kwh: Decimal, kwh: Decimal) -> Decimal:
    """The price before VAT of ``kwh`` more, when the month has used ``already_kwh``."""
    cost, position, remaining = Decimal(0), already_kwh, kwh
    for up_to, price in bands:
        if remaining <= 0:
            break
        if up_to is not None and position >= up_to:
            continue
        taken = remaining if up_to is None else min(remaining, up_to - position)
        cost += taken * price
        position += taken
        remaining -= taken
    return cost


def energy_for_amount(bands: Sequence[Band], *, already_kwh: Decimal, amount: Decimal) -> Decimal:
    """The kWh that ``amount`` (before VAT) buys when the month has used ``already_kwh``."""
    kwh, position, left = Decimal(0), already_kwh, amount
    for up_to, price in bands:
        if left <= 0:
            break
        if up_to is not None and position >= up_to:
            continue
        affordable = left / price
        if up_to is None or affordable <= up_to - position:
            return kwh + affordable
        kwh += up_to - position
        left -= (up_to - position) * price
        position = up_to
    return kwh


# --- A month's invoice ---------------------------------------------------------------------

KWH = Decimal("0.001")
SHARE = Decimal("0.0001")  # the share of a month, as printed next to the fixed charge


@dataclass(frozen=True)
class Terms:
    """What a tariff charges, without the database: ``key`` identifies the tariff."""

    key: int
    bands: Sequence[Band]
    fixed_monthly_charge: Decimal
    vat_rate: Decimal
    social_ceiling_kwh: Decimal | None = None
    social_price_per_kwh: Decimal | None = None


@dataclass(frozen=True)
class Segment:
    """Part of a month under one tariff: ``share`` of the month, ``kwh`` used in it."""

    terms: Terms
    share: Decimal
    kwh: Decimal


@dataclass(frozen=True)
class PricedLine:
    kind: str  # "fixed", "energy" or "social" (InvoiceLine.Kind)
    terms_key: int
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # quantity × unit price, rounded to the cent
    vat_rate: Decimal
    band_from_kwh: Decimal | None = None
    band_to_kwh: Decimal | None = None


@dataclass(frozen=True)
class PricedMonth:
    lines: list[PricedLine]
    subtotal: Decimal
    vat: Decimal
    total: Decimal


def consumption_split(kwh: Decimal, shares: Sequence[Decimal]) -> list[Decimal]:
    """``kwh`` divided in proportion to ``shares``, to the Wh, adding up to ``kwh`` exactly."""
    whole = sum(shares, Decimal(0))
    if whole <= 0:
        return [Decimal(0) for _share in shares]
    parts = [(kwh * share / whole).quantize(KWH, rounding=ROUND_HALF_UP) for share in shares[:-1]]
    return [*parts, kwh - sum(parts, Decimal(0))]


def _energy_lines(segment: Segment) -> list[PricedLine]:
    terms, share, kwh = segment.terms, segment.share, segment.kwh
    if kwh <= 0:
        return []
    if terms.social_ceiling_kwh is not None and terms.social_price_per_kwh is not None:
        ceiling = (terms.social_ceiling_kwh * share).quantize(KWH, rounding=ROUND_HALF_UP)
        if kwh <= ceiling:
            price = terms.social_price_per_kwh
            return [
                PricedLine(
                    kind="social",
                    terms_key=terms.key,
                    quantity=kwh,
                    unit_price=price,
                    amount=round_money(kwh * price),
                    vat_rate=terms.vat_rate,
                    band_to_kwh=ceiling,
                )
            ]
    lines, position = [], Decimal(0)
    for up_to, price in terms.bands:
        limit = None if up_to is None else (up_to * share).quantize(KWH, rounding=ROUND_HALF_UP)
        if limit is not None and limit <= position:
            continue
        taken = kwh - position if limit is None else min(kwh, limit) - position
        if taken <= 0:
            break
        lines.append(
            PricedLine(
                kind="energy",
                terms_key=terms.key,
                quantity=taken,
                unit_price=price,
                amount=round_money(taken * price),
                vat_rate=terms.vat_rate,
                band_from_kwh=position,
                band_to_kwh=limit,
            )
        )
        position += taken
    return lines


def month_price(segments: Sequence[Segment]) -> PricedMonth:
    """The lines and totals of a month of supply, one segment per tariff in force.

    A tariff in force for part of the month (or a site supplied for part of it) charges
    that share of its fixed charge and of its band limits. The rounding rule, applied
    once to each amount when it is computed: every line is quantity × unit price rounded
    to the cent, halves away from zero; the VAT of each rate is that rate times the sum of
    its lines, rounded the same way; the subtotal and the total are exact sums of those
    rounded amounts, so an invoice always adds up on paper.
    """
    lines: list[PricedLine] = []
    for segment in segments:
        terms = segment.terms
        if terms.fixed_monthly_charge > 0 and segment.share > 0:
            share = segment.share.quantize(SHARE, rounding=ROUND_HALF_UP)
            lines.append(
                PricedLine(
                    kind="fixed",
                    terms_key=terms.key,
                    quantity=share,
                    unit_price=terms.fixed_monthly_charge,
                    amount=round_money(share * terms.fixed_monthly_charge),
                    vat_rate=terms.vat_rate,
                )
            )
        lines.extend(_energy_lines(segment))
    subtotal = sum((line.amount for line in lines), Decimal(0))
    by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        by_rate[line.vat_rate] = by_rate.get(line.vat_rate, Decimal(0)) + line.amount
    vat = sum((round_money(base * rate) for rate, base in by_rate.items()), Decimal(0))
    return PricedMonth(lines=lines, subtotal=subtotal, vat=vat, total=subtotal + vat)
