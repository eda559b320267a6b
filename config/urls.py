from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.utils.translation import gettext_lazy as _

from mwolo.core.views import healthz
from mwolo.crm.views import client_identity_document

admin.site.site_header = "Mwolo Energy"
admin.site.site_title = "Mwolo Energy"
admin.site.index_title = _("Back office")

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz/", healthz, name="healthz"),
    path(
        "documents/kyc/<path:path>",
        client_identity_document,
        name="client-identity-document",
    ),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("config.api_urls")),
    path("", include("mwolo.web.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
