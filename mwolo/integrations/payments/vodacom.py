"""``vodacom``: Vodacom M-Pesa DRC through the M-Pesa OpenAPI (market ``vodacomDRC``).

- Auth: the API key, RSA-encrypted with the market's public key (PKCS#1 v1.5) and base64
  encoded, is the bearer of ``GET /{env}/ipg/v2/vodacomDRC/getSession/``; the
  ``output_SessionID`` it returns, encrypted the same way, is the bearer of every other
  call. ``{env}`` is ``sandbox`` or ``openapi``. Headers ``Origin`` and JSON content type.
- C2B: ``POST …/c2bPayment/singleStage/`` is synchronous: the reply comes once the
  customer has typed the PIN (or given up), hence its long read timeout. The amount is
  decimal text (``5000``, ``12.50``), the number ``243…`` without ``+``. Our reference is
  both ``input_ThirdPartyConversationID`` (the provider reference) and
  ``input_TransactionReference``.
- Status: ``GET …/queryTransactionStatus/`` → ``output_ResponseTransactionStatus``.
- Callback (to the URL registered for the merchant): ``input_ThirdPartyConversationID``,
  ``input_TransactionID``, ``input_ResultCode``, ``input_ResultDesc``; unsigned, so the URL
  carries a secret segment. The acknowledgement echoes the conversation ids.

*Unconfirmed* (docs/payments.md): the result-code table, the status words, which id field
the status reply uses, and whether a DRC merchant contract gets this API or the older SOAP
gateway; another gateway is another ``backend`` with this interface.
"""

import base64
import binascii
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
    amount_text,
    bare_callback_event,
    get_text,
    json_acknowledgement,
    json_body,
    msisdn_digits,
    parse_json_object,
    secret_matches,
)

logger = logging.getLogger(__name__)

MARKET = "vodacomDRC"
COUNTRY = "DRC"
SESSION_OPERATION = "getSession"
C2B_OPERATION = "c2bPayment/singleStage"
STATUS_OPERATION = "queryTransactionStatus"
SUCCESS = "INS-0"
DUPLICATE = "INS-10"
RESULT_STATUSES = {
    SUCCESS: PaymentStatus.SUCCEEDED,
    "INS-5": PaymentStatus.CANCELLED,  # cancelled by the customer (or timed out on the phone)
    "INS-6": PaymentStatus.FAILED,
    "INS-9": PaymentStatus.EXPIRED,  # the customer did not answer in time
    "INS-2006": PaymentStatus.INSUFFICIENT_FUNDS,
}
TRANSACTION_STATUSES = {
    "completed": PaymentStatus.SUCCEEDED,
    "pending": PaymentStatus.PENDING,
    "cancelled": PaymentStatus.CANCELLED,
    "expired": PaymentStatus.EXPIRED,
    "failed": PaymentStatus.FAILED,
}


