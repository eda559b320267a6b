from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "mwolo.accounts"
    label = "accounts"
    verbose_name = _("Users and roles")

    def ready(self) -> None:
        from .services import roles_sync_after_migrate

        # Role groups follow the code's ROLE_PERMISSIONS after every migration.
        post_migrate.connect(roles_sync_after_migrate, sender=self)
