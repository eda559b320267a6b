"""The audit history in the admin: readable by the staff who may see the record, and
written only by the platform: nobody, not even a superuser, adds, edits or deletes it."""

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.urls import reverse

from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import Role
from mwolo.crm.tests.factories import ClientFactory, SiteFactory
from mwolo.metering.models import Meter
from mwolo.metering.tests.factories import installed_meter

pytestmark = pytest.mark.django_db


@pytest.fixture
def gombe():
    return AgencyFactory(code="KIN-GOM")


@pytest.fixture
def manager(gombe):
    return EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe, username="manager.gombe")


@pytest.fixture
def superuser():
    return AdministratorFactory(is_superuser=True, username="admin.siege")


@pytest.fixture
def entry(gombe, manager) -> LogEntry:
    """A client's e-mail changed by the manager: one update entry."""
    customer = ClientFactory(agency=gombe, email="ancien@exemple.cd")
    with set_actor(manager):
        customer.email = "nouveau@exemple.cd"
        customer.save()
    return LogEntry.objects.get_for_object(customer).get(action=LogEntry.Action.UPDATE)


def test_a_superuser_cannot_add_an_audit_entry(client, superuser, entry):
    client.force_login(superuser)
    before = LogEntry.objects.count()

    page = client.get(reverse("admin:auditlog_logentry_add"))
    sent = client.post(reverse("admin:auditlog_logentry_add"), {"action": 0, "changes": "{}"})

    assert (page.status_code, sent.status_code) == (403, 403)
    assert LogEntry.objects.count() == before
    listing = client.get(reverse("admin:auditlog_logentry_changelist")).content.decode()
    assert reverse("admin:auditlog_logentry_add") not in listing


def test_a_superuser_reads_an_audit_entry_but_cannot_change_it(client, superuser, entry):
    client.force_login(superuser)
    url = reverse("admin:auditlog_logentry_change", args=[entry.pk])

    page = client.get(url)
    sent = client.post(url, {"object_repr": "falsifié", "changes": "{}", "_save": "1"})

    assert page.status_code == 200
    assert "nouveau@exemple.cd" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert sent.status_code == 403
    entry.refresh_from_db()
    assert entry.changes_dict["email"] == ["ancien@exemple.cd", "nouveau@exemple.cd"]


def test_a_superuser_cannot_delete_audit_entries(client, superuser, entry):
    client.force_login(superuser)
    delete_url = reverse("admin:auditlog_logentry_delete", args=[entry.pk])

    page = client.get(delete_url)
    sent = client.post(delete_url, {"post": "yes"})
    bulk = client.post(
        reverse("admin:auditlog_logentry_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )

    assert (page.status_code, sent.status_code) == (403, 403)
    assert bulk.status_code in (200, 302)  # the action is not offered: nothing happens
    assert LogEntry.objects.filter(pk=entry.pk).exists()
    listing = client.get(reverse("admin:auditlog_logentry_changelist")).content.decode()
    assert "delete_selected" not in listing


def test_staff_read_the_history_of_a_client_and_of_a_meter_of_their_agency(
    client, gombe, manager, entry
):
    meter = installed_meter(SiteFactory(agency=gombe), serial="GOM-0001")
    with set_actor(manager):
        meter = Meter.objects.get(pk=meter.pk)
        meter.hardware_model = "HXE310"
        meter.save()
    client.force_login(manager)

    client_history = client.get(reverse("admin:crm_client_auditlog", args=[entry.object_pk]))
    meter_history = client.get(reverse("admin:metering_meter_auditlog", args=[meter.pk]))

    assert client_history.status_code == 200
    assert "nouveau@exemple.cd" in client_history.content.decode()
    assert "manager.gombe" in client_history.content.decode()
    assert meter_history.status_code == 200
    assert "HXE310" in meter_history.content.decode()
    assert "manager.gombe" in meter_history.content.decode()
    # The whole log, every agency's, is the administrators' alone.
    assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 403
