from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    name = "mwolo.web"
    label = "web"
    verbose_name = _("Web site and portals")
