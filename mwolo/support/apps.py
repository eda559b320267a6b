from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SupportConfig(AppConfig):
    name = "mwolo.support"
    label = "support"
    verbose_name = _("Support and field work")
