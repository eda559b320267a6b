"""Production: every secret and address from the environment; HTTPS only."""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set the DJANGO_SECRET_KEY environment variable (it is empty).")
# Old keys still accepted for signatures (sessions, reset links) while a new key rolls out.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
CACHES = {"default": env.cache_url("CACHE_URL")}
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
MQTT_URL = env.str("MQTT_URL")

# Mobile money: only the operators named are offered, and each must have every value of
# its own; one left unset would fall back to the simulator's address and sandbox keys.
MOBILE_MONEY_OPERATORS = env.list("MOBILE_MONEY_OPERATORS", default=[])
_OPERATOR_VARIABLES = {
    "mpesa": [
        "MPESA_BASE_URL",
        "MPESA_CONSUMER_KEY",
        "MPESA_CONSUMER_SECRET",
        "MPESA_SHORTCODE",
        "MPESA_PASSKEY",
        "MPESA_CALLBACK_SECRET",
    ],
    "vodacom": [
        "VODACOM_BASE_URL",
        "VODACOM_ENVIRONMENT",
        "VODACOM_API_KEY",
        "VODACOM_PUBLIC_KEY",
        "VODACOM_SERVICE_PROVIDER_CODE",
        "VODACOM_CALLBACK_SECRET",
    ],
    "airtel": [
        "AIRTEL_BASE_URL",
        "AIRTEL_CLIENT_ID",
        "AIRTEL_CLIENT_SECRET",
        "AIRTEL_CALLBACK_KEY",
    ],
    "orange": [
        "ORANGE_BASE_URL",
        "ORANGE_CLIENT_ID",
        "ORANGE_CLIENT_SECRET",
        "ORANGE_MERCHANT_KEY",
    ],
}
for _operator in MOBILE_MONEY_OPERATORS:
    if _operator not in _OPERATOR_VARIABLES:
        raise ImproperlyConfigured(
            f"MOBILE_MONEY_OPERATORS names {_operator!r}: use mpesa, vodacom, airtel, orange."
        )
    _unset = [name for name in _OPERATOR_VARIABLES[_operator] if not env.str(name, default="")]
    if _unset:
        raise ImproperlyConfigured(
            f"Set the {', '.join(_unset)} environment variable(s): {_operator} is in "
            "MOBILE_MONEY_OPERATORS (docs/payments.md)."
        )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
PROXY_COUNT = env.int("DJANGO_PROXY_COUNT", default=1)  # Caddy
AXES_IPWARE_PROXY_COUNT = PROXY_COUNT
REST_FRAMEWORK = {**REST_FRAMEWORK, "NUM_PROXIES": PROXY_COUNT}
