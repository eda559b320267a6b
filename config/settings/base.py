"""Settings shared by every environment.

Every value that differs between a laptop, CI and production comes from the environment
(django-environ). The defaults are the embedded ones: SQLite and a file-system task broker
under ``var/``, so ``make run`` needs no server.
"""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("MWOLO_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

DJANGO_APPS = [
    # Jazzmin must come before django.contrib.admin to override its templates.
    "jazzmin",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "auditlog",
    "axes",
    "import_export",
    "phonenumber_field",
]
LOCAL_APPS = [
    "mwolo.core",
    "mwolo.geo",
    "mwolo.agencies",
    "mwolo.accounts",
    "mwolo.crm",
    "mwolo.metering",
    "mwolo.billing",
    "mwolo.payments",
    "mwolo.support",
    "mwolo.notifications",
    "mwolo.dunning",
    "mwolo.web",
    "mwolo.demo",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mwolo.core.middleware.LanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mwolo.core.middleware.AgencyTimezoneMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # Axes last: it turns a locked-out login into a clear 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and beat processes read while one of them writes;
    # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"

# Brute-force protection: five wrong passwords for one username from one address lock
# that pair for 15 minutes. Every attempt, good or bad, is kept for the audit trail.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25  # hours; accounts/locked_out.html tells users "15 minutes"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# Reverse proxies in front of gunicorn (Caddy in production): how many X-Forwarded-For
# entries to skip to find the caller's address, for the login lock and the throttles alike.
PROXY_COUNT = env.int("DJANGO_PROXY_COUNT", default=0)
AXES_IPWARE_PROXY_COUNT = PROXY_COUNT

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
# Default for anonymous pages; staff and clients see their agency's zone (core.middleware).
TIME_ZONE = "Africa/Kinshasa"

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Files nobody may download without a permission check (identity documents): never under
# MEDIA_ROOT, served only through views that check who asks (see core.storage).
PRIVATE_MEDIA_ROOT = Path(env.str("DJANGO_PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))

# Shared by every process (throttle counters, lock-outs): a folder under var/ by default,
# Redis in production.
CACHES = {"default": env.cache_url("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")}

PHONENUMBER_DEFAULT_REGION = "CD"
PHONENUMBER_DB_FORMAT = "E164"
PHONENUMBER_DEFAULT_FORMAT = "INTERNATIONAL"

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="Mwolo Energy <noreply@mwolo.cd>")

# --- Notifications (email and SMS to clients) ---------------------------------------------
# Email goes through EMAIL_BACKEND above (SMTP, or an anymail backend in production).
EMAIL_TIMEOUT = 30  # seconds; a failed send is retried later (notifications.services)
# SMS go through Africa's Talking when both are set; otherwise they are logged and kept in
# the outbox only (console backend), so no development machine texts anyone.
AFRICASTALKING_USERNAME = env.str("AFRICASTALKING_USERNAME", default="")
AFRICASTALKING_API_KEY = env.str("AFRICASTALKING_API_KEY", default="")
# Sender id or short code approved by Africa's Talking; empty: the account's default.
AFRICASTALKING_SENDER_ID = env.str("AFRICASTALKING_SENDER_ID", default="")
AFRICASTALKING_API_URL = env.str("AFRICASTALKING_API_URL", default="https://api.africastalking.com")
NOTIFICATIONS_SMS_TIMEOUT = 15  # seconds per request to the SMS gateway

# --- Celery -------------------------------------------------------------------------------
# Without CELERY_BROKER_URL the worker, beat and web exchange tasks through files under
# var/broker: real processes, no server to install.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The worker looks for messages this often (kombu's default is 1 s). With a task
        # taking 0.1 s and two pool processes, a 1 s poll capped the embedded stack at
        # about two tasks a second: the demo's start-up notices took minutes to drain.
        "polling_interval": 0.1,
    }
else:
    # A key prefix per deployment (or test run) keeps two users of one Redis apart.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "global_keyprefix": env.str("CELERY_KEY_PREFIX", default="mwolo:"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Two queues. Messages to clients and their documents come in bursts (a billing run or a
# dunning pass queues one per invoice, the demo hundreds at start-up); everything else
# (payments, meters, billing chunks, scheduled maintenance) must not wait behind them.
# Every worker consumes both, in turn (kombu's fair cycle), unless started with -Q: a
# deployment may give the deliveries workers of their own (docs/operations.md).
CELERY_TASK_DEFAULT_QUEUE = "celery"
_DELIVERIES_QUEUE = "deliveries"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name)
    for name in (CELERY_TASK_DEFAULT_QUEUE, _DELIVERIES_QUEUE)
]
CELERY_TASK_ROUTES = {
    name: {"queue": _DELIVERIES_QUEUE}
    for name in (
        "notifications.notification_deliver",
        "notifications.notifications_retry_due",
        "billing.invoices_deliver",
        "billing.invoices_backlog",
        "billing.credit_note_document",
        "dunning.notices_deliver",
        "payments.receipt_deliver",
    )
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Fernet keys for secrets kept in the database (meters' token keys), newest first.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# --- Meters (MQTT) ---------------------------------------------------------------------------
# Without MQTT_URL, `make run` starts an embedded broker (sandbox.broker) on port 11883.
MQTT_URL = env.str("MQTT_URL", default="mqtt://127.0.0.1:11883")
# Every topic starts with it (meter protocol v1: <prefix>/meters/<serial>/...).
MQTT_TOPIC_PREFIX = env.str("MQTT_TOPIC_PREFIX", default="mwolo")
# A meter silent this long is marked offline and alarmed by the reconciliation (every 5
# minutes): longer than the meters' reporting interval (docs/meter-protocol.md).
METERING_OFFLINE_AFTER_MINUTES = env.int("METERING_OFFLINE_AFTER_MINUTES", default=30)

# --- Mobile money (docs/payments.md) -----------------------------------------------------------
# Each operator's address and merchant credentials. Without variables the adapters talk to
# the operator simulator `make run` starts (sandbox.operators, which listens where
# MOBILE_MONEY_SIMULATOR_URL says) with its sandbox accounts; production sets every value
# (deploy/env.example). Timeouts are in seconds.
_OPERATOR_SIMULATOR = env.str(
    "MOBILE_MONEY_SIMULATOR_URL",
    default=f"http://127.0.0.1:{env.int('SANDBOX_OPERATORS_PORT', default=18080)}",
)
# The simulator's Vodacom market key (sandbox/operators/vodacom_sandbox_key.pem holds the
# private half); production uses the market's public key from the OpenAPI portal.
_SANDBOX_VODACOM_PUBLIC_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlcILCv4lt70s6N95p8owLqdWqDN2sgQ+"
    "Ycel2/tW43HkAs+IbVlKfyCNsV2x/2z7Z8J5EGmWhxHx2vuWH0vCDEAZwmVISB6eYZLRdUf67pPJ"
    "qhh/0JrBXuB+IplMlE8IAckEh62wqf2LKFSLRoz/QziRTEoYnDx1n5LZ8/MLAB9x1sAPNtxvXcvL"
    "d77Mva8YDx8QftOE+Adw5jggJ9pvroLG8xv4UNwTbaLZEC4V+6CEQs56vRPQzOEqIAyTzL2VzUSa"
    "N1BM+a/D4cCw6ICIf7NOkjqrtV5G61uwq1XgIki39IDVBQRF0DxbvwfkjGCxhQQCJvChRdf5Z+sL"
    "E3NYlwIDAQAB"
)
# The operators the utility has a contract with: the only ones offered and listened to.
MOBILE_MONEY_OPERATORS = env.list(
    "MOBILE_MONEY_OPERATORS", default=["mpesa", "vodacom", "airtel", "orange"]
)
MOBILE_MONEY = {
    "mpesa": {
        "base_url": env.str("MPESA_BASE_URL", default=_OPERATOR_SIMULATOR),
        "consumer_key": env.str("MPESA_CONSUMER_KEY", default="sandbox-mpesa-consumer-key"),
        "consumer_secret": env.str(
            "MPESA_CONSUMER_SECRET", default="sandbox-mpesa-consumer-secret"
        ),
        "shortcode": env.str("MPESA_SHORTCODE", default="174379"),
        "passkey": env.str("MPESA_PASSKEY", default="sandbox-mpesa-passkey"),
        # Daraja signs no callback: its URL ends with this secret segment.
        "callback_secret": env.str(
            "MPESA_CALLBACK_SECRET", default="sandbox-mpesa-callback-secret"
        ),
        "connect_timeout": 5,
        "read_timeout": 30,
    },
    "vodacom": {
        "base_url": env.str("VODACOM_BASE_URL", default=_OPERATOR_SIMULATOR),
        # The first path segment: "sandbox" or "openapi" (production).
        "environment": env.str("VODACOM_ENVIRONMENT", default="sandbox"),
        "api_key": env.str("VODACOM_API_KEY", default="sandbox-vodacom-api-key"),
        "public_key": env.str("VODACOM_PUBLIC_KEY", default=_SANDBOX_VODACOM_PUBLIC_KEY),
        "service_provider_code": env.str("VODACOM_SERVICE_PROVIDER_CODE", default="000000"),
        "origin": env.str("VODACOM_ORIGIN", default="*"),
        # Vodacom signs no callback either: the registered result URL ends with this.
        "callback_secret": env.str(
            "VODACOM_CALLBACK_SECRET", default="sandbox-vodacom-callback-secret"
        ),
        "session_lifetime": 3600,
        "connect_timeout": 5,
        "read_timeout": 30,
        # The C2B call answers only once the customer has typed the PIN (or given up).
        "push_read_timeout": 180,
    },
    "airtel": {
        "base_url": env.str("AIRTEL_BASE_URL", default=_OPERATOR_SIMULATOR),
        "client_id": env.str("AIRTEL_CLIENT_ID", default="sandbox-airtel-client-id"),
        "client_secret": env.str("AIRTEL_CLIENT_SECRET", default="sandbox-airtel-client-secret"),
        # The key Airtel signs callbacks with (HMAC-SHA256).
        "callback_key": env.str("AIRTEL_CALLBACK_KEY", default="sandbox-airtel-callback-key"),
        "connect_timeout": 5,
        "read_timeout": 30,
    },
    "orange": {
        "base_url": env.str("ORANGE_BASE_URL", default=_OPERATOR_SIMULATOR),
        "client_id": env.str("ORANGE_CLIENT_ID", default="sandbox-orange-client-id"),
        "client_secret": env.str("ORANGE_CLIENT_SECRET", default="sandbox-orange-client-secret"),
        "merchant_key": env.str("ORANGE_MERCHANT_KEY", default="sandbox-orange-merchant-key"),
        "webpay_path": env.str("ORANGE_WEBPAY_PATH", default="/orange-money-webpay/cd/v1"),
        "connect_timeout": 5,
        "read_timeout": 30,
    },
}

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    # The token scheme first: its Bearer challenge turns "not logged in" into a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["mwolo.core.api.RoleModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "mwolo.core.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mwolo.core.api_errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"public_form": "20/hour"},
    "NUM_PROXIES": PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mwolo Energy Systems API",
    "DESCRIPTION": "REST API of the Mwolo Energy Systems platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status" or a "kind": each choice set gets a name of its own.
    "ENUM_NAME_OVERRIDES": {
        "InvoiceStatusEnum": "mwolo.billing.models.Invoice.Status",
        "BillingRunStatusEnum": "mwolo.billing.models.BillingRun.Status",
        "ConnectionRequestStatusEnum": "mwolo.crm.models.ConnectionRequest.Status",
        "InvoiceLineKindEnum": "mwolo.billing.models.InvoiceLine.Kind",
        "PartyKindEnum": "mwolo.crm.models.PartyKind",
        "CurrencyEnum": "mwolo.billing.models.Currency",
    },
}

