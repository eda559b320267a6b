"""``orange``: Orange Money WebPay, RDC (``/orange-money-webpay/cd/v1``).

- Token: ``POST /oauth/v3/token`` with HTTP Basic (client id, secret) and the form
  ``grant_type=client_credentials`` → ``access_token``, ``expires_in``.
- Payment: ``POST …/webpayment`` ``{merchant_key, currency, order_id, amount, return_url,
  cancel_url, notif_url, lang, reference}`` → 201 ``{pay_token, payment_url,
  notif_token}``. The customer is sent to ``payment_url`` and types their number there:
  Orange is told no number. ``order_id`` is our reference and the provider reference;
  the amount a whole number.
- Notification to ``notif_url``: ``{"status": "SUCCESS"|"FAILED", "notif_token",
  "txnid"}``. It names no order: the notif_url must (the payments app puts the reference
  in it), and the notif_token must equal the one stored at push time (constant time).
- Status: ``POST …/transactionstatus`` ``{order_id, amount, pay_token}`` → ``status``
  INITIATED, PENDING, EXPIRED, SUCCESS or FAILED; abandoned payments stay INITIATED.
"""

import logging
from collections.abc import Mapping
from typing import Any

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
    get_text,
    json_acknowledgement,
    json_body,
    parse_json_object,
    secret_matches,
    whole_units,
)

logger = logging.getLogger(__name__)

OAUTH_PATH = "/oauth/v3/token"
REFERENCE_MAX = 30  # the merchant label shown on the payment page
TRANSACTION_STATUSES = {
    "INITIATED": PaymentStatus.PENDING,
    "PENDING": PaymentStatus.PENDING,
    "SUCCESS": PaymentStatus.SUCCEEDED,
    "FAILED": PaymentStatus.FAILED,
    "EXPIRED": PaymentStatus.EXPIRED,
}
NOTIFICATION_STATUSES = {"SUCCESS": PaymentStatus.SUCCEEDED, "FAILED": PaymentStatus.FAILED}
DEFAULT_TOKEN_LIFETIME_S = 3600


class OrangeProvider(Provider):
    name = "orange"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.client_id = self.setting("client_id")
        self.client_secret = self.setting("client_secret")
        self.merchant_key = self.setting("merchant_key")
        self.webpay_path = self.setting("webpay_path").rstrip("/")

    def fetch_token(self) -> tuple[str, int]:
        response = self.send(
            "POST",
            OAUTH_PATH,
            data={"grant_type": "client_credentials"},
            auth=(self.client_id, self.client_secret),
            headers={"Accept": "application/json"},
        )
        body = self.reply_json(response)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if response.status_code == 200 and isinstance(token, str) and token:
            if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
                lifetime = DEFAULT_TOKEN_LIFETIME_S
            return token, lifetime
        if 400 <= response.status_code < 500:
            raise ProviderError(
                f"orange: client id or secret refused ({body.get('error') or ''})",
                retryable=False,
                code=ErrorCode.AUTH,
                operator_code=str(body.get("error") or ""),
                http_status=response.status_code,
            )
        raise self.http_error(response)

    def _post(self, operation: str, payload: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        response = self.with_token(
            lambda token: self.send(
                "POST",
                f"{self.webpay_path}/{operation}",
                content=json_body(payload),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
        )
        body = self.reply_json(response)
        if not response.is_success:
            raise self.http_error(
                response,
                operator_code=str(body.get("code") or body.get("status") or ""),
                message=str(body.get("message") or ""),
            )
        return response.status_code, body

    def push(self, request: PushRequest) -> PushResult:
        if not request.return_url:
            raise ValueError("orange needs a return_url: the customer's browser comes back there")
        amount = whole_units(request.amount, "Orange Money")
        _, body = self._post(
            "webpayment",
            {
                "merchant_key": self.merchant_key,
                "currency": request.currency,
                "order_id": request.reference,
                "amount": amount,
                "return_url": request.return_url,
                "cancel_url": request.cancel_url or request.return_url,
                "notif_url": request.callback_url,
                "lang": request.language,
                "reference": request.description[:REFERENCE_MAX],
            },
        )
        extra = {key: body.get(key) for key in ("pay_token", "notif_token", "payment_url")}
        if not all(isinstance(value, str) and value for value in extra.values()):
            raise ProviderError(
                "orange: payment created without pay_token, notif_token or payment_url",
                retryable=True,
                code=ErrorCode.BAD_RESPONSE,
            )
        logger.info("orange payment %s created", request.reference)
        return PushResult(
            provider_reference=request.reference,
            status=PaymentStatus.PENDING,
            message=str(body.get("message") or ""),
            extra={**{key: str(value) for key, value in extra.items()}, "amount": str(amount)},
            raw=body,
        )

    def query_status(self, *, provider_reference: str, extra: Mapping[str, str]) -> StatusResult:
        _, body = self._post(
            "transactionstatus",
            {
                "order_id": provider_reference,
                "amount": int(extra["amount"]),
                "pay_token": extra["pay_token"],
            },
        )
        word = str(body.get("status") or "")
        status = TRANSACTION_STATUSES.get(word)
        if status is None:
            logger.warning("orange: unknown transaction status %r for %s", word, provider_reference)
            status = PaymentStatus.PENDING  # never final on a word we do not know
        return StatusResult(
            status=status,
            transaction_id=str(body.get("txnid") or "") or None,
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
        """``expected`` holds the payment's ``provider_reference`` and ``notif_token``, as
        stored at push time (the notification itself names neither)."""
        reference = expected["provider_reference"]
        stored = expected.get("notif_token", "")
        if not stored:
            raise CallbackRejected(RejectReason.NOT_CONFIGURED, "no stored notif_token")
        data = parse_json_object(body)
        if not secret_matches(get_text(data, "notif_token"), stored):
            raise CallbackRejected(RejectReason.BAD_NOTIF_TOKEN)
        word = get_text(data, "status")
        if word not in NOTIFICATION_STATUSES:
            raise CallbackRejected(RejectReason.INVALID_FIELD, "status is not SUCCESS or FAILED")
        status = NOTIFICATION_STATUSES[word]
        transaction_id = get_text(data, "txnid", required=False) or None
        return bare_callback_event(
            reference=reference,
            status=status,
            transaction_id=transaction_id,
            id_field="txnid",
            raw=data,
            message=word,
        )

    def acknowledge(self, event: CallbackEvent) -> Acknowledgement:
        return json_acknowledgement({})
