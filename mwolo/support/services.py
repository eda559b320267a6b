"""Work orders: planned by the agency, done by a technician, changing the meter on completion.

Each function is one transaction. Completing runs the metering service of its kind
(``meter_install``, ``meter_replace``, ``meter_remove``, ``readings_record``) in the same
transaction, so a work order is done exactly when the meter changed.
"""

import datetime as dt
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from mwolo.accounts.models import User
from mwolo.accounts.services import user_roles
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.numbering import formatted_number
from mwolo.core.permissions import Role, can_act_for_agency, visible_to
from mwolo.crm.models import Site
from mwolo.metering import services as metering
from mwolo.metering.models import Meter, MeterReading

from .models import WorkOrder

Kind = WorkOrder.Kind


def _check_meter(kind: str, site: Site, meter: Meter | None, new_meter: Meter | None) -> None:
    errors: dict[str, str] = {}
    if kind == Kind.INSTALL:
        if meter is not None and meter.site_id is not None:
            errors["meter"] = _("This meter is already installed at a site.")
    elif meter is None or meter.site_id != site.pk:
        errors["meter"] = _("Choose the meter installed at this site.")
    if kind == Kind.REPLACE:
        if new_meter is None or new_meter.site_id is not None:
            errors["new_meter"] = _("Choose a meter from stock to replace it with.")
    elif new_meter is not None:
        errors["new_meter"] = _("Only a replacement has a new meter.")
    for field, chosen in (("meter", meter), ("new_meter", new_meter)):
        if chosen is not None and field not in errors and chosen.agency_id != site.agency_id:
            errors[field] = _("This meter belongs to another agency.")
    if errors:
        raise ValidationError(errors)


def _check_technician(user: User | None, agency_id: int) -> None:
    if user is None:
        return
    if Role.TECHNICIAN not in user_roles(user) or not can_act_for_agency(user, agency_id):
        raise ValidationError({"assigned_to": _("Assign a technician of the site's agency.")})


def work_order_check(*, work_order: WorkOrder, actor: User | None) -> None:
    """What planning checks, as field errors: the site, the meters for the kind, the technician."""
    site = work_order.site
    if actor is not None and not can_act_for_agency(actor, site.agency_id):
        raise ValidationError({"site": _("You cannot plan work at this agency's sites.")})
    if not site.is_active:
        raise ValidationError({"site": _("This site is closed.")})
    _check_meter(work_order.kind, site, work_order.meter, work_order.new_meter)
    _check_technician(work_order.assigned_to, site.agency_id)


@transaction.atomic
def work_order_create(*, work_order: WorkOrder, actor: User | None) -> WorkOrder:
    """Plan a work order at a site of the actor's agencies."""
    work_order_check(work_order=work_order, actor=actor)
    site = work_order.site
    year = clock.today().year
    work_order.number = formatted_number(prefix=f"OT-{year}", key=f"work_order:{year}")
    work_order.agency_id = site.agency_id
    work_order.created_by = actor
    work_order.full_clean()
    work_order.save()
    return work_order


def _locked(work_order_id: int, actor: User | None) -> WorkOrder:
    queryset = WorkOrder.objects.select_for_update(of=("self",)).select_related("site")
    if actor is not None:
        queryset = visible_to(queryset, actor)
    work_order = queryset.filter(pk=work_order_id).first()
    if work_order is None:
        raise ApplicationError(_("This work order does not exist."), status=404)
    if work_order.status != WorkOrder.Status.PLANNED:
        raise ApplicationError(
            _("This work order is already %(status)s.")
            % {"status": work_order.get_status_display().lower()},
            status=409,
        )
    return work_order


@transaction.atomic
def work_order_complete(
    *,
    work_order_id: int,
    actor: User | None,
    register_kwh: Decimal,
    new_register_kwh: Decimal | None = None,
    meter_id: int | None = None,
    report: str = "",
    at: dt.datetime | None = None,
) -> WorkOrder:
    """Record the work as done and change the meter accordingly.

    ``register_kwh`` is what the technician read: the installed meter's register (install),
    the old meter's last one (replace, remove) or the reading (read). A replacement also
    needs the new meter's register. An install may name the meter chosen on site. Done
    once: completing again is refused (409) and changes nothing.
    """
    if actor is not None and not actor.has_perm("support.complete_workorder"):
        raise PermissionDenied
    work_order = _locked(work_order_id, actor)
    at = at or clock.now()
    if at > clock.now() + dt.timedelta(minutes=5):
        raise ValidationError({"at": _("Work cannot be done in the future.")})
    if meter_id is not None and work_order.kind == Kind.INSTALL:
        work_order.meter = Meter.objects.filter(pk=meter_id).first()
        _check_meter(Kind.INSTALL, work_order.site, work_order.meter, None)
    reason = _("Work order %(number)s") % {"number": work_order.number}
    meter_id = work_order.meter_id
    if meter_id is None:
        raise ValidationError({"meter": _("Say which meter was installed.")})
    if work_order.kind == Kind.INSTALL:
        metering.meter_install(
            meter_id=meter_id, site=work_order.site, register_kwh=register_kwh, actor=actor, at=at
        )
    elif work_order.kind == Kind.REPLACE:
        if new_register_kwh is None or work_order.new_meter_id is None:
            raise ValidationError({"new_register_kwh": _("Enter the new meter's register.")})
        metering.meter_replace(
            old_meter_id=meter_id,
            new_meter_id=work_order.new_meter_id,
            old_register_kwh=register_kwh,
            new_register_kwh=new_register_kwh,
            reason=reason,
            actor=actor,
            at=at,
        )
    elif work_order.kind == Kind.REMOVE:
        metering.meter_remove(
            meter_id=meter_id, register_kwh=register_kwh, reason=reason, actor=actor, at=at
        )
    else:
        metering.readings_record(
            meter_id=meter_id,
            readings=[(at, register_kwh)],
            source=MeterReading.Source.TECHNICIAN,
            actor=actor,
        )
    work_order.status = WorkOrder.Status.DONE
    work_order.completed_at = at
    work_order.completed_by = actor
    work_order.register_kwh = register_kwh
    work_order.new_register_kwh = new_register_kwh
    work_order.report = report.strip()
    work_order.save()
    return work_order


@transaction.atomic
def work_order_cancel(*, work_order_id: int, actor: User | None, reason: str) -> WorkOrder:
    """Call off a planned work order, saying why; nothing changes on the meter."""
    if actor is not None and not actor.has_perm("support.change_workorder"):
        raise PermissionDenied
    if not reason.strip():
        raise ValidationError({"cancel_reason": _("Say why the work order is cancelled.")})
    work_order = _locked(work_order_id, actor)
    work_order.status = WorkOrder.Status.CANCELLED
    work_order.cancel_reason = reason.strip()[:200]
    work_order.save(update_fields=["status", "cancel_reason", "updated_at"])
    return work_order
