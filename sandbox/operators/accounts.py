"""The merchant accounts the simulator knows: fixed sandbox credentials, never real ones.

``config/settings/base.py`` defaults to exactly these, so ``make run`` works with no
variable set; the test fixture (``mwolo.core.testing.operators``) reads them from here.
The Vodacom market key pair is test material: the simulator decrypts with the private
key, the platform encrypts with the public one (production: the market's real key).
"""

import base64
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_PORT = 18080
VODACOM_KEY_FILE = Path(__file__).with_name("vodacom_sandbox_key.pem")

MPESA = {
    "consumer_key": "sandbox-mpesa-consumer-key",
    "consumer_secret": "sandbox-mpesa-consumer-secret",
    "shortcode": "174379",
    "passkey": "sandbox-mpesa-passkey",
}
VODACOM = {
    "api_key": "sandbox-vodacom-api-key",
    "service_provider_code": "000000",
}
AIRTEL = {
    "client_id": "sandbox-airtel-client-id",
    "client_secret": "sandbox-airtel-client-secret",
    # The key Airtel signs callbacks with (the merchant copies it from the portal).
    "callback_key": "sandbox-airtel-callback-key",
}
ORANGE = {
    "client_id": "sandbox-orange-client-id",
    "client_secret": "sandbox-orange-client-secret",
    "merchant_key": "sandbox-orange-merchant-key",
}


@cache
def vodacom_private_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(VODACOM_KEY_FILE.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)  # noqa: S101 - our own test material
    return key


def vodacom_public_key() -> str:
    """The public half as the M-Pesa OpenAPI portal shows a market key: base64 DER."""
    der = (
        vodacom_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()