# --- Admin (Jazzmin) ----------------------------------------------------------------------
JAZZMIN_SETTINGS = {
    "site_title": "Mwolo Energy",
    "site_header": "Mwolo Energy",
    "site_brand": "Mwolo Energy",
    "welcome_sign": _("Welcome to the Mwolo Energy back office"),
    "site_logo": "mwolo/logo.svg",
    "login_logo": "mwolo/logo.svg",
    "site_icon": "mwolo/logo.svg",
    "site_logo_classes": "",
    "copyright": "Mwolo Energy Systems",
    "search_model": ["crm.Client", "crm.Site"],
    "user_avatar": None,
    "topmenu_links": [
        {"name": _("Public site"), "url": "/", "new_window": True},
        {"name": _("API documentation"), "url": "/api/docs/", "new_window": True},
    ],
    "show_sidebar": True,
    "navigation_expanded": True,
    "order_with_respect_to": ["crm", "agencies", "geo", "accounts", "auth", "auditlog", "axes"],
    "icons": {
        "accounts.User": "fas fa-user",
        "auth.Group": "fas fa-users-cog",
        "agencies.Agency": "fas fa-building",
        "crm.Client": "fas fa-address-card",
        "crm.Site": "fas fa-plug",
        "crm.ConnectionRequest": "fas fa-inbox",
        "geo.Country": "fas fa-flag",
        "geo.Province": "fas fa-map",
        "geo.Territory": "fas fa-map-marked",
        "geo.Commune": "fas fa-map-pin",
        "auditlog.LogEntry": "fas fa-history",
        "notifications.Notification": "fas fa-paper-plane",
        "notifications.MessageTemplate": "fas fa-envelope-open-text",
        "dunning.DunningPolicy": "fas fa-layer-group",
        "dunning.Reminder": "fas fa-bell",
        "dunning.Disconnection": "fas fa-power-off",
        "dunning.PromiseToPay": "fas fa-handshake",
        "dunning.DunningExemption": "fas fa-shield-alt",
        "dunning.PublicHoliday": "fas fa-calendar-day",
    },
    "related_modal_active": False,
    "use_google_fonts_cdn": False,
    "language_chooser": True,
    "changeform_format": "horizontal_tabs",
}

