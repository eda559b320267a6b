"""Developer machine: `make run`. Embedded defaults, debug on, mail and SMS to local fakes."""

from .base import *
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-development-key-not-for-production")
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHI="]
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
# Serve static files straight from the apps: no collectstatic needed while developing.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
# Messages to clients go through the real delivery code to local stand-ins started by
# `make run`: email to the SMTP sink (sandbox.smtp, one .eml file per message under
# var/mail/), SMS to the Africa's Talking fake (sandbox.sms, var/sms/). Each reads the same
# variables to know where to listen.
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
# The sinks `make run` starts (Procfile), on SANDBOX_*_PORT.
EMAIL_PORT = env.int("EMAIL_PORT", default=env.int("SANDBOX_SMTP_PORT", default=11025))
EMAIL_USE_TLS = False
AFRICASTALKING_USERNAME = env.str("AFRICASTALKING_USERNAME", default="sandbox")
AFRICASTALKING_API_KEY = env.str("AFRICASTALKING_API_KEY", default="local-fake-key")
AFRICASTALKING_API_URL = env.str(
    "AFRICASTALKING_API_URL",
    default=f"http://127.0.0.1:{env.int('SANDBOX_SMS_PORT', default=11026)}",
)
