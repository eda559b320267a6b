"""``airtel``: Airtel Money Open API, collections, country ``CD``.

- Token: ``POST /auth/oauth2/token`` JSON ``{client_id, client_secret, grant_type}`` →
  ``access_token``, ``expires_in``.
- Push: ``POST /merchant/v1/payments/`` with ``X-Country: CD`` and ``X-Currency``; the
  subscriber's number without 243; the amount an exact JSON number; our reference is
  ``transaction.id``, the provider reference (``reference`` is the description shown).
  The reply only says the prompt is on its way (``DP00800001006``).
- Enquiry: ``GET /standard/v1/payments/{id}`` → ``transaction.status`` TS (paid), TF
  (failed: ``status.response_code`` says why), TA (ambiguous), TIP (in progress), TE
  (expired); ``airtel_money_id`` is the money transaction id.
- Callback (to the URL registered for the merchant): ``{"transaction": {"id",
  "message", "status_code": "TS"|"TF", "airtel_money_id"}}``, authenticated by ``hash``
  = base64(HMAC-SHA256(message, callback key)). *Unconfirmed* where it travels, so both
  are accepted: a ``hash`` header over the raw body, or a ``hash`` body field over the
  compact JSON of the body without that field (as received, in its key order).
"""

import logging
from collections.abc import Mapping
from typing import Any

import httpx

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
    bare_callback_event,
    get_object,
    get_text,
    hmac_sha256_base64,
    json_acknowledgement,
    json_body,
    msisdn_national,
    parse_json_object,
    secret_matches,
)

logger = logging.getLogger(__name__)

COUNTRY = "CD"
OAUTH_PATH = "/auth/oauth2/token"
PUSH_PATH = "/merchant/v1/payments/"
ENQUIRY_PATH = "/standard/v1/payments/{id}"
HASH_HEADER = "hash"
HASH_FIELD = "hash"
AMBIGUOUS = "DP00800001000"  # the operator does not know yet: enquire
SUCCESS = "DP00800001001"
IN_PROCESS = "DP00800001006"
DUPLICATE = "DP00900001017"
REASONS = {
    "DP00800001002": PaymentStatus.WRONG_PIN,
    "DP00800001005": PaymentStatus.EXPIRED,  # the customer did not enter the PIN
    "DP00800001007": PaymentStatus.INSUFFICIENT_FUNDS,
    "DP00800001008": PaymentStatus.CANCELLED,  # refused (by the customer)
    "DP00800001024": PaymentStatus.EXPIRED,
    "DP00800001029": PaymentStatus.EXPIRED,
}  # any other reason of a failure: FAILED
TRANSACTION_STATUSES = {
    "TS": PaymentStatus.SUCCEEDED,
    "TF": PaymentStatus.FAILED,
    "TA": PaymentStatus.PENDING,  # ambiguous: enquire again later
    "TIP": PaymentStatus.PENDING,
    "TE": PaymentStatus.EXPIRED,
}
CALLBACK_STATUSES = {"TS": PaymentStatus.SUCCEEDED, "TF": PaymentStatus.FAILED}
DEFAULT_TOKEN_LIFETIME_S = 180


def _status_block(body: Mapping[str, Any]) -> dict[str, Any]:
    block = body.get("status")
    return block if isinstance(block, dict) else {}


