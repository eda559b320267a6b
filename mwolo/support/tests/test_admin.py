"""Work orders in the back office: planned by the manager, recorded by the technician."""

from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory, UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.crm.tests.factories import SiteFactory
from mwolo.metering.models import Meter, MeterInstallation
from mwolo.metering.tests.factories import MeterFactory, installed_meter
from mwolo.support import services
from mwolo.support.models import WorkOrder

pytestmark = pytest.mark.django_db

LIST = reverse("admin:support_workorder_changelist")
ADD = reverse("admin:support_workorder_add")


def planned_install(site, actor) -> WorkOrder:
    return services.work_order_create(
        work_order=WorkOrder(
            kind=WorkOrder.Kind.INSTALL, site=site, meter=MeterFactory(agency=site.agency)
        ),
        actor=actor,
    )


def plan_form(site, **overrides) -> dict:
    return {
        "kind": "install",
        "site": site.pk,
        "meter": "",
        "new_meter": "",
        "assigned_to": "",
        "scheduled_for": "",
        "instructions": "",
        **overrides,
    }


def test_a_manager_plans_an_install_from_the_add_form(client, manager, technician, site):
    stock = MeterFactory(agency=site.agency)
    client.force_login(manager)

    response = client.post(
        ADD,
        plan_form(site, meter=stock.pk, assigned_to=technician.pk, scheduled_for="2026-12-01"),
    )

    assert response.status_code == 302
    order = WorkOrder.objects.get()
    assert (order.meter, order.assigned_to, order.created_by) == (stock, technician, manager)
    assert order.number.startswith("OT-")


def test_planning_a_meter_that_does_not_fit_shows_the_error_and_saves_nothing(
    client, manager, site
):
    elsewhere = installed_meter(SiteFactory(agency=site.agency))
    client.force_login(manager)

    response = client.post(ADD, plan_form(site, meter=elsewhere.pk))

    assert response.status_code == 200
    assert "déjà installé" in response.content.decode()
    assert not WorkOrder.objects.exists()


def test_only_technicians_of_ones_agencies_are_offered(client, manager, technician):
    EmployeeFactory(role=Role.CASHIER, agency=manager.agency, username="caissier.gombe")
    EmployeeFactory(role=Role.TECHNICIAN, agency=AgencyFactory(), username="tech.ailleurs")
    client.force_login(manager)

    choices = client.get(ADD).context["adminform"].form.fields["assigned_to"].queryset

    assert list(choices) == [technician]


def test_the_technician_records_the_work_and_the_meter_is_installed(
    client, manager, technician, site
):
    order = planned_install(site, manager)
    client.force_login(technician)
    action = {"action": "complete_work_order", "_selected_action": [order.pk]}

    form = client.post(LIST, action)
    assert form.status_code == 200
    assert "Index relevé (kWh)" in form.content.decode()

    client.post(LIST, {**action, "confirm": "yes", "register_kwh": "3.25", "report": "Posé"})

    order.refresh_from_db()
    assert order.status == WorkOrder.Status.DONE
    assert Meter.objects.get(pk=order.meter_id).site == site
    assert order.register_kwh == Decimal("3.250")


@pytest.mark.parametrize("register", ["", "-1", "abc", "1e40"])
def test_a_bad_register_shows_an_error_and_records_nothing(
    client, manager, technician, site, register
):
    order = planned_install(site, manager)
    client.force_login(technician)

    response = client.post(
        LIST,
        {
            "action": "complete_work_order",
            "_selected_action": [order.pk],
            "confirm": "yes",
            "register_kwh": register,
        },
    )

    assert response.status_code == 200
    assert "text-danger" in response.content.decode()
    assert WorkOrder.objects.get(pk=order.pk).status == WorkOrder.Status.PLANNED


def test_a_cashier_is_not_offered_the_completion(client, manager, site):
    order = planned_install(site, manager)
    cashier = EmployeeFactory(role=Role.CASHIER, agency=site.agency)
    client.force_login(cashier)

    response = client.post(
        LIST,
        {
            "action": "complete_work_order",
            "_selected_action": [order.pk],
            "confirm": "yes",
            "register_kwh": "1",
        },
    )

    assert response.status_code == 403  # no view permission on work orders at all
    assert WorkOrder.objects.get(pk=order.pk).status == WorkOrder.Status.PLANNED


