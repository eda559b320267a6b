"""Work orders: planned by the agency, done by a technician, and the meter follows."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.crm.services import connection_request_approve
from mwolo.crm.tests.factories import ConnectionRequestFactory, SiteFactory
from mwolo.geo.tests.factories import commune
from mwolo.metering.models import Meter, MeterReading
from mwolo.metering.tests.factories import MeterFactory, installed_meter
from mwolo.support import services
from mwolo.support.models import WorkOrder

pytestmark = pytest.mark.django_db

Kind = WorkOrder.Kind


def plan(actor, **values) -> WorkOrder:
    return services.work_order_create(work_order=WorkOrder(**values), actor=actor)


def test_a_planned_install_gets_a_number_and_the_sites_agency(manager, site, technician):
    stock = MeterFactory(agency=site.agency)

    order = plan(manager, kind=Kind.INSTALL, site=site, meter=stock, assigned_to=technician)

    year = clock.today().year
    assert order.number == f"OT-{year}-000001"
    assert order.agency == site.agency
    assert order.status == WorkOrder.Status.PLANNED
    assert order.created_by == manager
    assert plan(manager, kind=Kind.INSTALL, site=site).number == f"OT-{year}-000002"


@pytest.mark.parametrize(
    ("kind", "meter", "new_meter", "field"),
    [
        ("install", "installed_elsewhere", None, "meter"),
        ("remove", None, None, "meter"),
        ("remove", "installed_elsewhere", None, "meter"),
        ("replace", "here", None, "new_meter"),
        ("replace", "here", "installed_elsewhere", "new_meter"),
        ("read", "here", "stock", "new_meter"),
        ("install", "other_agency_stock", None, "meter"),
    ],
)
def test_planning_refuses_meters_that_do_not_fit_the_job(
    manager, site, kind, meter, new_meter, field
):
    meters = {
        "here": installed_meter(site),
        "installed_elsewhere": installed_meter(SiteFactory(agency=site.agency)),
        "stock": MeterFactory(agency=site.agency),
        "other_agency_stock": MeterFactory(),
        None: None,
    }
    with pytest.raises(ValidationError) as refused:
        plan(manager, kind=kind, site=site, meter=meters[meter], new_meter=meters[new_meter])
    assert field in refused.value.message_dict
    assert not WorkOrder.objects.exists()


def test_only_a_technician_of_the_sites_agency_can_be_assigned(manager, site):
    cashier = EmployeeFactory(role=Role.CASHIER, agency=site.agency)
    elsewhere = EmployeeFactory(role=Role.TECHNICIAN, agency=AgencyFactory(code="LSH-CTR"))
    for person in (cashier, elsewhere):
        with pytest.raises(ValidationError) as refused:
            plan(manager, kind=Kind.INSTALL, site=site, assigned_to=person)
        assert "assigned_to" in refused.value.message_dict
    assert not WorkOrder.objects.exists()


def test_a_manager_cannot_plan_work_at_another_agencys_site(site):
    other_manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=AgencyFactory(code="GOM-01"))
    with pytest.raises(ValidationError):
        plan(other_manager, kind=Kind.INSTALL, site=site)
    assert not WorkOrder.objects.exists()


def test_completing_an_install_installs_the_meter_with_the_register_read(manager, technician, site):
    stock = MeterFactory(agency=site.agency)
    order = plan(manager, kind=Kind.INSTALL, site=site, meter=stock, assigned_to=technician)

    done = services.work_order_complete(
        work_order_id=order.pk, actor=technician, register_kwh=Decimal("12.5"), report="RAS"
    )

    stock.refresh_from_db()
    assert stock.site == site
    assert stock.last_energy_kwh == Decimal("12.500")
    reading = MeterReading.objects.get(meter=stock)
    assert (reading.source, reading.recorded_by) == (MeterReading.Source.TECHNICIAN, technician)
    assert done.status == WorkOrder.Status.DONE
    assert (done.completed_by, done.register_kwh, done.report) == (
        technician,
        Decimal("12.5"),
        "RAS",
    )


def test_an_install_may_name_the_meter_chosen_on_site(manager, technician, site):
    order = plan(manager, kind=Kind.INSTALL, site=site)
    with pytest.raises(ValidationError):  # none chosen yet
        services.work_order_complete(work_order_id=order.pk, actor=technician, register_kwh=0)
    stock = MeterFactory(agency=site.agency)

    services.work_order_complete(
        work_order_id=order.pk, actor=technician, register_kwh=Decimal(0), meter_id=stock.pk
    )

    assert Meter.objects.get(pk=stock.pk).site == site
    assert WorkOrder.objects.get(pk=order.pk).meter == stock


def test_a_work_order_is_done_once(manager, technician, site):
    order = plan(manager, kind=Kind.INSTALL, site=site, meter=MeterFactory(agency=site.agency))
    services.work_order_complete(work_order_id=order.pk, actor=technician, register_kwh=5)

    with pytest.raises(ApplicationError) as again:
        services.work_order_complete(work_order_id=order.pk, actor=technician, register_kwh=9)

    assert again.value.status == 409
    assert WorkOrder.objects.get(pk=order.pk).register_kwh == Decimal("5.000")
    assert MeterReading.objects.count() == 1


def test_completing_a_replacement_swaps_the_meters_in_one_step(manager, technician, site):
    old = installed_meter(site, register="1000.000", at=clock.now() - dt.timedelta(days=3))
    new = MeterFactory(agency=site.agency)
    order = plan(manager, kind=Kind.REPLACE, site=site, meter=old, new_meter=new)

    with pytest.raises(ValidationError):  # the new meter's register is needed
        services.work_order_complete(work_order_id=order.pk, actor=technician, register_kwh=1010)
    assert Meter.objects.get(pk=old.pk).site == site

    services.work_order_complete(
        work_order_id=order.pk,
        actor=technician,
        register_kwh=Decimal("1010"),
        new_register_kwh=Decimal("0.4"),
    )

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.site, new.site) == (None, site)
    removal = old.installations.get()
    assert removal.removed_register_kwh == Decimal("1010.000")
    assert order.number in removal.removal_reason
    assert new.last_energy_kwh == Decimal("0.400")


def test_completing_a_removal_returns_the_meter_to_stock(manager, technician, site):
    meter = installed_meter(site, at=clock.now() - dt.timedelta(days=3))
    order = plan(manager, kind=Kind.REMOVE, site=site, meter=meter)

    services.work_order_complete(work_order_id=order.pk, actor=technician, register_kwh=1020)

    assert Meter.objects.get(pk=meter.pk).site is None


def test_a_reading_by_hand_is_stored_as_the_technicians(manager, technician, site):
    meter = installed_meter(site, register="1000.000", at=clock.now() - dt.timedelta(days=3))
    order = plan(manager, kind=Kind.READ, site=site, meter=meter)

    services.work_order_complete(work_order_id=order.pk, actor=technician, register_kwh=1042)

    reading = meter.readings.order_by("taken_at").last()
    assert (reading.energy_kwh, reading.recorded_by) == (Decimal("1042.000"), technician)


def test_a_register_that_makes_no_sense_completes_nothing(manager, technician, site):
    stock = MeterFactory(agency=site.agency)
    order = plan(manager, kind=Kind.INSTALL, site=site, meter=stock)
    for bad in (Decimal(-1), "abc"):
        with pytest.raises(ValidationError):
            services.work_order_complete(work_order_id=order.pk, actor=technician, register_kwh=bad)
    assert WorkOrder.objects.get(pk=order.pk).status == WorkOrder.Status.PLANNED
    assert Meter.objects.get(pk=stock.pk).site is None


def test_who_may_complete_a_work_order(manager, site):
    order = plan(manager, kind=Kind.INSTALL, site=site, meter=MeterFactory(agency=site.agency))
    cashier = EmployeeFactory(role=Role.CASHIER, agency=site.agency)
    with pytest.raises(PermissionDenied):
        services.work_order_complete(work_order_id=order.pk, actor=cashier, register_kwh=1)
    stranger = EmployeeFactory(role=Role.TECHNICIAN, agency=AgencyFactory(code="LSH-CTR"))
    with pytest.raises(ApplicationError) as hidden:
        services.work_order_complete(work_order_id=order.pk, actor=stranger, register_kwh=1)
    assert hidden.value.status == 404
    assert WorkOrder.objects.get(pk=order.pk).status == WorkOrder.Status.PLANNED


def test_cancelling_needs_a_reason_and_ends_the_work_order(manager, technician, site):
    order = plan(manager, kind=Kind.INSTALL, site=site, meter=MeterFactory(agency=site.agency))
    with pytest.raises(ValidationError):
        services.work_order_cancel(work_order_id=order.pk, actor=manager, reason="  ")
    with pytest.raises(PermissionDenied):
        services.work_order_cancel(work_order_id=order.pk, actor=technician, reason="x")

    services.work_order_cancel(work_order_id=order.pk, actor=manager, reason="Client absent")

    with pytest.raises(ApplicationError) as late:
        services.work_order_complete(work_order_id=order.pk, actor=technician, register_kwh=1)
    assert late.value.status == 409
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (WorkOrder.Status.CANCELLED, "Client absent")


def test_an_approved_connection_request_gets_an_install_work_order(gombe, manager):
    request = ConnectionRequestFactory(agency=gombe, commune=commune("Gombe"))

    approved = connection_request_approve(request_id=request.pk, actor=manager)

    order = WorkOrder.objects.get()
    assert (order.kind, order.site, order.status) == (Kind.INSTALL, approved.site, "planned")
    assert request.reference in order.instructions