def _transaction(body: Mapping[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    transaction = data.get("transaction") if isinstance(data, dict) else None
    return transaction if isinstance(transaction, dict) else {}


def _lifetime(value: Any) -> int:
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else 0


class AirtelProvider(Provider):
    name = "airtel"
    reference_is_ours = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.client_id = self.setting("client_id")
        self.client_secret = self.setting("client_secret")
        self.callback_key = self.setting("callback_key")

    def fetch_token(self) -> tuple[str, int]:
        response = self.send(
            "POST",
            OAUTH_PATH,
            content=json_body(
                {
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "grant_type": "client_credentials",
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        body = self.reply_json(response)
        token = body.get("access_token")
        if response.status_code == 200 and isinstance(token, str) and token:
            return token, _lifetime(body.get("expires_in")) or DEFAULT_TOKEN_LIFETIME_S
        if 400 <= response.status_code < 500:
            raise ProviderError(
                f"airtel: client id or secret refused ({body.get('error') or ''})",
                retryable=False,
                code=ErrorCode.AUTH,
                operator_code=str(body.get("error") or ""),
                http_status=response.status_code,
            )
        raise self.http_error(response)

    def _headers(self, token: str, currency: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "X-Country": COUNTRY,
            "X-Currency": currency,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _refusal(self, response: httpx.Response, block: Mapping[str, Any]) -> ProviderError:
        code = str(block.get("response_code") or "")
        message = str(block.get("message") or "")
        if code == AMBIGUOUS:
            return ProviderError(
                f"airtel: ambiguous ({message})",
                retryable=True,
                code=ErrorCode.AMBIGUOUS,
                operator_code=code,
                http_status=response.status_code,
            )
        if code == DUPLICATE:
            return ProviderError(
                f"airtel: transaction id already used ({message})",
                retryable=False,
                code=ErrorCode.DUPLICATE,
                operator_code=code,
                http_status=response.status_code,
            )
        return self.http_error(response, operator_code=code, message=message)

    def push(self, request: PushRequest) -> PushResult:
        payload = {
            "reference": request.description,
            "subscriber": {
                "country": COUNTRY,
                "currency": request.currency,
                "msisdn": msisdn_national(request.msisdn),
            },
            "transaction": {
                "amount": request.amount,
                "country": COUNTRY,
                "currency": request.currency,
                "id": request.reference,
            },
        }
        response = self.with_token(
            lambda token: self.send(
                "POST",
                PUSH_PATH,
                content=json_body(payload),
                headers=self._headers(token, request.currency),
            )
        )
        body = self.reply_json(response)
        block = _status_block(body)
        code = str(block.get("response_code") or "")
        accepted = response.is_success and block.get("success") is True
        if accepted and code in (IN_PROCESS, SUCCESS):
            logger.info("airtel push %s accepted", request.reference)
            return PushResult(
                provider_reference=request.reference,
                status=PaymentStatus.PENDING,
                message=str(block.get("message") or ""),
                extra=self.status_extra(currency=request.currency),
                raw=body,
            )
        if code in REASONS:  # refused at once (no wallet, no balance)
            return PushResult(
                provider_reference=request.reference,
                status=REASONS[code],
                message=str(block.get("message") or ""),
                extra=self.status_extra(currency=request.currency),
                raw=body,
            )
        raise self._refusal(response, block)

    def status_extra(self, *, currency: str) -> dict[str, str]:
        return {"currency": currency}

    def query_status(self, *, provider_reference: str, extra: Mapping[str, str]) -> StatusResult:
        currency = extra["currency"]
        response = self.with_token(
            lambda token: self.send(
                "GET",
                ENQUIRY_PATH.format(id=provider_reference),
                headers=self._headers(token, currency),
            )
        )
        body = self.reply_json(response)
        block = _status_block(body)
        transaction = _transaction(body)
        word = str(transaction.get("status") or "")
        if not (response.is_success and block.get("success") is True and word):
            raise self._refusal(response, block)
        status = TRANSACTION_STATUSES.get(word)
        if status is None:
            logger.warning("airtel: unknown transaction status %r for %s", word, provider_reference)
            status = PaymentStatus.PENDING  # never final on a word we do not know
        if status is PaymentStatus.FAILED:
            status = REASONS.get(str(block.get("response_code") or ""), PaymentStatus.FAILED)
        return StatusResult(
            status=status,
            transaction_id=str(transaction.get("airtel_money_id") or "") or None,
            amount=None,
            currency=None,
            payer=None,
            message=str(transaction.get("message") or block.get("message") or ""),
            raw=body,
        )

    def _authenticate(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        if not self.callback_key:
            raise CallbackRejected(RejectReason.NOT_CONFIGURED, "no airtel callback_key")
        header_hash = {name.lower(): value for name, value in headers.items()}.get(HASH_HEADER)
        if header_hash is not None:
            if not secret_matches(header_hash, hmac_sha256_base64(self.callback_key, body)):
                raise CallbackRejected(RejectReason.BAD_SIGNATURE, "hash header")
            return parse_json_object(body)
        data = parse_json_object(body)
        given = data.get(HASH_FIELD)
        if given is None:
            raise CallbackRejected(RejectReason.UNSIGNED)
        signed = json_body({key: value for key, value in data.items() if key != HASH_FIELD})
        if not isinstance(given, str) or not secret_matches(
            given, hmac_sha256_base64(self.callback_key, signed)
        ):
            raise CallbackRejected(RejectReason.BAD_SIGNATURE, "hash field")
        return data

    def parse_callback(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        path_secret: str | None,
        expected: Mapping[str, str],
    ) -> CallbackEvent:
        data = self._authenticate(headers, body)
        transaction = get_object(data, "transaction")
        reference = get_text(transaction, "id")
        word = get_text(transaction, "status_code")
        if word not in CALLBACK_STATUSES:
            raise CallbackRejected(RejectReason.INVALID_FIELD, "status_code is not TS or TF")
        status = CALLBACK_STATUSES[word]
        transaction_id = get_text(transaction, "airtel_money_id", required=False) or None
        return bare_callback_event(
            reference=reference,
            status=status,
            transaction_id=transaction_id,
            id_field="airtel_money_id",
            raw=data,
            message=get_text(transaction, "message", required=False),
        )

    def acknowledge(self, event: CallbackEvent) -> Acknowledgement:
        return json_acknowledgement({})