# --- Audit trail --------------------------------------------------------------------------
# One list of every model whose changes are recorded, with who, when, before and after.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {
        "model": "accounts.User",
        "exclude_fields": ["password", "last_login"],
        # Grants: roles (groups), agencies beyond the home one, permissions given one by one.
        # Each addition or removal is an entry naming what was granted or taken away.
        "m2m_fields": ["groups", "additional_agencies", "user_permissions"],
    },
    "auth.Group",
    "agencies.Agency",
    "agencies.OpeningHours",
    "crm.Client",
    "crm.Site",
    "crm.ConnectionRequest",
    "geo.Province",
    "geo.Territory",
    "geo.Commune",
    "notifications.MessageTemplate",
    "billing.Tariff",
    "billing.TariffBand",
    "billing.ExchangeRate",
    "billing.BillingRun",
    "billing.CreditNote",
    "payments.Payment",
    "payments.CashSession",
    "payments.Refund",
    "payments.PaymentReview",
    "dunning.DunningPolicy",
    "dunning.DunningStep",
    "dunning.PublicHoliday",
    "dunning.DunningExemption",
    "dunning.PromiseToPay",
    "dunning.Disconnection",
    # Metering: a meter's registration (never its token secret, nor the state its
    # messages keep up to date), installations, tokens and the commands people ask for.
    # What the head-end changes in bulk (command status, readings) is kept on the rows
    # themselves: docs/meter-protocol.md, "Audit".
    {
        "model": "metering.Meter",
        "exclude_fields": [
            "token_secret",
            "relay_reported",
            "relay_reported_at",
            "online",
            "last_seen_at",
            "last_energy_kwh",
            "last_reading_at",
            "credit_kwh",
            "firmware",
            "disagreements",
        ],
    },
    "metering.MeterInstallation",
    "metering.MeterCommand",
    "metering.PrepaidToken",
    # Who planned, recorded or called off a job at a site; the meter it changed is in the
    # entries of the meter and its installation, written in the same transaction.
    "support.WorkOrder",
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# The platform's address as operators and clients reach it (callback URLs, links in
# messages): https://portail.example.cd in production.
MWOLO_PUBLIC_URL = env.str("MWOLO_PUBLIC_URL", default="http://127.0.0.1:8000")

