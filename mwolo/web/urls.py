from django.urls import path

from mwolo.payments.views import intent_status

from . import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("raccordement/", views.connection_request_create, name="connection_request"),
    path(
        "raccordement/merci/<str:reference>/",
        views.connection_request_thanks,
        name="connection_request_thanks",
    ),
    path("paiement/<str:reference>/", intent_status, name="payment_status"),
]
