"""Push requests and payer numbers for the adapter tests (the simulator picks the outcome
from the number's last three digits)."""

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from mwolo.integrations.payments import PushRequest
from sandbox.operators import MAGIC_SUFFIXES, Outcome

_references = itertools.count(1)
_SUFFIXES = {outcome: suffix for suffix, outcome in MAGIC_SUFFIXES.items()}


def number_for(outcome: Outcome, prefix: str = "+243812345") -> str:
    """A payer number whose customer ends the push with ``outcome``."""
    return f"{prefix}{_SUFFIXES.get(outcome, '000')}"


@pytest.fixture
def push_request() -> Callable[..., PushRequest]:
    """A valid request with a fresh reference; keyword arguments replace fields."""

    def make(**fields: Any) -> PushRequest:
        values: dict[str, Any] = {
            "reference": f"PI{next(_references):08d}",
            "amount": Decimal("5000"),
            "currency": "CDF",
            "msisdn": number_for(Outcome.SUCCESS),
            "description": "Facture FA-2026-000123",
            "callback_url": "http://127.0.0.1:9/unused/",
            "return_url": "http://127.0.0.1:9/retour/",
        }
        values.update(fields)
        return PushRequest(**values)

    return make
