import pytest
from django.db import connection


@pytest.mark.django_db
def test_healthz_answers_ok_for_anonymous_callers(client):
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_reports_a_lost_database(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise connection.Database.OperationalError("server closed the connection")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/healthz/")
    assert response.status_code == 503
    assert response.json() == {"status": "database unavailable"}


def test_healthz_refuses_writes(client):
    assert client.post("/healthz/").status_code == 405