def _code(value: str) -> str:
    """Result codes come as ``INS-0``; some documents show the bare number."""
    return f"INS-{value}" if value.isdigit() else value


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """The market's public key: base64 DER as the OpenAPI portal shows it, or PEM."""
    try:
        if "BEGIN" in text:
            key = serialization.load_pem_public_key(text.strip().encode())
        else:
            key = serialization.load_der_public_key(
                base64.b64decode("".join(text.split()), validate=True)
            )
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ProviderError(
            "vodacom: public_key is not an RSA public key",
            retryable=False,
            code=ErrorCode.CONFIGURATION,
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ProviderError(
            "vodacom: public_key is not RSA", retryable=False, code=ErrorCode.CONFIGURATION
        )
    return key


class VodacomProvider(Provider):
    name = "vodacom"
    reference_is_ours = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.environment = self.setting("environment")
        self.api_key = self.setting("api_key")
        self.public_key_text = self.setting("public_key")
        self.service_provider_code = self.setting("service_provider_code")
        self.origin = self.setting("origin")
        self.callback_secret = self.setting("callback_secret")
        self.session_lifetime = int(self.setting("session_lifetime"))
        self.push_read_timeout = float(self.setting("push_read_timeout"))

    def _path(self, operation: str) -> str:
        return f"/{self.environment}/ipg/v2/{MARKET}/{operation}/"

    def _bearer(self, secret: str) -> dict[str, str]:
        key = load_public_key(self.public_key_text)
        encrypted = key.encrypt(secret.encode(), padding.PKCS1v15())
        return {
            "Authorization": f"Bearer {base64.b64encode(encrypted).decode()}",
            "Origin": self.origin,
            "Content-Type": "application/json",
        }

    # --- Session ----------------------------------------------------------------------

    def fetch_token(self) -> tuple[str, int]:
        response = self.send(
            "GET", self._path(SESSION_OPERATION), headers=self._bearer(self.api_key)
        )
        body = self.reply_json(response)
        code = str(body.get("output_ResponseCode") or "")
        session = body.get("output_SessionID")
        if code == SUCCESS and isinstance(session, str) and session:
            return session, self.session_lifetime
        if response.status_code in (400, 401, 403):
            raise ProviderError(
                f"vodacom: API key refused ({code} {body.get('output_ResponseDesc') or ''})",
                retryable=False,
                code=ErrorCode.AUTH,
                operator_code=code,
                http_status=response.status_code,
            )
        raise self.http_error(response, operator_code=code)

    def _call(
        self, method: str, operation: str, *, read_timeout: float | None = None, **kwargs: Any
    ) -> tuple[httpx.Response, dict[str, Any]]:
        response = self.with_token(
            lambda session: self.send(
                method,
                self._path(operation),
                headers=self._bearer(session),
                read_timeout=read_timeout,
                **kwargs,
            )
        )
        return response, self.reply_json(response)

    # --- Interface --------------------------------------------------------------------

    def push(self, request: PushRequest) -> PushResult:
        response, body = self._call(
            "POST",
            C2B_OPERATION,
            read_timeout=self.push_read_timeout,
            content=json_body(
                {
                    "input_Amount": amount_text(request.amount),
                    "input_Country": COUNTRY,
                    "input_Currency": request.currency,
                    "input_CustomerMSISDN": msisdn_digits(request.msisdn),
                    "input_ServiceProviderCode": self.service_provider_code,
                    "input_ThirdPartyConversationID": request.reference,
                    "input_TransactionReference": request.reference,
                    "input_PurchasedItemsDesc": request.description,
                }
            ),
        )
        code = _code(str(body.get("output_ResponseCode") or ""))
        message = str(body.get("output_ResponseDesc") or "")
        if code in RESULT_STATUSES:
            status = RESULT_STATUSES[code]
            transaction_id = str(body.get("output_TransactionID") or "") or None
            if status is PaymentStatus.SUCCEEDED and transaction_id is None:
                raise ProviderError(
                    "vodacom: success without a TransactionID",
                    retryable=True,
                    code=ErrorCode.BAD_RESPONSE,
                    operator_code=code,
                )
            logger.info("vodacom push %s: %s", request.reference, code)
            return PushResult(
                provider_reference=request.reference,
                status=status,
                message=message,
                transaction_id=transaction_id,
                extra={"conversation_id": str(body.get("output_ConversationID") or "")},
                raw=body,
            )
        if code == DUPLICATE:
            raise ProviderError(
                f"vodacom: reference {request.reference} was already pushed",
                retryable=False,
                code=ErrorCode.DUPLICATE,
                operator_code=code,
                http_status=response.status_code,
            )
        if response.is_success:
            raise ProviderError(
                f"vodacom: unknown result {code!r}",
                retryable=True,
                code=ErrorCode.BAD_RESPONSE,
                operator_code=code,
            )
        raise self.http_error(response, operator_code=code, message=message)

    def query_status(self, *, provider_reference: str, extra: Mapping[str, str]) -> StatusResult:
        response, body = self._call(
            "GET",
            STATUS_OPERATION,
            params={
                "input_QueryReference": provider_reference,
                "input_ServiceProviderCode": self.service_provider_code,
                # Every request of the API carries an id of its own, this one included.
                "input_ThirdPartyConversationID": f"Q{secrets.token_hex(12)}",
                "input_Country": COUNTRY,
            },
        )
        code = _code(str(body.get("output_ResponseCode") or ""))
        if code != SUCCESS:
            raise self.http_error(
                response, operator_code=code, message=str(body.get("output_ResponseDesc") or "")
            )
        word = str(body.get("output_ResponseTransactionStatus") or "")
        status = TRANSACTION_STATUSES.get(word.lower())
        if status is None:
            logger.warning("vodacom: unknown status %r for %s", word, provider_reference)
            status = PaymentStatus.PENDING  # never final on a word we do not know
        return StatusResult(
            status=status,
            transaction_id=str(body.get("output_OriginalTransactionID") or "") or None,
            amount=None,
            currency=None,
            payer=None,
            message=word,
            raw=body,
        )

    def parse_callback(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        path_secret: str | None,
        expected: Mapping[str, str],
    ) -> CallbackEvent:
        if not self.callback_secret:
            raise CallbackRejected(RejectReason.NOT_CONFIGURED, "no vodacom callback_secret")
        if not secret_matches(path_secret, self.callback_secret):
            raise CallbackRejected(RejectReason.BAD_PATH_SECRET)
        data = parse_json_object(body)
        reference = get_text(data, "input_ThirdPartyConversationID")
        code = _code(get_text(data, "input_ResultCode"))
        status = RESULT_STATUSES.get(code, PaymentStatus.FAILED)
        transaction_id = get_text(data, "input_TransactionID", required=False) or None
        get_text(data, "input_OriginalConversationID", required=False)  # echoed back: a string
        return bare_callback_event(
            reference=reference,
            status=status,
            transaction_id=transaction_id,
            id_field="input_TransactionID",
            raw=data,
            message=get_text(data, "input_ResultDesc", required=False),
        )

    def acknowledge(self, event: CallbackEvent) -> Acknowledgement:
        return json_acknowledgement(
            {
                "output_OriginalConversationID": str(
                    event.raw.get("input_OriginalConversationID") or ""
                ),
                "output_ResponseCode": "0",
                "output_ResponseDesc": "Successfully Accepted Result",
                "output_ThirdPartyConversationID": event.provider_reference,
            }
        )
