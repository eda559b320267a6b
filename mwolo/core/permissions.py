"""Who may see what: roles, and the one mechanism that scopes every query.

Roles are Django groups whose permissions are defined here (``ROLE_PERMISSIONS``) and
written to the database by ``roles_sync``. Permissions say *what kind* of record a user may
read or change; scoping says *which rows*:

- a superuser, or a user with ``agencies.view_all_agencies`` (administrators), sees all;
- an employee sees the rows of their home agency and of the agencies granted to them;
- a client (a user linked to a ``crm.Client``) sees only their own records;
- anyone else, and anonymous users, see nothing.

A scoped model says how its rows reach an agency and a client with an ``AccessPath``
class attribute; ``visible_to(queryset, user)`` does the rest. Views, the API, the admin
and selectors fetch scoped records only through it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.http import Http404
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from mwolo.accounts.models import User

M = TypeVar("M", bound=models.Model)

VIEW_ALL_AGENCIES = "agencies.view_all_agencies"


@dataclass(frozen=True)
class AccessPath:
    """Lookups from a scoped model to its agency id and its client id.

    ``agency="site__agency"`` means the row belongs to ``row.site.agency``; ``"pk"`` means
    the row is the agency (or the client) itself. ``None`` means that kind of user never
    sees these rows through scoping (e.g. clients and connection requests).
    """

    agency: str | None
    client: str | None = None


class Role(enum.StrEnum):
    ADMINISTRATOR = "administrator"
    AGENCY_MANAGER = "agency_manager"
    BILLING_AGENT = "billing_agent"
    CASHIER = "cashier"
    TECHNICIAN = "technician"
    SUPPORT_AGENT = "support_agent"
    HR_OFFICER = "hr_officer"
    CLIENT = "client"

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self])

    @property
    def is_employee(self) -> bool:
        return self is not Role.CLIENT


ROLE_LABELS = {
    Role.ADMINISTRATOR: _("Administrator"),
    Role.AGENCY_MANAGER: _("Agency manager"),
    Role.BILLING_AGENT: _("Billing agent"),
    Role.CASHIER: _("Cashier"),
    Role.TECHNICIAN: _("Technician"),
    Role.SUPPORT_AGENT: _("Support agent"),
    Role.HR_OFFICER: _("HR officer"),
    Role.CLIENT: _("Client"),
}

# The groups' names in the database (what staff see in the admin); renaming one here
# needs a data migration. Labels above are the translated names for the UI.
ROLE_GROUP_NAMES = {
    Role.ADMINISTRATOR: "Administrateur",
    Role.AGENCY_MANAGER: "Responsable d'agence",
    Role.BILLING_AGENT: "Agent de facturation",
    Role.CASHIER: "Caissier",
    Role.TECHNICIAN: "Technicien",
    Role.SUPPORT_AGENT: "Agent support",
    Role.HR_OFFICER: "Responsable RH",
    Role.CLIENT: "Client",
}

_GEO_READ = ["geo.view_country", "geo.view_province", "geo.view_territory", "geo.view_commune"]
_CUSTOMERS_READ = ["crm.view_client", "crm.view_site", "agencies.view_agency"]
_METERS_READ = [
    "metering.view_meter",
    "metering.view_meterinstallation",
    "metering.view_meterreading",
    "metering.view_metercommand",
    "metering.view_meteralarm",
    "metering.view_prepaidtoken",
]
_TARIFFS_READ = ["billing.view_tariff", "billing.view_tariffband", "billing.view_exchangerate"]
# The outbox (what was sent to a client, and how it went) and the texts it is made from.
_MESSAGES_READ = [
    "notifications.view_notification",
    "notifications.view_notificationattachment",
    "notifications.view_messagetemplate",
]
_INVOICES_READ = [
    "billing.view_invoice",
    "billing.view_invoiceline",
    "billing.view_creditnote",
    "billing.view_accountentry",
]
_PAYMENTS_READ = ["payments.view_payment", "payments.view_paymentintent"]
_TILL_WORK = [
    *_PAYMENTS_READ,
    "payments.add_payment",
    "payments.add_paymentintent",
    "payments.view_cashsession",
    "payments.add_cashsession",
    "payments.view_refund",
]
_PAYMENTS_WORK = [
    *_TILL_WORK,
    "payments.reverse_payment",
    "payments.add_refund",
    "payments.view_paymentreview",
    "payments.change_paymentreview",
]
_BILLING_WORK = [
    *_INVOICES_READ,
    "billing.view_billingrun",
    "billing.add_billingrun",
    "billing.issue_invoice",
    "billing.review_invoice",
    "billing.add_creditnote",
]

# Dunning: policies and their steps, promises to pay, exemptions, and the override.
_DUNNING_READ = [
    "dunning.view_dunningpolicy",
    "dunning.view_dunningstep",
    "dunning.view_publicholiday",
    "dunning.view_reminder",
    "dunning.view_disconnection",
    "dunning.view_disconnectionmeter",
    "dunning.view_promisetopay",
    "dunning.view_dunningexemption",
]
_DUNNING_WORK = [
    *_DUNNING_READ,
    "dunning.add_dunningpolicy",
    "dunning.change_dunningpolicy",
    "dunning.add_dunningstep",
    "dunning.change_dunningstep",
    "dunning.delete_dunningstep",
    "dunning.add_promisetopay",
    "dunning.add_dunningexemption",
    "dunning.change_dunningexemption",
    "dunning.override",
]

# Permissions per role ("app_label.codename"). The administrator role gets every permission.
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.ADMINISTRATOR: [],
    Role.AGENCY_MANAGER: [
        *_GEO_READ,
        *_CUSTOMERS_READ,
        "agencies.change_agency",
        "agencies.view_openinghours",
        "agencies.add_openinghours",
        "agencies.change_openinghours",
        "agencies.delete_openinghours",
        "crm.add_client",
        "crm.change_client",
        "crm.add_site",
        "crm.change_site",
        "crm.view_connectionrequest",
        "crm.review_connectionrequest",
        "accounts.view_user",
        *_METERS_READ,
        "metering.add_meter",
        "metering.switch_meter",
        "metering.issue_token",
        "metering.change_meterreading",
        "support.view_workorder",
        "support.add_workorder",
        "support.change_workorder",
        *_TARIFFS_READ,
        *_BILLING_WORK,
        *_DUNNING_WORK,
        *_PAYMENTS_WORK,
        *_MESSAGES_READ,
        "notifications.retry_notification",
    ],
    Role.BILLING_AGENT: [
        *_GEO_READ,
        *_CUSTOMERS_READ,
        *_METERS_READ,
        "metering.add_meterreading",
        "metering.change_meterreading",
        *_TARIFFS_READ,
        "billing.add_exchangerate",
        "billing.change_exchangerate",
        "billing.add_tariff",
        "billing.change_tariff",
        "billing.add_tariffband",
        "billing.change_tariffband",
        "billing.delete_tariffband",
        *_BILLING_WORK,
        *_DUNNING_WORK,
        *_PAYMENTS_WORK,
        *_MESSAGES_READ,
        "notifications.retry_notification",
    ],
    Role.CASHIER: [
        *_GEO_READ,
        *_CUSTOMERS_READ,
        *_METERS_READ,
        "metering.issue_token",
        *_TARIFFS_READ,
        *_INVOICES_READ,
        *_TILL_WORK,
        "notifications.view_notification",
    ],
    Role.TECHNICIAN: [
        *_GEO_READ,
        *_CUSTOMERS_READ,
        "crm.change_site",
        *_METERS_READ,
        "metering.add_meter",
        "metering.add_meterreading",
        "metering.switch_meter",
        "support.view_workorder",
        "support.complete_workorder",
    ],
    Role.SUPPORT_AGENT: [
        *_GEO_READ,
        *_CUSTOMERS_READ,
        "crm.change_client",
        "crm.view_connectionrequest",
        *_METERS_READ,
        "support.view_workorder",
        "support.add_workorder",
        *_INVOICES_READ,
        *_DUNNING_READ,
        *_PAYMENTS_READ,
        *_MESSAGES_READ,
        "notifications.retry_notification",
    ],
    Role.HR_OFFICER: [*_GEO_READ, "agencies.view_agency", "accounts.view_user"],
    Role.CLIENT: [
        "crm.view_client",
        "crm.view_site",
        "metering.view_meter",
        "metering.view_meterreading",
        "metering.view_prepaidtoken",
        *_INVOICES_READ,
        "dunning.view_reminder",
        *_PAYMENTS_READ,
        "payments.add_paymentintent",
        "notifications.view_notification",
    ],
}


def user_agency_ids(user: User) -> frozenset[int]:
    """Agencies an employee works for: their home agency and those granted to them."""
    cached = getattr(user, "_agency_ids_cache", None)
    if cached is None:
        ids = set(user.additional_agencies.values_list("pk", flat=True))
        if user.agency_id:
            ids.add(user.agency_id)
        cached = frozenset(ids)
        user._agency_ids_cache = cached  # type: ignore[attr-defined]
    return cached


def user_client_id(user: User) -> int | None:
    """The ``crm.Client`` this user logs in as, if any."""
    from mwolo.crm.models import Client

    cached = getattr(user, "_client_id_cache", False)
    if cached is False:
        cached = Client.objects.filter(user=user).values_list("pk", flat=True).first()
        user._client_id_cache = cached  # type: ignore[attr-defined]
    return cached


def sees_all_agencies(user: User | AnonymousUser) -> bool:
    return bool(user.is_active and (user.is_superuser or user.has_perm(VIEW_ALL_AGENCIES)))


def visible_to(queryset: models.QuerySet[M], user: User | AnonymousUser) -> models.QuerySet[M]:
    """The rows of ``queryset`` that ``user`` may see (see the module docstring)."""
    path: AccessPath = queryset.model.access  # type: ignore[attr-defined]
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    if sees_all_agencies(user):
        return queryset
    agency_ids = user_agency_ids(user)
    if agency_ids:
        if path.agency is None:
            return queryset.none()
        return queryset.filter(**{f"{path.agency}__in": agency_ids})
    client_id = user_client_id(user)
    if client_id is not None and path.client is not None:
        return queryset.filter(**{path.client: client_id})
    return queryset.none()


def get_visible_or_404(
    queryset: models.QuerySet[M], user: User | AnonymousUser, **lookup: Any
) -> M:
    """One scoped row; a row outside the user's scope is as absent as a missing one."""
    try:
        return visible_to(queryset, user).get(**lookup)
    except ObjectDoesNotExist as missing:
        raise Http404 from missing


def can_act_for_agency(user: User | AnonymousUser, agency_id: int | None) -> bool:
    """Whether an employee may create or move records into ``agency_id``."""
    if not user.is_authenticated or not user.is_active:
        return False
    if sees_all_agencies(user):
        return True
    return agency_id is not None and agency_id in user_agency_ids(user)
