"""Logins, logouts and failed logins are recorded; repeated failures lock the account;
the records are read-only in the back office, and only an administrator lifts a lock."""

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from mwolo.accounts.services import login_locks_clear
from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
from mwolo.core.permissions import Role

pytestmark = pytest.mark.django_db

PASSWORD = "motdepasse-solide-2026"


def login(client, username, password):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR="41.243.1.10",
    )


def test_login_and_logout_are_recorded(client):
    user = EmployeeFactory(username="caissier.gombe")

    assert login(client, "caissier.gombe", PASSWORD).status_code == 302
    client.post(reverse("admin:logout"))

    entry = AccessLog.objects.get(username=user.username)
    assert entry.ip_address == "41.243.1.10"
    assert entry.logout_time is not None


def test_a_failed_login_is_recorded_without_the_password(client):
    EmployeeFactory(username="caissier.gombe")

    response = login(client, "caissier.gombe", "wrong")

    assert response.status_code == 200
    failure = AccessFailureLog.objects.get(username="caissier.gombe")
    assert failure.ip_address == "41.243.1.10"
    assert "wrong" not in str(failure.__dict__)


def test_five_failures_lock_the_account_even_for_the_right_password(client):
    EmployeeFactory(username="caissier.gombe")
    for _ in range(5):
        login(client, "caissier.gombe", "wrong")

    locked = login(client, "caissier.gombe", PASSWORD)

    assert locked.status_code == 429
    assert "bloquée pendant 15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session


# The login records in the back office: read-only for everyone; locks lifted on purpose.

LOGIN_RECORDS = ["accessattempt", "accesslog", "accessfailurelog"]


@pytest.fixture
def locked_out(client):
    """caissier.gombe, locked out after five wrong passwords (every kind of record exists)."""
    EmployeeFactory(username="caissier.gombe")
    login(client, "caissier.gombe", PASSWORD)
    client.post(reverse("admin:logout"))
    for _ in range(5):
        login(client, "caissier.gombe", "wrong")
    assert login(client, "caissier.gombe", PASSWORD).status_code == 429
    return AccessAttempt.objects.get(username="caissier.gombe")


@pytest.fixture
def administrator(client, locked_out):
    user = AdministratorFactory(username="admin.siege")
    client.force_login(user)
    return user


def record_counts() -> tuple[int, int, int]:
    return (
        AccessAttempt.objects.count(),
        AccessLog.objects.count(),
        AccessFailureLog.objects.count(),
    )


@pytest.mark.parametrize("model", LOGIN_RECORDS)
def test_administrators_read_login_records_but_cannot_change_or_delete_them(
    client, administrator, model
):
    record = apps.get_model("axes", model).objects.first()
    before = record_counts()

    listing = client.get(reverse(f"admin:axes_{model}_changelist"))
    detail = client.get(reverse(f"admin:axes_{model}_change", args=[record.pk]))

    assert listing.status_code == 200
    assert "caissier.gombe" in listing.content.decode()
    assert "delete_selected" not in listing.content.decode()
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert client.get(reverse(f"admin:axes_{model}_add")).status_code == 403
    assert client.get(reverse(f"admin:axes_{model}_delete", args=[record.pk])).status_code == 403
    deleted = client.post(reverse(f"admin:axes_{model}_delete", args=[record.pk]), {"post": "yes"})
    assert deleted.status_code == 403
    assert (
        client.post(
            reverse(f"admin:axes_{model}_change", args=[record.pk]), {"username": "someone"}
        ).status_code
        == 403
    )
    client.post(
        reverse(f"admin:axes_{model}_changelist"),
        {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
    )
    assert record_counts() == before


@pytest.mark.parametrize("model", LOGIN_RECORDS)
def test_other_staff_do_not_see_login_records(client, locked_out, model):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER))

    assert client.get(reverse(f"admin:axes_{model}_changelist")).status_code == 403


def test_an_administrator_unlocks_a_login_with_a_reason_and_it_is_audited(
    client, administrator, locked_out
):
    url = reverse("admin:axes_accessattempt_changelist")
    action = {"action": "unlock", "_selected_action": [locked_out.pk]}

    confirmation = client.post(url, action)
    assert confirmation.status_code == 200
    assert "caissier.gombe" in confirmation.content.decode()
    without_reason = client.post(url, {**action, "confirm": "yes", "reason": " "})
    assert without_reason.status_code == 200
    assert AccessAttempt.objects.filter(pk=locked_out.pk).exists()

    done = client.post(
        url,
        {**action, "confirm": "yes", "reason": "Appel du caissier, identité vérifiée"},
        follow=True,
    )

    assert "1 blocage levé." in done.content.decode()
    assert not AccessAttempt.objects.filter(username="caissier.gombe").exists()
    entry = LogEntry.objects.get(content_type__app_label="axes", action=LogEntry.Action.DELETE)
    assert entry.actor == administrator
    assert entry.object_repr == "caissier.gombe (41.243.1.10)"
    assert entry.changes_dict["failures_since_start"] == [
        str(locked_out.failures_since_start),
        None,
    ]
    assert entry.additional_data["reason"] == "Appel du caissier, identité vérifiée"
    client.logout()
    assert login(client, "caissier.gombe", PASSWORD).status_code == 302


def test_only_administrators_may_lift_a_lock(locked_out):
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER)

    with pytest.raises(PermissionDenied):
        login_locks_clear(attempt_ids=[locked_out.pk], actor=manager, reason="Oubli")

    assert AccessAttempt.objects.filter(pk=locked_out.pk).exists()
    assert not LogEntry.objects.filter(content_type__app_label="axes").exists()
