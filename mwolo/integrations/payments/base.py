"""The mobile-money provider interface: requests, results, callbacks and errors.

The payments app speaks only these types; each operator's wire format lives in its own
module (``mpesa``, ``vodacom``, ``airtel``, ``orange``), chosen by ``provider_for(name)``
from ``settings.MOBILE_MONEY``.

What a result does *not* mean matters as much as what it does: a push "accepted" is not
"paid", and a callback is a claim. Money is recorded only once ``query_status`` says
``SUCCEEDED`` for a push whose callback was authenticated (or found by reconciliation).

Amounts are ``Decimal`` with at most two decimals, never float: they go out as integers
(``whole_units``) or exact decimal text (``amount_text``) and come back through
``json.loads(parse_float=Decimal)``.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string
from django.utils.translation import pgettext_lazy

logger = logging.getLogger("mwolo.integrations.payments")

PROVIDER_NAMES = ("mpesa", "vodacom", "airtel", "orange")
_IMPLEMENTATIONS = {
    "mpesa": "mwolo.integrations.payments.mpesa.MpesaProvider",
    "vodacom": "mwolo.integrations.payments.vodacom.VodacomProvider",
    "airtel": "mwolo.integrations.payments.airtel.AirtelProvider",
    "orange": "mwolo.integrations.payments.orange.OrangeProvider",
}
CURRENCIES = ("CDF", "USD")
CENT = Decimal("0.01")
# No payment of a utility's customer comes near this; a larger number is a corrupt field.
MAX_AMOUNT = Decimal(10) ** 12
REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9]{1,20}")
DRC_MSISDN_PATTERN = re.compile(r"\+243[0-9]{9}")
MAX_DESCRIPTION = 100
# Refreshed this long before the operator says a token expires, so none is used stale.
TOKEN_MARGIN_S = 60


class PaymentStatus(models.TextChoices):
    """Where a push stands, in the words a client is told (the operator's detail is in
    ``message``). Every status but ``PENDING`` is final."""

    PENDING = "pending", pgettext_lazy("mobile money payment", "Pending")
    SUCCEEDED = "succeeded", pgettext_lazy("mobile money payment", "Paid")
    FAILED = "failed", pgettext_lazy("mobile money payment", "Failed")
    CANCELLED = "cancelled", pgettext_lazy("mobile money payment", "Cancelled by the customer")
    EXPIRED = "expired", pgettext_lazy("mobile money payment", "Expired without an answer")
    INSUFFICIENT_FUNDS = (
        "insufficient_funds",
        pgettext_lazy("mobile money payment", "Insufficient balance"),
    )
    WRONG_PIN = "wrong_pin", pgettext_lazy("mobile money payment", "Wrong PIN")

    @property
    def is_final(self) -> bool:
        return self is not PaymentStatus.PENDING


def _check_url(value: str, name: str, *, required: bool) -> None:
    if not value and not required:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, not {value!r}")


@dataclass(frozen=True)
class PushRequest:
    """Ask the customer behind ``msisdn`` to approve a payment on their phone.

    ``reference`` is ours and unique per push (1–20 letters and digits: the tightest
    operator limit, Vodacom's TransactionReference); airtel, vodacom and orange use it as
    the id later queries are made with. ``callback_url`` is used by the operators that
    take one per request (mpesa CallBackURL, orange notif_url); airtel and vodacom post to
    the URL registered for the merchant. ``return_url`` and ``cancel_url`` are where
    Orange's payment page sends the customer's browser (``cancel_url`` defaults to
    ``return_url``). Raises ``ValueError`` on a malformed request: that is a caller's bug.
    """

    reference: str
    amount: Decimal
    currency: str
    msisdn: str
    description: str
    callback_url: str
    return_url: str = ""
    cancel_url: str = ""
    language: str = "fr"

    def __post_init__(self) -> None:
        if not REFERENCE_PATTERN.fullmatch(self.reference):
            raise ValueError(f"reference must be 1-20 letters or digits, not {self.reference!r}")
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise ValueError(f"amount must be a finite Decimal, not {self.amount!r}")
        if not 0 < self.amount < MAX_AMOUNT or self.amount != self.amount.quantize(CENT):
            raise ValueError(f"amount must be positive with at most 2 decimals: {self.amount}")
        if self.currency not in CURRENCIES:
            raise ValueError(f"currency must be one of {CURRENCIES}, not {self.currency!r}")
        if not DRC_MSISDN_PATTERN.fullmatch(self.msisdn):
            raise ValueError(f"msisdn must be +243 and 9 digits (E.164), not {self.msisdn!r}")
        if not (0 < len(self.description) <= MAX_DESCRIPTION and self.description.isprintable()):
            raise ValueError(f"description must be 1-{MAX_DESCRIPTION} printable characters")
        _check_url(self.callback_url, "callback_url", required=True)
        _check_url(self.return_url, "return_url", required=False)
        _check_url(self.cancel_url, "cancel_url", required=False)
        if self.language not in ("fr", "en"):
            raise ValueError(f"language must be 'fr' or 'en', not {self.language!r}")


@dataclass(frozen=True)
class PushResult:
    """The operator's answer to a push. ``provider_reference`` is what its callbacks and
    status queries are matched on; ``extra`` holds what must be stored with the intent and
    passed back to ``query_status`` and ``parse_callback`` (Orange's pay_token and
    notif_token, the payment_url to redirect the customer to). ``transaction_id`` is the
    operator's money transaction id when the answer already carries one (Vodacom waits
    for the PIN); it still needs ``query_status`` before money is recorded."""

    provider_reference: str
    status: PaymentStatus
    message: str = ""
    transaction_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusResult:
    """The operator's own answer about a push, the only one that may record money.
    ``transaction_id`` is the operator's money transaction id when its status API
    returns one (Daraja's does not: the receipt number comes only in the callback)."""

    status: PaymentStatus
    transaction_id: str | None
    amount: Decimal | None
    currency: str | None
    payer: str | None
    message: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class CallbackEvent:
    """An authenticated callback, read. Still a claim: match it to the intent and confirm
    it with ``query_status`` before recording money."""

    provider_reference: str
    status: PaymentStatus
    transaction_id: str | None
    amount: Decimal | None
    currency: str | None
    payer: str | None
    raw: dict[str, Any]
    message: str = ""


@dataclass(frozen=True)
class Acknowledgement:
    """The HTTP response an operator expects to a callback it delivered."""

    status: int
    content_type: str
    body: bytes


class ErrorCode(StrEnum):
    NETWORK = "network"  # no connection, reset, DNS
    TIMEOUT = "timeout"  # sent, no answer in time: the outcome is unknown
    SERVER_ERROR = "server_error"  # 5xx, rate limited
    AMBIGUOUS = "ambiguous"  # the operator itself does not know yet
    BAD_RESPONSE = "bad_response"  # an answer we cannot read
    AUTH = "auth"  # credentials refused
    DUPLICATE = "duplicate"  # this reference was already pushed
    REJECTED = "rejected"  # the operator refused the request's content
    AMOUNT_NOT_WHOLE = "amount_not_whole"  # the operator takes whole units only
    CONFIGURATION = "configuration"  # our settings are unusable


class ProviderError(Exception):
    """A push or status query that did not get an answer about the payment.

    ``retryable``: the same call may succeed later (network, timeout, 5xx, ambiguous).
    After a retryable error on a push the request may have reached the operator: query
    the status with the reference before pushing again (airtel, vodacom and orange's
    provider_reference is the reference; a repeat push of one is refused as DUPLICATE).
    Terminal errors (``retryable`` False) will fail again the same way.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: ErrorCode,
        operator_code: str = "",
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.operator_code = operator_code
        self.http_status = http_status


class RejectReason(StrEnum):
    # mpesa, vodacom: the URL's secret is wrong
    BAD_PATH_SECRET = "bad_path_secret"  # noqa: S105 - a reason, not a secret
    UNSIGNED = "unsigned"  # airtel: no hash at all
    BAD_SIGNATURE = "bad_signature"  # airtel: hash does not match
    # orange: not the notif_token of this payment
    BAD_NOTIF_TOKEN = "bad_notif_token"  # noqa: S105 - a reason, not a secret
    NOT_CONFIGURED = "not_configured"  # we hold no secret to check it with
    NOT_JSON = "not_json"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"


_AUTHENTICATION_REASONS = {
    RejectReason.BAD_PATH_SECRET,
    RejectReason.UNSIGNED,
    RejectReason.BAD_SIGNATURE,
    RejectReason.BAD_NOTIF_TOKEN,
    RejectReason.NOT_CONFIGURED,
}


class CallbackRejected(Exception):  # noqa: N818 - it is a refusal, named as one
    """A callback that is not authentic or cannot be read; nothing in it may be used."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail

    @property
    def http_status(self) -> int:
        """403 for a callback that failed authentication, 400 for an unreadable one."""
        return 403 if self.reason in _AUTHENTICATION_REASONS else 400


class UnknownProviderError(LookupError):
    """No mobile-money operator has this name."""


# --- Helpers the adapters share --------------------------------------------------------------


def json_body(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON where ``Decimal`` values become exact JSON numbers (``json`` would
    need a float). The placeholders are random per call, so no text can forge one."""
    nonce = secrets.token_hex(8)
    numbers: dict[str, str] = {}

    def swap(value: Any) -> Any:
        if isinstance(value, Decimal):
            placeholder = f"{nonce}:{len(numbers)}"
            numbers[json.dumps(placeholder)] = format(value, "f")
            return placeholder
        if isinstance(value, float):
            raise TypeError("money is never a float")
        if isinstance(value, Mapping):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [swap(item) for item in value]
        return value

    text = json.dumps(swap(payload), separators=(",", ":"), ensure_ascii=False)
    for quoted, number in numbers.items():
        text = text.replace(quoted, number)
    return text.encode()


def whole_units(amount: Decimal, operator: str) -> int:
    """The amount as an integer, for operators that take whole units only; never rounds."""
    if amount != amount.to_integral_value():
        raise ProviderError(
            f"{operator} accepts whole amounts only, not {amount}",
            retryable=False,
            code=ErrorCode.AMOUNT_NOT_WHOLE,
        )
    return int(amount)


def amount_text(amount: Decimal) -> str:
    """``5000`` for a whole amount, ``12.50`` otherwise (PushRequest allows cents only)."""
    if amount == amount.to_integral_value():
        return str(int(amount))
    return format(amount.quantize(CENT), "f")


def msisdn_digits(msisdn: str) -> str:
    """``+243812345678`` → ``243812345678`` (country code, no plus)."""
    return msisdn.removeprefix("+")


def msisdn_national(msisdn: str) -> str:
    """``+243812345678`` → ``812345678`` (Airtel: the subscriber number without 243)."""
    return msisdn.removeprefix("+243")


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; an empty expected secret matches nothing."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A callback's JSON object, numbers as Decimal; anything else is ``NOT_JSON``."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise CallbackRejected(RejectReason.NOT_JSON, "the body is not JSON") from exc
    if not isinstance(data, dict):
        raise CallbackRejected(RejectReason.NOT_JSON, "the body is not a JSON object")
    return data


def get_object(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        raise CallbackRejected(RejectReason.MISSING_FIELD, key)
    if not isinstance(value, dict):
        raise CallbackRejected(RejectReason.INVALID_FIELD, f"{key} is not an object")
    return value


def get_text(data: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    """A string field (an id, a code, a description); empty counts as missing."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise CallbackRejected(RejectReason.MISSING_FIELD, key)
        return ""
    if not isinstance(value, str) or len(value) > 1000:
        raise CallbackRejected(RejectReason.INVALID_FIELD, f"{key} is not a string")
    return value


def parse_amount(value: Any, key: str) -> Decimal:
    """A positive amount from a JSON number or numeric string."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise CallbackRejected(RejectReason.INVALID_FIELD, f"{key} is not an amount")
    try:
        amount = Decimal(value)
    except (ArithmeticError, ValueError):
        raise CallbackRejected(RejectReason.INVALID_FIELD, f"{key} is not an amount") from None
    if not amount.is_finite() or not 0 < amount < MAX_AMOUNT:
        raise CallbackRejected(RejectReason.INVALID_FIELD, f"{key} is out of range")
    return amount


def hmac_sha256_base64(key: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def bare_callback_event(
    *,
    reference: str,
    status: PaymentStatus,
    transaction_id: str | None,
    id_field: str,
    raw: dict[str, Any],
    message: str = "",
) -> CallbackEvent:
    """A callback that names no amount, currency or payer (the status query confirms them);
    a success must name the operator's transaction, the key that makes it paid once."""
    if status is PaymentStatus.SUCCEEDED and transaction_id is None:
        raise CallbackRejected(RejectReason.MISSING_FIELD, id_field)
    return CallbackEvent(
        provider_reference=reference,
        status=status,
        transaction_id=transaction_id,
        amount=None,
        currency=None,
        payer=None,
        raw=raw,
        message=message,
    )


def json_acknowledgement(payload: Mapping[str, Any]) -> Acknowledgement:
    return Acknowledgement(status=200, content_type="application/json", body=json_body(payload))


# --- The interface ---------------------------------------------------------------------------


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    """One HTTP client per process, shared by every adapter and thread: its connections
    are kept alive and its TLS context is built once (building one costs ~30 ms)."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=20))
    return _client


class Provider(ABC):
    """One operator. Built from its ``settings.MOBILE_MONEY[name]`` block by ``provider_for``.

    Every network call has explicit connect and read timeouts and turns transport failures
    into ``ProviderError``. Access tokens are cached (in Django's cache, shared by every
    process) until shortly before the operator says they expire, and fetched again once
    when the operator refuses one.
    """

    name: ClassVar[str]
    # The operator knows a push by our reference: it can be asked about it (and its callback
    # matched) even before, or without, the push's reply.
    reference_is_ours: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        try:
            self.base_url = str(config["base_url"]).rstrip("/")
            self.connect_timeout = float(config["connect_timeout"])
            self.read_timeout = float(config["read_timeout"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"MOBILE_MONEY[{self.name!r}]: {exc!r}") from exc

    @abstractmethod
    def push(self, request: PushRequest) -> PushResult:
        """Send the payment prompt. Raises ``ProviderError``."""

    def status_extra(self, *, currency: str) -> dict[str, str]:
        """What ``query_status`` needs besides our reference, for an operator whose
        reference is ours (``reference_is_ours``) asked about a push whose reply we lack."""
        return {}

    @abstractmethod
    def query_status(self, *, provider_reference: str, extra: Mapping[str, str]) -> StatusResult:
        """Ask the operator where the push stands (``extra`` as ``push`` returned it).
        Raises ``ProviderError``."""

    @abstractmethod
    def parse_callback(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        path_secret: str | None,
        expected: Mapping[str, str],
    ) -> CallbackEvent:
        """Authenticate and read a callback exactly as received. ``path_secret`` is the
        secret segment of the URL it arrived on; ``expected`` what was stored at push time
        (see each operator). Raises ``CallbackRejected`` and nothing else."""

    @abstractmethod
    def acknowledge(self, event: CallbackEvent) -> Acknowledgement:
        """The HTTP response this operator expects once a callback has been taken in."""

    # --- Settings ---------------------------------------------------------------------

    def setting(self, key: str) -> str:
        try:
            return str(self.config[key])
        except KeyError:
            raise ImproperlyConfigured(f"MOBILE_MONEY[{self.name!r}] has no {key!r}") from None

    # --- HTTP -------------------------------------------------------------------------

    def send(
        self, method: str, path: str, *, read_timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One HTTP exchange; no answer in time or no connection is a retryable error."""
        timeout = httpx.Timeout(read_timeout or self.read_timeout, connect=self.connect_timeout)
        try:
            return _http().request(method, self.base_url + path, timeout=timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderError(
                f"{self.name}: no answer in time ({type(exc).__name__})",
                retryable=True,
                code=ErrorCode.TIMEOUT,
            ) from exc
        except httpx.InvalidURL as exc:
            raise ProviderError(
                f"{self.name}: bad base_url {self.base_url!r}",
                retryable=False,
                code=ErrorCode.CONFIGURATION,
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{self.name}: {type(exc).__name__}: {exc}", retryable=True, code=ErrorCode.NETWORK
            ) from exc

    def reply_json(self, response: httpx.Response) -> dict[str, Any]:
        """The reply's JSON object ({} when there is none); unreadable success replies are
        retryable errors: the call may have worked."""
        try:
            data = json.loads(
                response.content, parse_float=Decimal, parse_constant=_refuse_constant
            )
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            return data
        if response.is_success:
            raise ProviderError(
                f"{self.name}: unreadable reply (HTTP {response.status_code})",
                retryable=True,
                code=ErrorCode.BAD_RESPONSE,
                http_status=response.status_code,
            )
        return {}

    def http_error(
        self, response: httpx.Response, *, operator_code: str = "", message: str = ""
    ) -> ProviderError:
        """The error for a reply no specific rule covers, by its HTTP status."""
        status = response.status_code
        text = f"{self.name}: HTTP {status} {operator_code} {message}".strip()
        if status >= 500 or status == 429:
            code, retryable = ErrorCode.SERVER_ERROR, True
        elif status in (401, 403):
            code, retryable = ErrorCode.AUTH, False
        else:
            code, retryable = ErrorCode.REJECTED, False
        return ProviderError(
            text, retryable=retryable, code=code, operator_code=operator_code, http_status=status
        )

    # --- Access tokens ----------------------------------------------------------------

    def fetch_token(self) -> tuple[str, int]:
        """A new access token and its lifetime in seconds (operators with tokens)."""
        raise NotImplementedError

    def token_refused(self, response: httpx.Response) -> bool:
        """Whether the operator refused the token (expired, revoked): fetch one again."""
        return response.status_code == 401

    def _token_cache_key(self) -> str:
        # Any change of address or credentials is a different token.
        identity = json.dumps(dict(self.config), sort_keys=True, default=str)
        return f"mobile-money:{self.name}:token:{hashlib.sha256(identity.encode()).hexdigest()}"

    def access_token(self) -> str:
        key = self._token_cache_key()
        token = cache.get(key)
        if token is None:
            token, lifetime = self.fetch_token()
            cache.set(key, token, timeout=max(1, lifetime - min(TOKEN_MARGIN_S, lifetime // 10)))
        return token

    def with_token(self, call: Callable[[str], httpx.Response]) -> httpx.Response:
        """``call(token)``, once more with a fresh token if the operator refused it."""
        response = call(self.access_token())
        if self.token_refused(response):
            cache.delete(self._token_cache_key())
            response = call(self.access_token())
        return response


def provider_for(name: str) -> Provider:
    """The configured provider of that operator (``mpesa``, ``vodacom``, ``airtel``,
    ``orange``). ``MOBILE_MONEY[name]["backend"]`` may name another implementation (a
    dotted path), e.g. for an operator's other gateway. Raises ``UnknownProviderError``."""
    if name not in _IMPLEMENTATIONS:
        raise UnknownProviderError(name)
    config = getattr(settings, "MOBILE_MONEY", {}).get(name)
    if config is None:
        raise ImproperlyConfigured(f"settings.MOBILE_MONEY has no {name!r} block")
    cls = import_string(config.get("backend") or _IMPLEMENTATIONS[name])
    return cls(config)
