"""``mpesa``: Safaricom Daraja STK push (Lipa na M-Pesa Online), the whole wire format.

- Token: ``GET /oauth/v1/generate?grant_type=client_credentials`` with HTTP Basic
  (consumer key, secret) → ``access_token``, ``expires_in`` (seconds, as a string).
- Push: ``POST /mpesa/stkpush/v1/processrequest``; ``Password`` is
  base64(shortcode + passkey + timestamp), the timestamp ``yyyyMMddHHmmss`` in Nairobi
  time; ``Amount`` a whole number; phone numbers ``243…`` without ``+``. The reply's
  ``CheckoutRequestID`` is the provider reference (``AccountReference`` is not echoed).
- Callback to our ``CallBackURL``: ``Body.stkCallback`` with ``ResultCode`` and, on
  success, ``CallbackMetadata.Item`` (Amount, MpesaReceiptNumber, TransactionDate,
  PhoneNumber). Daraja signs nothing: the URL carries a secret segment, compared in
  constant time, and the payments app confirms with the status query before money moves.
- Status: ``POST /mpesa/stkpushquery/v1/query``; error ``500.001.1001`` while the
  customer has not answered; then ``ResultCode``. It gives no receipt number.
"""

import base64
import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from mwolo.core import clock

from .base import (
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
    get_object,
    get_text,
    json_acknowledgement,
    json_body,
    msisdn_digits,
    parse_amount,
    parse_json_object,
    secret_matches,
    whole_units,
)

logger = logging.getLogger(__name__)

OAUTH_PATH = "/oauth/v1/generate"
PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
QUERY_PATH = "/mpesa/stkpushquery/v1/query"
TRANSACTION_TYPE = "CustomerPayBillOnline"
NAIROBI = ZoneInfo("Africa/Nairobi")  # Daraja reads timestamps as Kenyan time
STILL_PROCESSING = "500.001.1001"  # the status query's answer until the customer answers
STALE_ACCESS = "404.001.03"  # Daraja refused the access token: fetch another
ACCOUNT_REFERENCE_MAX = 12  # Daraja's limits; both are labels shown to the customer
TRANSACTION_DESC_MAX = 13
DEFAULT_TOKEN_LIFETIME_S = 3599
RESULT_STATUSES = {
    0: PaymentStatus.SUCCEEDED,
    1: PaymentStatus.INSUFFICIENT_FUNDS,
    1019: PaymentStatus.EXPIRED,
    1032: PaymentStatus.CANCELLED,
    1037: PaymentStatus.EXPIRED,  # the phone could not be reached
    2001: PaymentStatus.WRONG_PIN,
}  # any other code: FAILED
ACKNOWLEDGEMENT = {"ResultCode": 0, "ResultDesc": "Accepted"}


def _result_code(value: Any) -> int | None:
    """ResultCode is a number in callbacks and a string in status replies."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def _status(code: int) -> PaymentStatus:
    return RESULT_STATUSES.get(code, PaymentStatus.FAILED)


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    """Daraja's error shape: ``{"requestId", "errorCode", "errorMessage"}``."""
    try:
        data = response.json()
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("errorCode") or ""), str(data.get("errorMessage") or "")


def _payer(value: Any) -> str | None:
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 9 <= len(text) <= 15):
        raise CallbackRejected(RejectReason.INVALID_FIELD, "PhoneNumber is not a phone number")
    return f"+{text}"


def _metadata(callback: Mapping[str, Any]) -> dict[str, Any]:
    items = get_object(callback, "CallbackMetadata").get("Item")
    if not isinstance(items, list):
        raise CallbackRejected(RejectReason.MISSING_FIELD, "CallbackMetadata.Item")
    values: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise CallbackRejected(RejectReason.INVALID_FIELD, "CallbackMetadata.Item")
        values[item["Name"]] = item.get("Value")
    return values


