"""The interface itself: requests that cannot be sent, amounts written exactly, the registry."""

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from mwolo.integrations.payments import (
    PROVIDER_NAMES,
    PaymentStatus,
    ProviderError,
    UnknownProviderError,
    provider_for,
)
from mwolo.integrations.payments.airtel import AirtelProvider
from mwolo.integrations.payments.base import amount_text, json_body, whole_units


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reference", "PI-2026-1", "reference"),
        ("reference", "P" * 21, "reference"),
        ("amount", 5000, "Decimal"),
        ("amount", Decimal("NaN"), "Decimal"),
        ("amount", Decimal("0"), "positive"),
        ("amount", Decimal("-5"), "positive"),
        ("amount", Decimal("1.005"), "2 decimals"),
        ("currency", "EUR", "currency"),
        ("msisdn", "0812345678", "msisdn"),
        ("msisdn", "+254712345678", "msisdn"),
        ("description", "", "description"),
        ("description", "ligne\nsuivante", "description"),
        ("callback_url", "ftp://example.org/", "callback_url"),
        ("return_url", "/relative/", "return_url"),
        ("language", "ln", "language"),
    ],
)
def test_a_request_no_operator_could_take_is_refused(push_request, field, value, message):
    with pytest.raises(ValueError, match=message):
        push_request(**{field: value})


@given(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999999.99"), places=2),
)
def test_amounts_go_out_as_exact_json_numbers(amount):
    body = json_body({"transaction": {"amount": amount, "currency": "USD"}})

    decoded = json.loads(body, parse_float=Decimal)
    assert Decimal(decoded["transaction"]["amount"]) == amount
    assert decoded["transaction"]["currency"] == "USD"


@given(st.decimals(min_value=1, max_value=10**12, places=2))
def test_whole_units_never_round_and_text_keeps_the_cents(amount):
    assert Decimal(amount_text(amount)) == amount
    if amount == amount.to_integral_value():
        assert whole_units(amount, "x") == amount
    else:
        with pytest.raises(ProviderError, match="whole amounts only"):
            whole_units(amount, "x")


def test_a_text_that_looks_like_a_placeholder_stays_text():
    body = json_body({"reference": "abc:0", "amount": Decimal("1.50")})

    assert json.loads(body) == {"reference": "abc:0", "amount": 1.5}


def test_floats_are_refused():
    with pytest.raises(TypeError, match="float"):
        json_body({"amount": 1.5})


def test_every_operator_has_a_provider_and_unknown_names_are_refused(mobile_money):
    assert [provider_for(name).name for name in PROVIDER_NAMES] == list(PROVIDER_NAMES)
    with pytest.raises(UnknownProviderError):
        provider_for("mtn")


def test_settings_may_name_another_implementation(settings):
    blocks = dict(settings.MOBILE_MONEY)
    blocks["vodacom"] = {
        **blocks["airtel"],
        "backend": "mwolo.integrations.payments.airtel.AirtelProvider",
    }
    settings.MOBILE_MONEY = blocks

    assert isinstance(provider_for("vodacom"), AirtelProvider)


def test_a_settings_block_without_its_address_is_a_configuration_error(settings):
    settings.MOBILE_MONEY = {**settings.MOBILE_MONEY, "orange": {"client_id": "x"}}

    with pytest.raises(ImproperlyConfigured, match="orange"):
        provider_for("orange")


def test_only_pending_is_not_final_and_clients_read_french():
    with translation.override("fr"):
        labels = {status: str(status.label) for status in PaymentStatus}

    assert [status for status in PaymentStatus if not status.is_final] == [PaymentStatus.PENDING]
    assert labels == {
        PaymentStatus.PENDING: "En attente",
        PaymentStatus.SUCCEEDED: "Payé",
        PaymentStatus.FAILED: "Échoué",
        PaymentStatus.CANCELLED: "Annulé par le client",
        PaymentStatus.EXPIRED: "Expiré sans réponse",
        PaymentStatus.INSUFFICIENT_FUNDS: "Solde insuffisant",
        PaymentStatus.WRONG_PIN: "Code PIN erroné",
    }
