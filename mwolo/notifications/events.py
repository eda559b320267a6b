"""The events clients are told about, and the variables each event's templates may use.

This is the contract with the apps that send messages (billing, payments, dunning,
metering, support): ``notification_send(event=..., context=...)`` must pass exactly the
event's ``variables``; the notification service adds the ``COMMON_VARIABLES`` itself.
Each event's ``example`` is a realistic context: the admin renders a template with it to
check what staff type, and the tests measure the default SMS texts with it.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class EventKey(models.TextChoices):
    INVOICE_ISSUED = "invoice_issued", _("Invoice issued")
    REMINDER = "reminder", _("Payment reminder")
    FINAL_NOTICE = "final_notice", _("Final notice before disconnection")
    DISCONNECTION = "disconnection", _("Disconnection")
    PAYMENT_RECEIPT = "payment_receipt", _("Payment receipt")
    RECONNECTION = "reconnection", _("Reconnection")
    PREPAID_TOKEN = "prepaid_token", _("Prepaid token")
    TICKET_UPDATE = "ticket_update", _("Support ticket update")


# Filled in from the client and their agency by the service, for every event.
COMMON_VARIABLES: Mapping[str, Promise] = {
    "client_name": _("the client's name (person or company)"),
    "client_number": _("the client number, e.g. CL-0001234"),
    "agency_name": _("the name of the client's agency"),
    "agency_phone": _("the agency's phone number"),
}
COMMON_EXAMPLE: Mapping[str, Any] = {
    "client_name": "Marie-Claire Kabila Ngalula",
    "client_number": "CL-0001234",
    "agency_name": "Agence Kinshasa Gombe",
    "agency_phone": "+243 81 555 0000",
}


@dataclass(frozen=True)
class Event:
    key: EventKey
    # What the caller passes in ``context``: name → what it is (shown to staff editing texts).
    variables: Mapping[str, Promise]
    example: Mapping[str, Any]
    # Also by SMS when the client reads email: urgent news, or a summary of what the email
    # carries (the invoice's PDF). SMS reaches every client; email only some.
    sms_always: bool = False

    @property
    def label(self) -> str:
        return str(self.key.label)

    def all_variables(self) -> dict[str, Promise]:
        return {**COMMON_VARIABLES, **self.variables}

    def full_example(self) -> dict[str, Any]:
        return {**COMMON_EXAMPLE, **self.example}


_AMOUNT = _("an amount (Decimal), written the client's way: 1 250 000,00 in French")
_CURRENCY = _("ISO currency code: CDF or USD")

EVENTS: Mapping[str, Event] = {
    event.key.value: event
    for event in (
        Event(
            key=EventKey.INVOICE_ISSUED,
            variables={
                "invoice_number": _("the invoice number"),
                "period_start": _("first day billed (date)"),
                "period_end": _("last day billed (date)"),
                "amount_due": _AMOUNT,
                "currency": _CURRENCY,
                "due_date": _("date by which to pay (date)"),
                "payment_reference": _("the reference to quote when paying"),
            },
            example={
                "invoice_number": "FA-2026-000123",
                "period_start": dt.date(2026, 11, 1),
                "period_end": dt.date(2026, 11, 30),
                "amount_due": Decimal("1250000.00"),
                "currency": "CDF",
                "due_date": dt.date(2026, 12, 15),
                "payment_reference": "MW-0001234-2611",
            },
            sms_always=True,
        ),
        Event(
            key=EventKey.REMINDER,
            variables={
                "invoice_number": _("the invoice number"),
                "amount_due": _AMOUNT,
                "currency": _CURRENCY,
                "due_date": _("the date the invoice was due (date)"),
                "days_overdue": _("days since the due date (integer)"),
                "step": _("which reminder this is: 1, 2… (integer)"),
            },
            example={
                "invoice_number": "FA-2026-000123",
                "amount_due": Decimal("1250000.00"),
                "currency": "CDF",
                "due_date": dt.date(2026, 12, 15),
                "days_overdue": 7,
                "step": 2,
            },
        ),
        Event(
            key=EventKey.FINAL_NOTICE,
            variables={
                "invoice_number": _("the invoice number"),
                "amount_due": _AMOUNT,
                "currency": _CURRENCY,
                "disconnection_date": _("the day the supply will be cut (date)"),
            },
            example={
                "invoice_number": "FA-2026-000123",
                "amount_due": Decimal("1250000.00"),
                "currency": "CDF",
                "disconnection_date": dt.date(2026, 12, 29),
            },
            sms_always=True,
        ),
        Event(
            key=EventKey.DISCONNECTION,
            variables={
                "site_reference": _("the site whose supply was cut"),
                "amount_due": _AMOUNT,
                "currency": _CURRENCY,
            },
            example={
                "site_reference": "ST-0001234",
                "amount_due": Decimal("1250000.00"),
                "currency": "CDF",
            },
            sms_always=True,
        ),
        Event(
            key=EventKey.PAYMENT_RECEIPT,
            variables={
                "receipt_number": _("the receipt number"),
                "amount": _("the amount paid (Decimal)"),
                "currency": _CURRENCY,
                "paid_at": _("when it was paid (date and time, shown in the agency's zone)"),
                "method": _("how it was paid, e.g. M-Pesa, cash"),
                "balance_due": _("what remains to pay after this payment (Decimal)"),
            },
            example={
                "receipt_number": "RC-2026-000456",
                "amount": Decimal("1250000.00"),
                "currency": "CDF",
                "paid_at": dt.datetime(2026, 12, 10, 8, 30, tzinfo=dt.UTC),
                "method": "Airtel Money",
                "balance_due": Decimal("0.00"),
            },
        ),
        Event(
            key=EventKey.RECONNECTION,
            variables={"site_reference": _("the site whose supply is back")},
            example={"site_reference": "ST-0001234"},
        ),
        Event(
            key=EventKey.PREPAID_TOKEN,
            variables={
                "meter_serial": _("the meter's serial number"),
                "token": _("the token's digits, grouped as the client types them"),
                "energy_kwh": _("the energy the token carries (kWh)"),
                "amount": _("the amount paid (Decimal)"),
                "currency": _CURRENCY,
            },
            example={
                "meter_serial": "SIM-000123",
                "token": "123 456 789",
                "energy_kwh": 150,
                "amount": Decimal("45000.00"),
                "currency": "CDF",
            },
            sms_always=True,
        ),
        Event(
            key=EventKey.TICKET_UPDATE,
            variables={
                "ticket_number": _("the ticket number"),
                "subject": _("the ticket's subject"),
                "status": _("the ticket's new status, as the client reads it"),
                "message": _("the latest answer to the client, short; may be empty"),
            },
            example={
                "ticket_number": "TK-2026-000789",
                "subject": "Compteur sans affichage",
                "status": "En cours",
                "message": "Un technicien passera demain matin.",
            },
        ),
    )
}


def event_for(key: str) -> Event:
    """The event called ``key``; ``KeyError`` names the known ones."""
    try:
        return EVENTS[key]
    except KeyError:
        raise KeyError(f"unknown event {key!r}; known: {', '.join(sorted(EVENTS))}") from None