def test_cancelling_asks_for_a_reason(client, manager, site):
    order = planned_install(site, manager)
    client.force_login(manager)
    action = {"action": "cancel_work_orders", "_selected_action": [order.pk], "confirm": "yes"}

    assert client.post(LIST, {**action, "reason": ""}).status_code == 200
    assert WorkOrder.objects.get(pk=order.pk).status == WorkOrder.Status.PLANNED

    client.post(LIST, {**action, "reason": "Site inaccessible"})
    assert WorkOrder.objects.get(pk=order.pk).status == WorkOrder.Status.CANCELLED


@pytest.mark.parametrize(
    ("who", "sees"),
    [("manager", True), ("technician", True), ("other_agency", False), ("admin", True)],
)
def test_who_sees_a_work_order(client, manager, technician, site, who, sees):
    order = planned_install(site, manager)
    user = {
        "manager": manager,
        "technician": technician,
        "other_agency": EmployeeFactory(role=Role.AGENCY_MANAGER, agency=AgencyFactory()),
        "admin": AdministratorFactory(),
    }[who]
    client.force_login(user)

    listed = order.number in client.get(LIST).content.decode()
    page = client.get(reverse("admin:support_workorder_change", args=[order.pk]))

    assert listed is sees
    assert (page.status_code == 200) is sees


def test_anonymous_and_clients_get_no_work_orders(client, manager, site):
    planned_install(site, manager)
    assert client.get(LIST).status_code == 302
    client.force_login(UserFactory())
    assert client.get(LIST).status_code == 302  # not staff: back to the login page


def test_the_list_reads_a_fixed_number_of_rows(client, manager, site):
    client.force_login(manager)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST).status_code == 200
        return len(captured)

    for _ in range(3):
        planned_install(SiteFactory(agency=site.agency), manager)
    few = queries()
    for _ in range(12):
        planned_install(SiteFactory(agency=site.agency), manager)
    assert queries() == few


# --- Audit trail ---------------------------------------------------------------------------

ACTIONS = {LogEntry.Action.CREATE: "create", LogEntry.Action.UPDATE: "update"}


def entries(obj) -> list[tuple[str, object]]:
    """(action, actor) of each audit entry of ``obj``, oldest first."""
    log = LogEntry.objects.get_for_object(obj).order_by("timestamp", "pk")
    return [(ACTIONS.get(entry.action, "other"), entry.actor) for entry in log]


@pytest.mark.parametrize("kind", ["install", "replace", "remove"])
def test_a_job_recorded_in_the_back_office_is_in_the_audit_log_with_who_did_it(
    client, manager, technician, site, kind
):
    installed = installed_meter(site) if kind != "install" else None
    stock = MeterFactory(agency=site.agency) if kind != "remove" else None
    meter, new_meter = (stock, None) if kind == "install" else (installed, stock)
    client.force_login(manager)
    client.post(
        ADD,
        plan_form(
            site,
            kind=kind,
            meter=meter.pk if meter else "",
            new_meter=new_meter.pk if new_meter else "",
            assigned_to=technician.pk,
        ),
    )
    order = WorkOrder.objects.get()

    client.force_login(technician)
    client.post(
        LIST,
        {
            "action": "complete_work_order",
            "_selected_action": [order.pk],
            "confirm": "yes",
            "register_kwh": "1200",
            "new_register_kwh": "3",
            "report": "Travail fait",
        },
    )

    assert entries(order) == [("create", manager), ("update", technician)]
    done = LogEntry.objects.get_for_object(order).latest("timestamp").changes_dict
    assert done["status"] == ["planned", "done"]
    if installed is not None:  # replace, remove: the old meter's installation is closed
        closed = MeterInstallation.objects.get(meter=installed)
        assert closed.removed_by == technician
        assert entries(closed)[-1] == ("update", technician)
    if stock is not None:  # install, replace: the meter from stock is installed
        opened = MeterInstallation.objects.get(meter=stock)
        assert entries(opened) == [("create", technician)]
    history = client.get(reverse("admin:support_workorder_auditlog", args=[order.pk]))
    assert history.status_code == 200
    assert technician.username in history.content.decode()
