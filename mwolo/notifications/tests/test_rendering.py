"""The default texts every client reads, in both languages, and how texts are rendered."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwolo.notifications.events import EVENTS, EventKey
from mwolo.notifications.models import MessageTemplate
from mwolo.notifications.rendering import (
    TemplateError,
    format_decimal,
    render,
    sms_length,
)

KINSHASA = ZoneInfo("Africa/Kinshasa")
EVENTS_AND_LANGUAGES = [(event, language) for event in EVENTS for language in ("fr", "en")]
# Longer than the examples where a value can grow: big amounts, long references.
LONG_VALUES = {
    "amount_due": Decimal("12500000.00"),
    "amount": Decimal("12500000.00"),
    "balance_due": Decimal("11250000.00"),
    "invoice_number": "FA-2026-123456",
    "days_overdue": 14,
    "method": "Vodacom M-Pesa",
    "agency_phone": "+243 81 555 0000",
    "message": "Un technicien passera demain matin.",
}


def _render(event: str, channel: str, language: str, **overrides) -> tuple[str, str]:
    template = MessageTemplate.objects.get(event=event, channel=channel, language=language)
    spec = EVENTS[event]
    context = {**spec.full_example(), **overrides}
    subject = render(template.subject, context, language=language, zone=KINSHASA)
    return subject, render(template.body, context, language=language, zone=KINSHASA)


@pytest.mark.django_db
def test_every_event_has_an_email_and_an_sms_in_french_and_english():
    seeded = set(MessageTemplate.objects.values_list("event", "channel", "language"))

    assert seeded == {
        (event, channel, language)
        for event in EventKey.values
        for channel in ("email", "sms")
        for language in ("fr", "en")
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("event", "language"), EVENTS_AND_LANGUAGES)
def test_default_emails_render_with_every_value_written_the_clients_way(event, language):
    subject, body = _render(event, "email", language)

    assert subject
    assert "\n" not in subject
    assert body.startswith("Bonjour Marie-Claire" if language == "fr" else "Dear Marie-Claire")
    assert "Agence Kinshasa Gombe · +243 81 555 0000" in body
    example = EVENTS[event].example
    for name, value in example.items():
        if isinstance(value, Decimal):
            written = format_decimal(value, language)
        elif isinstance(value, dt.datetime):
            written = value.astimezone(KINSHASA).strftime("%d/%m/%Y %H:%M")
        elif isinstance(value, dt.date):
            written = value.strftime("%d/%m/%Y")
        else:
            written = str(value)
        if name not in {"step"}:  # the reminder's number is for the subject line of staff
            assert written in subject + body, f"{name} = {written!r} missing"


@pytest.mark.django_db
@pytest.mark.parametrize(("event", "language"), EVENTS_AND_LANGUAGES)
def test_default_sms_fit_in_one_gsm7_sms_with_realistic_values(event, language):
    spec = EVENTS[event]
    overrides = {k: v for k, v in LONG_VALUES.items() if k in spec.all_variables()}

    for values in ({}, overrides):
        _subject, text = _render(event, "sms", language, **values)
        length = sms_length(text)

        assert length.encoding == "GSM-7", text
        assert length.units <= 160, f"{length.units} characters: {text}"
        assert text.startswith("Mwolo Energy: ")


@pytest.mark.django_db
def test_the_french_invoice_sms_reads_as_a_client_reads_it():
    _subject, text = _render("invoice_issued", "sms", "fr")

    assert text == (
        "Mwolo Energy: facture FA-2026-000123 de 1 250 000,00 CDF à payer avant le "
        "15/12/2026. Réf. de paiement: MW-0001234-2611"
    )


@pytest.mark.django_db
def test_the_english_receipt_sms_shows_the_time_of_payment_in_the_agencys_zone():
    _subject, text = _render("payment_receipt", "sms", "en")

    # 08:30 UTC is 09:30 in Kinshasa.
    assert "received on 10/12/2026 09:30 (Airtel Money)" in text
    assert "Balance due: 0.00 CDF" in text


@pytest.mark.django_db
def test_a_ticket_update_without_a_message_leaves_no_trace_of_it():
    _subject, text = _render("ticket_update", "sms", "fr", message="")

    assert text == "Mwolo Energy: votre demande TK-2026-000789 a un nouveau statut: En cours."


def test_an_unknown_variable_is_an_error_naming_it():
    with pytest.raises(TemplateError) as error:
        render("Bonjour {{ client_nom }}", {"client_name": "Marie"}, language="fr", zone=KINSHASA)

    assert "client_nom" in str(error.value)
    assert "client_name" in str(error.value)


def test_a_syntax_error_is_reported():
    with pytest.raises(TemplateError, match="syntaxe"):
        render("{% if %}", {}, language="fr", zone=KINSHASA)


def test_texts_are_not_html_escaped():
    text = render("{{ name }}", {"name": "Kabila & Fils <SARL>"}, language="fr", zone=KINSHASA)

    assert text == "Kabila & Fils <SARL>"


def test_an_if_on_a_missing_value_is_simply_false():
    assert render("a{% if extra %}b{% endif %}", {}, language="fr", zone=KINSHASA) == "a"


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("é è à ù ì ò É Ç", "GSM-7", 15, 1),
        ("Prix: 10€ [promo]", "GSM-7", 20, 1),  # €, [ and ] take two septets each
        ("Être", "UCS-2", 4, 1),
        ("l’agence", "UCS-2", 8, 1),  # a typographic apostrophe is not GSM-7
        ("ê" * 71, "UCS-2", 71, 2),
    ],
)
def test_sms_length_counts_as_operators_do(text, encoding, units, parts):
    length = sms_length(text)

    assert (length.encoding, length.units, length.parts) == (encoding, units, parts)


@given(
    st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False),
    st.sampled_from(["fr", "en"]),
)
def test_an_amount_written_the_clients_way_reads_back_as_the_same_amount(value, language):
    text = format_decimal(value, language)
    thousands, decimal_mark = (" ", ",") if language == "fr" else (",", ".")

    assert Decimal(text.replace(thousands, "").replace(decimal_mark, ".")) == value
    whole = text.lstrip("-").split(decimal_mark)[0]
    assert all(len(group) == 3 for group in whole.split(thousands)[1:])
