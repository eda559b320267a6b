"""The mobile-money operators (M-Pesa Daraja, Vodacom M-Pesa OpenAPI, Airtel Money, Orange
Money WebPay) as one HTTP server speaking their APIs, for ``make run`` and the tests.

    python -m sandbox.operators [--host 127.0.0.1] [--port 18080] [--callback-delay 2] …

Customers answer by their number's last three digits (``MAGIC_SUFFIXES``: 991 failed …
998 no callback; any other number pays) or as a test scripted (``POST /_sandbox/script``).
docs/payments.md describes every endpoint, outcome and switch.
"""

from .accounts import DEFAULT_PORT, vodacom_public_key
from .outcomes import MAGIC_SUFFIXES, Outcome, normalize_msisdn, outcome_for
from .server import OperatorSimulator, SimulatorConfig
from .state import Script

__all__ = [
    "DEFAULT_PORT",
    "MAGIC_SUFFIXES",
    "OperatorSimulator",
    "Outcome",
    "Script",
    "SimulatorConfig",
    "normalize_msisdn",
    "outcome_for",
    "vodacom_public_key",
]
