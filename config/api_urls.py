from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenRefreshView

from mwolo.accounts.api import MeView, TokenObtainView
from mwolo.agencies.api import AgencyViewSet
from mwolo.billing.api import (
    BillingRunViewSet,
    CreditNoteViewSet,
    InvoiceViewSet,
    StatementViewSet,
    TariffViewSet,
)
from mwolo.crm.api import ClientViewSet, ConnectionRequestViewSet, SiteViewSet
from mwolo.geo.api import CommuneViewSet, ProvinceViewSet, TerritoryViewSet
from mwolo.payments import views as payment_views
from mwolo.payments.api import (
    CashSessionViewSet,
    PaymentIntentViewSet,
    PaymentViewSet,
    RefundViewSet,
)

# Path converters: an id that is not a number is a 404, never a lookup error.
router = DefaultRouter(use_regex_path=False)
router.register("geo/provinces", ProvinceViewSet, basename="province")
router.register("geo/territories", TerritoryViewSet, basename="territory")
router.register("geo/communes", CommuneViewSet, basename="commune")
router.register("agencies", AgencyViewSet, basename="agency")
router.register("clients", ClientViewSet, basename="client")
router.register("sites", SiteViewSet, basename="site")
router.register("connection-requests", ConnectionRequestViewSet, basename="connection-request")
router.register("billing/invoices", InvoiceViewSet, basename="invoice")
router.register("billing/credit-notes", CreditNoteViewSet, basename="credit-note")
router.register("billing/runs", BillingRunViewSet, basename="billing-run")
router.register("billing/statements", StatementViewSet, basename="statement")
router.register("billing/tariffs", TariffViewSet, basename="tariff")
router.register("payments/intents", PaymentIntentViewSet, basename="payment-intent")
router.register("payments/payments", PaymentViewSet, basename="payment")
router.register("payments/tills", CashSessionViewSet, basename="till")
router.register("payments/refunds", RefundViewSet, basename="refund")

urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("auth/token/", TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("me/", MeView.as_view(), name="me"),
    path("payments/webhooks/<str:provider>/", payment_views.webhook, name="payment-webhook"),
    path(
        "payments/webhooks/<str:provider>/<str:secret>/",
        payment_views.webhook,
        name="payment-webhook-secret",
    ),
    *router.urls,
]
