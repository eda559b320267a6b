"""Writes on clients, sites and connection requests. Each function is one transaction.

Records arrive as unsaved (or changed) model instances, from the admin's forms, the API's
serializers or the demo loader alike; these functions validate them completely, check the
acting employee's agency scope, number them and save them.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from mwolo.accounts.models import User
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.numbering import formatted_number, free_formatted_number
from mwolo.core.permissions import can_act_for_agency, visible_to
from mwolo.support.models import WorkOrder
from mwolo.support.services import work_order_create

from .models import Client, ConnectionRequest, Party, Site

REVIEW_PERMISSION = "crm.review_connectionrequest"


def _check_agency_scope(actor: User | None, agency_id: int | None) -> None:
    """An employee may only put records in an agency they work for. ``None`` is the system."""
    if actor is not None and not can_act_for_agency(actor, agency_id):
        raise ValidationError({"agency": _("You cannot register records for this agency.")})


@transaction.atomic
def client_save(*, client: Client, actor: User | None) -> Client:
    """Validate and save a new or changed client; a new one without number gets the next.

    Raises ``ValidationError`` with field messages (bad phone, inconsistent address,
    duplicate number, agency outside the actor's scope) and then writes nothing.
    """
    _check_agency_scope(actor, client.agency_id)
    if client.pk is None and not client.number:
        client.number = free_formatted_number(
            prefix="CL",
            key="client",
            width=7,
            is_taken=lambda number: Client.objects.filter(number=number).exists(),
        )
    client.full_clean()
    client.save()
    return client


@transaction.atomic
def site_save(*, site: Site, actor: User | None) -> Site:
    """Validate and save a new or changed site; same guarantees as ``client_save``."""
    _check_agency_scope(actor, site.agency_id)
    if (
        actor is not None
        and site.client_id is not None
        and not visible_to(Client.objects.filter(pk=site.client_id), actor).exists()
    ):
        raise ValidationError({"client": _("Choose a client of your agencies.")})
    if site.pk is None and not site.reference:
        site.reference = free_formatted_number(
            prefix="ST",
            key="site",
            width=7,
            is_taken=lambda reference: Site.objects.filter(reference=reference).exists(),
        )
    site.full_clean()
    site.save()
    return site


@transaction.atomic
def connection_request_submit(*, request: ConnectionRequest) -> ConnectionRequest:
    """Record a visitor's request with a public reference (``DR-2026-000042``)."""
    request.status = ConnectionRequest.Status.PENDING
    request.full_clean(exclude=["reference"])
    if not request.agency.is_active:
        raise ValidationError(
            {"agency": _("This agency no longer takes requests: choose another one.")}
        )
    year = clock.today().year
    request.reference = formatted_number(prefix=f"DR-{year}", key=f"connection_request:{year}")
    request.save()
    return request


def _pending_request_for_review(*, request_id: int, actor: User) -> ConnectionRequest:
    if not actor.has_perm(REVIEW_PERMISSION):
        raise PermissionDenied
    request = (
        visible_to(ConnectionRequest.objects.select_for_update(), actor)
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise ApplicationError(_("This connection request does not exist."), status=404)
    if request.status != ConnectionRequest.Status.PENDING:
        raise ApplicationError(
            _("This request was already handled (%s).") % request.get_status_display(),
            status=409,
        )
    return request


def _party_values(party: Party) -> dict[str, object]:
    return {field.name: getattr(party, field.name) for field in Party._meta.get_fields()}


@transaction.atomic
def connection_request_approve(
    *, request_id: int, actor: User, existing_client: Client | None = None
) -> ConnectionRequest:
    """Approve a pending request: a client (new, or ``existing_client``), a site, and the
    work order to install its meter.

    Runs once: a second approval, or an approval after a rejection, raises
    ``ApplicationError`` (409) and changes nothing.
    """
    request = _pending_request_for_review(request_id=request_id, actor=actor)
    if existing_client is not None:
        if not visible_to(Client.objects.filter(pk=existing_client.pk), actor).exists():
            raise ValidationError({"client": _("You cannot attach this request to that client.")})
        if not existing_client.is_active:
            raise ValidationError({"client": _("This client file is closed.")})
        client = existing_client
    else:
        client = client_save(
            client=Client(
                **_party_values(request),
                province=request.province,
                territory=request.territory,
                commune=request.commune,
                address_line=request.address_line,
                agency=request.agency,
            ),
            actor=actor,
        )
    site = site_save(
        site=Site(
            client=client,
            agency=request.agency,
            category=request.category,
            province=request.province,
            territory=request.territory,
            commune=request.commune,
            address_line=request.address_line,
            latitude=request.latitude,
            longitude=request.longitude,
        ),
        actor=actor,
    )
    work_order_create(
        work_order=WorkOrder(
            kind=WorkOrder.Kind.INSTALL,
            site=site,
            instructions=_("New connection, request %(reference)s.")
            % {"reference": request.reference},
        ),
        actor=actor,
    )
    request.status = ConnectionRequest.Status.APPROVED
    request.client = client
    request.site = site
    request.reviewed_by = actor
    request.reviewed_at = clock.now()
    request.save(
        update_fields=["status", "client", "site", "reviewed_by", "reviewed_at", "updated_at"]
    )
    return request


@transaction.atomic
def connection_request_reject(*, request_id: int, actor: User, reason: str) -> ConnectionRequest:
    """Reject a pending request with a reason the applicant will be told."""
    if not reason.strip():
        raise ValidationError({"rejection_reason": _("Give the reason for the rejection.")})
    request = _pending_request_for_review(request_id=request_id, actor=actor)
    request.status = ConnectionRequest.Status.REJECTED
    request.rejection_reason = reason.strip()
    request.reviewed_by = actor
    request.reviewed_at = clock.now()
    request.save(
        update_fields=["status", "rejection_reason", "reviewed_by", "reviewed_at", "updated_at"]
    )
    return request
