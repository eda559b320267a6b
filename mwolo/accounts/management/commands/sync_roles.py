from typing import Any

from django.core.management.base import BaseCommand

from mwolo.accounts.services import roles_sync


class Command(BaseCommand):
    help = "Create or update the role groups and their permissions (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        groups = roles_sync()
        for role, group in groups.items():
            self.stdout.write(
                f"{group.name}: {group.permissions.count()} permissions ({role.label})"
            )
