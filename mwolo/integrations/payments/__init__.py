"""Mobile-money operators behind one interface (``base``), one module per operator's wire format.

    from mwolo.integrations.payments import PushRequest, provider_for

    provider = provider_for("airtel")
    result = provider.push(PushRequest(reference=..., amount=Decimal("5000"), currency="CDF",
                                       msisdn="+243970000001", description=..., callback_url=...))

What each operator needs in production, and the simulator the tests and ``make run`` use,
are in docs/payments.md.
"""

from .base import (
    CURRENCIES,
    PROVIDER_NAMES,
    Acknowledgement,
    CallbackEvent,
    CallbackRejected,
    ErrorCode,
    PaymentStatus,
    Provider,
    ProviderError,
    PushRequest,
    PushResult,
    RejectReason,
    StatusResult,
    UnknownProviderError,
    provider_for,
)

__all__ = [
    "CURRENCIES",
    "PROVIDER_NAMES",
    "Acknowledgement",
    "CallbackEvent",
    "CallbackRejected",
    "ErrorCode",
    "PaymentStatus",
    "Provider",
    "ProviderError",
    "PushRequest",
    "PushResult",
    "RejectReason",
    "StatusResult",
    "UnknownProviderError",
    "provider_for",
]
