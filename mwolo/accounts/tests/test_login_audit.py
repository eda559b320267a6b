"""Logins, logouts and failed logins are recorded; repeated failures lock the account."""

import pytest
from axes.models import AccessFailureLog, AccessLog
from django.urls import reverse

from mwolo.accounts.tests.factories import EmployeeFactory

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