class MpesaProvider(Provider):
    name = "mpesa"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.consumer_key = self.setting("consumer_key")
        self.consumer_secret = self.setting("consumer_secret")
        self.shortcode = self.setting("shortcode")
        self.passkey = self.setting("passkey")
        self.callback_secret = self.setting("callback_secret")

    # --- Auth -------------------------------------------------------------------------

    def fetch_token(self) -> tuple[str, int]:
        response = self.send(
            "GET",
            OAUTH_PATH,
            params={"grant_type": "client_credentials"},
            auth=(self.consumer_key, self.consumer_secret),
        )
        body = self.reply_json(response)
        token = body.get("access_token")
        if response.status_code == 200 and isinstance(token, str) and token:
            lifetime = _result_code(body.get("expires_in")) or DEFAULT_TOKEN_LIFETIME_S
            return token, lifetime
        code, message = str(body.get("errorCode") or ""), str(body.get("errorMessage") or "")
        if 400 <= response.status_code < 500:
            raise ProviderError(
                f"mpesa: consumer key or secret refused ({code} {message})".strip(),
                retryable=False,
                code=ErrorCode.AUTH,
                operator_code=code,
                http_status=response.status_code,
            )
        raise self.http_error(response, operator_code=code, message=message)

    def token_refused(self, response: httpx.Response) -> bool:
        return response.status_code == 401 or _error_fields(response)[0] == STALE_ACCESS

    def _password(self, timestamp: str) -> str:
        return base64.b64encode(f"{self.shortcode}{self.passkey}{timestamp}".encode()).decode()

    def _call(self, path: str, payload: dict[str, Any]) -> tuple[httpx.Response, dict[str, Any]]:
        """POST with a bearer token and a fresh timestamp/password each attempt."""

        def attempt(token: str) -> httpx.Response:
            timestamp = clock.now().astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")
            signed = {
                "BusinessShortCode": self.shortcode,
                "Password": self._password(timestamp),
                "Timestamp": timestamp,
                **payload,
            }
            return self.send(
                "POST",
                path,
                content=json_body(signed),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )

        response = self.with_token(attempt)
        return response, self.reply_json(response)

    def _error(self, response: httpx.Response, body: Mapping[str, Any]) -> ProviderError:
        code, message = str(body.get("errorCode") or ""), str(body.get("errorMessage") or "")
        if code == STALE_ACCESS:
            return ProviderError(
                "mpesa: access token refused twice",
                retryable=False,
                code=ErrorCode.AUTH,
                operator_code=code,
                http_status=response.status_code,
            )
        if response.is_success:  # ResponseCode other than "0": Daraja refused the request
            code = str(body.get("ResponseCode") or "")
            message = str(body.get("ResponseDescription") or "")
            return ProviderError(
                f"mpesa: refused: {code} {message}",
                retryable=False,
                code=ErrorCode.REJECTED,
                operator_code=code,
                http_status=response.status_code,
            )
        return self.http_error(response, operator_code=code, message=message)

    # --- Interface --------------------------------------------------------------------

    def push(self, request: PushRequest) -> PushResult:
        digits = msisdn_digits(request.msisdn)
        response, body = self._call(
            PUSH_PATH,
            {
                "TransactionType": TRANSACTION_TYPE,
                "Amount": whole_units(request.amount, "M-Pesa"),
                "PartyA": digits,
                "PartyB": self.shortcode,
                "PhoneNumber": digits,
                "CallBackURL": request.callback_url,
                "AccountReference": request.reference[:ACCOUNT_REFERENCE_MAX],
                "TransactionDesc": request.description[:TRANSACTION_DESC_MAX],
            },
        )
        checkout = body.get("CheckoutRequestID")
        if response.status_code == 200 and body.get("ResponseCode") == "0":
            if not isinstance(checkout, str) or not checkout:
                raise ProviderError(
                    "mpesa: accepted without a CheckoutRequestID",
                    retryable=True,
                    code=ErrorCode.BAD_RESPONSE,
                    http_status=response.status_code,
                )
            logger.info("mpesa push %s accepted as %s", request.reference, checkout)
            return PushResult(
                provider_reference=checkout,
                status=PaymentStatus.PENDING,
                message=str(body.get("CustomerMessage") or body.get("ResponseDescription") or ""),
                extra={"merchant_request_id": str(body.get("MerchantRequestID") or "")},
                raw=body,
            )
        raise self._error(response, body)

    def query_status(self, *, provider_reference: str, extra: Mapping[str, str]) -> StatusResult:
        response, body = self._call(QUERY_PATH, {"CheckoutRequestID": provider_reference})
        if body.get("errorCode") == STILL_PROCESSING:
            return StatusResult(
                status=PaymentStatus.PENDING,
                transaction_id=None,
                amount=None,
                currency=None,
                payer=None,
                message=str(body.get("errorMessage") or ""),
                raw=body,
            )
        if response.status_code == 200 and body.get("ResponseCode") == "0":
            code = _result_code(body.get("ResultCode"))
            if code is None:
                raise ProviderError(
                    "mpesa: status reply without a ResultCode",
                    retryable=True,
                    code=ErrorCode.BAD_RESPONSE,
                    http_status=response.status_code,
                )
            return StatusResult(
                status=_status(code),
                transaction_id=None,
                amount=None,
                currency=None,
                payer=None,
                message=str(body.get("ResultDesc") or ""),
                raw=body,
            )
        raise self._error(response, body)

    def parse_callback(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        path_secret: str | None,
        expected: Mapping[str, str],
    ) -> CallbackEvent:
        if not self.callback_secret:
            raise CallbackRejected(RejectReason.NOT_CONFIGURED, "no mpesa callback_secret")
        if not secret_matches(path_secret, self.callback_secret):
            raise CallbackRejected(RejectReason.BAD_PATH_SECRET)
        data = parse_json_object(body)
        callback = get_object(get_object(data, "Body"), "stkCallback")
        reference = get_text(callback, "CheckoutRequestID")
        if "ResultCode" not in callback:
            raise CallbackRejected(RejectReason.MISSING_FIELD, "ResultCode")
        code = _result_code(callback["ResultCode"])
        if code is None:
            raise CallbackRejected(RejectReason.INVALID_FIELD, "ResultCode is not a number")
        status = _status(code)
        transaction_id = amount = payer = None
        if status is PaymentStatus.SUCCEEDED:
            items = _metadata(callback)
            transaction_id = get_text(items, "MpesaReceiptNumber")
            if items.get("Amount") is None:
                raise CallbackRejected(RejectReason.MISSING_FIELD, "Amount")
            amount = parse_amount(items["Amount"], "Amount")
            payer = _payer(items.get("PhoneNumber"))
        return CallbackEvent(
            provider_reference=reference,
            status=status,
            transaction_id=transaction_id,
            amount=amount,
            currency=None,  # Daraja states no currency: the intent's is the only one
            payer=payer,
            raw=data,
            message=get_text(callback, "ResultDesc", required=False),
        )

    def acknowledge(self, event: CallbackEvent) -> Acknowledgement:
        return json_acknowledgement(ACKNOWLEDGEMENT)
