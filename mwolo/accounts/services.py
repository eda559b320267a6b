from collections.abc import Collection, Iterable
from typing import Any

from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from mwolo.agencies.models import Agency
from mwolo.core.permissions import ROLE_GROUP_NAMES, ROLE_PERMISSIONS, Role

from .models import User


def _permissions(names: Iterable[str]) -> list[Permission]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = [
        perm
        for perm in Permission.objects.select_related("content_type").filter(
            codename__in={codename for _app, codename in wanted}
        )
        if (perm.content_type.app_label, perm.codename) in wanted
    ]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        raise RuntimeError(f"Unknown permissions in ROLE_PERMISSIONS: {sorted(missing)}")
    return found


@transaction.atomic
def roles_sync() -> dict[Role, Group]:
    """Create the role groups and give each exactly the permissions ``ROLE_PERMISSIONS`` lists.

    Idempotent; runs after every ``migrate`` (see ``AccountsConfig``) and on demand with
    ``manage.py sync_roles``. The code is the source of truth for these groups: permissions
    added to them by hand are removed. Administrators may still create other groups.
    """
    # Every app's permissions must exist, including apps migrated after this one.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    groups = {}
    for role in Role:
        group, _created = Group.objects.get_or_create(name=ROLE_GROUP_NAMES[role])
        if role is Role.ADMINISTRATOR:
            group.permissions.set(Permission.objects.all())
        else:
            group.permissions.set(_permissions(ROLE_PERMISSIONS[role]))
        groups[role] = group
    return groups


def roles_sync_after_migrate(**kwargs: Any) -> None:
    roles_sync()


def roles_of_group_names(names: Iterable[str]) -> set[Role]:
    """The roles whose groups are named in ``names`` (other groups have no role)."""
    by_group = {name: role for role, name in ROLE_GROUP_NAMES.items()}
    return {by_group[name] for name in names if name in by_group}


def user_roles(user: User) -> set[Role]:
    return roles_of_group_names(user.groups.values_list("name", flat=True))


def user_agency_validate(
    *, roles: Collection[Role], agency: Agency | None, is_superuser: bool = False
) -> None:
    """The home-agency rule of every account, wherever it is written.

    An employee belongs to one agency, except an administrator (or a superuser), who works
    for all. A client account has none: its client file says which agency serves it, and a
    home agency would show it every record of that agency. Raises ``ValidationError`` on
    ``agency``.
    """
    if agency is None:
        if is_superuser or Role.ADMINISTRATOR in roles:
            return
        if any(role.is_employee for role in roles):
            raise ValidationError({"agency": _("Every employee belongs to an agency.")})
    elif Role.CLIENT in roles:
        raise ValidationError(
            {
                "agency": _(
                    "A client account has no home agency: its client file says which "
                    "agency serves it."
                )
            }
        )


@transaction.atomic
def employee_create(
    *,
    username: str,
    first_name: str,
    last_name: str,
    roles: Iterable[Role],
    agency: Agency | None,
    email: str = "",
    phone: str = "",
    password: str | None = None,
    additional_agencies: Iterable[Agency] = (),
) -> User:
    """Create a staff account with its roles and agencies.

    Every employee but an administrator needs a home agency (``user_agency_validate``).
    Raises ``ValidationError`` (field errors) and writes nothing on bad input.
    """
    roles = set(roles)
    if not roles:
        raise ValidationError({"roles": _("Give the employee at least one role.")})
    if Role.CLIENT in roles:
        raise ValidationError({"roles": _("A client account is created from the client file.")})
    user_agency_validate(roles=roles, agency=agency)
    user = User(
        username=username,
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        agency=agency,
        is_staff=True,
        is_superuser=False,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    user.additional_agencies.set(additional_agencies)
    user.groups.set(Group.objects.filter(name__in=[ROLE_GROUP_NAMES[r] for r in roles]))
    return user


# Who may lift a login lock: administrators (they hold every permission).
UNLOCK_PERMISSION = "axes.delete_accessattempt"


@transaction.atomic
def login_locks_clear(*, attempt_ids: Collection[int], actor: User, reason: str) -> int:
    """Lift the login locks of the given failed-login counters (django-axes attempts).

    Their username and address may log in again at once. Each counter cleared leaves an
    audit entry in the same transaction: who lifted it and why, with the username, address
    and failure count it had. Returns how many were cleared (a counter already gone counts
    for nothing). Raises ``PermissionDenied`` for anyone without ``UNLOCK_PERMISSION`` and
    ``ValidationError`` without a reason; then nothing changes.
    """
    if not actor.has_perm(UNLOCK_PERMISSION):
        raise PermissionDenied
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the lock is lifted.")})
    attempts = list(AccessAttempt.objects.select_for_update().filter(pk__in=attempt_ids))
    for attempt in attempts:
        LogEntry.objects.log_create(
            attempt,
            force_log=True,
            action=LogEntry.Action.DELETE,
            actor=actor,
            object_repr=f"{attempt.username} ({attempt.ip_address})",
            changes={
                "username": [attempt.username, None],
                "ip_address": [attempt.ip_address, None],
                "failures_since_start": [str(attempt.failures_since_start), None],
            },
            additional_data={"unlocked": True, "reason": reason},
        )
    AccessAttempt.objects.filter(pk__in=[attempt.pk for attempt in attempts]).delete()
    return len(attempts)
