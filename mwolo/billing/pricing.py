"""Block tariffs as arithmetic: no database, exact Decimals, no rounding.

A tariff's bands are ``(up_to_kwh, price_per_kwh)`` in ascending order, the last one open
(``up_to_kwh`` None); ``up_to_kwh`` counts the kWh of the month so far. Rounding to money
happens once, on totals, where the amounts are billed (``round_money``).
"""

from collections.abc import Sequence
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
