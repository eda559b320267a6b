"""Whatever arrives at a webhook, ``parse_callback`` answers an event or ``CallbackRejected``."""

import base64
import hashlib
import hmac
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwolo.core.testing.operators import CALLBACK_SECRETS, mobile_money_settings
from mwolo.integrations.payments import CallbackEvent, CallbackRejected
from mwolo.integrations.payments.airtel import AirtelProvider
from mwolo.integrations.payments.mpesa import MpesaProvider
from mwolo.integrations.payments.orange import OrangeProvider
from mwolo.integrations.payments.vodacom import VodacomProvider
from sandbox.operators import accounts

CONFIG = mobile_money_settings("http://127.0.0.1:9")  # never called: parsing is local
PROVIDERS = [
    MpesaProvider(CONFIG["mpesa"]),
    VodacomProvider(CONFIG["vodacom"]),
    AirtelProvider(CONFIG["airtel"]),
    OrangeProvider(CONFIG["orange"]),
]
NOTIF_TOKEN = "0123456789abcdef"
EXPECTED = {"provider_reference": "PI00000001", "notif_token": NOTIF_TOKEN}
FIELDS = [
    "Body", "stkCallback", "CheckoutRequestID", "ResultCode", "ResultDesc", "CallbackMetadata",
    "Item", "Name", "Value", "Amount", "MpesaReceiptNumber", "PhoneNumber",
    "input_ThirdPartyConversationID", "input_ResultCode", "input_TransactionID",
    "input_OriginalConversationID", "transaction", "id", "status_code", "airtel_money_id",
    "message", "hash", "status", "notif_token", "txnid",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["0", "1032", "INS-0", "TS", "TF", "SUCCESS", "FAILED", NOTIF_TOKEN])
)
# Objects shaped like the operators' callbacks, with any values in any place.
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)


def _airtel_signed(value: object) -> bytes:
    message = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    key = accounts.AIRTEL["callback_key"].encode()
    digest = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
    return json.dumps({**value, "hash": digest} if isinstance(value, dict) else value).encode()


def _only_events_or_rejections(body: bytes, headers: dict[str, str]) -> None:
    for provider in PROVIDERS:
        secret = CALLBACK_SECRETS.get(provider.name)
        try:
            event = provider.parse_callback(
                headers=headers, body=body, path_secret=secret, expected=EXPECTED
            )
        except CallbackRejected:
            continue
        assert isinstance(event, CallbackEvent)
        assert event.provider_reference
        assert event.amount is None or event.amount > 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(body):
    _only_events_or_rejections(body, {})


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_random_json(value):
    body = json.dumps(value).encode()
    _only_events_or_rejections(body, {})
    _only_events_or_rejections(body, {"hash": "not-a-hash"})


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_random_json_signed_with_airtel_s_key(value):
    _only_events_or_rejections(_airtel_signed(value), {})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6))
def test_random_fields_in_each_operator_s_envelope(fields):
    envelopes = [
        {"Body": {"stkCallback": fields}},
        {"transaction": fields},
        fields,
    ]
    for envelope in envelopes:
        _only_events_or_rejections(json.dumps(envelope).encode(), {})
        _only_events_or_rejections(_airtel_signed(envelope), {})