# --- Backups --------------------------------------------------------------------------------
# The nightly dump of the database (mwolo.core.backup, beat at 02:00 Kinshasa): where it
# goes and how many days are kept there. Copy the folder off the server as well.
MWOLO_BACKUP_DIR = Path(env.str("MWOLO_BACKUP_DIR", default=str(VAR_DIR / "backups")))
MWOLO_BACKUP_KEEP_DAYS = env.int("MWOLO_BACKUP_KEEP_DAYS", default=14)

# --- Documents ------------------------------------------------------------------------------
# The issuer printed on invoices, credit notes, statements and receipts.
MWOLO_COMPANY = {
    "name": env.str("MWOLO_COMPANY_NAME", default="Mwolo Energy Systems SARL"),
    "address_lines": env.list(
        "MWOLO_COMPANY_ADDRESS", default=["12, boulevard du 30 Juin", "Gombe, Kinshasa"]
    ),
    "rccm": env.str("MWOLO_COMPANY_RCCM", default="CD/KNG/RCCM/24-B-01234"),
    "national_id": env.str("MWOLO_COMPANY_NATIONAL_ID", default="01-83-N12345A"),
    "tax_number": env.str("MWOLO_COMPANY_TAX_NUMBER", default="A2412345B"),
    "phone": env.str("MWOLO_COMPANY_PHONE", default="+243 81 555 0000"),
    "email": env.str("MWOLO_COMPANY_EMAIL", default="factures@mwolo.cd"),
    "website": env.str("MWOLO_COMPANY_WEBSITE", default="www.mwolo.cd"),
}
# How clients may pay, printed on invoices: (method, merchant code or account, detail).
MWOLO_PAYMENT_OPTIONS = [
    ("vodacom", env.str("MWOLO_PAY_VODACOM", default="151515"), "*1122#"),
    ("airtel", env.str("MWOLO_PAY_AIRTEL", default="161616"), "*501#"),
    ("orange", env.str("MWOLO_PAY_ORANGE", default="171717"), "*144#"),
    ("cash", "", ""),
]
