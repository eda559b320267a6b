"""What the customer does with a payment prompt, chosen by the payer's number.

The last three digits of the number decide (``MAGIC_SUFFIXES``); every other number pays.
A test can script the next outcomes of a number instead (``POST /_sandbox/script``).
"""

import re
from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    WRONG_PIN = "wrong_pin"
    EXPIRED = "expired"  # the customer never answers
    LATE_CALLBACK = "late_callback"  # paid; the callback comes late_delay after the status
    DUPLICATE_CALLBACK = "duplicate_callback"  # paid; the callback comes three times
    NO_CALLBACK = "no_callback"  # paid; no callback at all, only the status query tells

    @property
    def result(self) -> "Outcome":
        """What the operator's books say once the customer has answered."""
        if self in (Outcome.LATE_CALLBACK, Outcome.DUPLICATE_CALLBACK, Outcome.NO_CALLBACK):
            return Outcome.SUCCESS
        return self

    @property
    def callbacks(self) -> int:
        if self is Outcome.NO_CALLBACK:
            return 0
        return 3 if self is Outcome.DUPLICATE_CALLBACK else 1


MAGIC_SUFFIXES = {
    "991": Outcome.FAILED,
    "992": Outcome.CANCELLED,
    "993": Outcome.INSUFFICIENT_FUNDS,
    "994": Outcome.WRONG_PIN,
    "995": Outcome.EXPIRED,
    "996": Outcome.LATE_CALLBACK,
    "997": Outcome.DUPLICATE_CALLBACK,
    "998": Outcome.NO_CALLBACK,
}

_NUMBER = re.compile(r"(?:\+?243)?([0-9]{9})")


def normalize_msisdn(text: str) -> str | None:
    """``+243812345678``, ``243812345678`` or ``812345678`` → ``+243812345678``."""
    match = _NUMBER.fullmatch(text.strip()) if text.isascii() else None
    return f"+243{match.group(1)}" if match else None


def outcome_for(msisdn: str) -> Outcome:
    return MAGIC_SUFFIXES.get(msisdn[-3:], Outcome.SUCCESS)
