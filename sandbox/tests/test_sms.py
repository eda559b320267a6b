"""The Africa's Talking fake answers as the real SMS API does, over HTTP."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mwolo.core.testing.mqtt import free_port, wait_for_port
from sandbox.sms import FakeAfricasTalking

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gateway():
    server = FakeAfricasTalking(username="mwolo", api_key="secret", quiet=True).start()
    yield server
    server.stop()


def _post(gateway, form, key="secret"):
    return httpx.post(
        f"{gateway.url}/version1/messaging",
        data=form,
        headers={"apiKey": key, "Accept": "application/json"},
        timeout=10,
    )


def test_a_message_to_two_numbers_is_sent_to_each(gateway):
    response = _post(
        gateway,
        {
            "username": "mwolo",
            "to": "+243812345678,+243998765432",
            "message": "Bonjour",
            "from": "MWOLO",
        },
    )

    assert response.status_code == 201
    data = response.json()["SMSMessageData"]
    assert data["Message"] == "Sent to 2/2 Total Cost: USD 0.0400"
    assert [r["statusCode"] for r in data["Recipients"]] == [101, 101]
    assert [r["status"] for r in data["Recipients"]] == ["Success", "Success"]
    assert [m.to for m in gateway.messages] == ["+243812345678", "+243998765432"]
    assert gateway.messages[0].sender == "MWOLO"
    assert data["Recipients"][0]["messageId"] == gateway.messages[0].message_id


def test_an_unreadable_or_rejected_number_gets_its_status_code(gateway):
    gateway.reject("+243998765432", 406)

    response = _post(
        gateway, {"username": "mwolo", "to": "0812345678,+243998765432", "message": "x"}
    )

    recipients = response.json()["SMSMessageData"]["Recipients"]
    assert [(r["statusCode"], r["status"]) for r in recipients] == [
        (403, "InvalidPhoneNumber"),
        (406, "UserInBlacklist"),
    ]
    assert gateway.messages == []


@pytest.mark.parametrize(
    ("form", "key", "status"),
    [
        ({"username": "mwolo", "to": "+243812345678", "message": "x"}, "wrong", 401),
        ({"username": "other", "to": "+243812345678", "message": "x"}, "secret", 401),
        ({"username": "mwolo", "message": "x"}, "secret", 400),
        ({"username": "mwolo", "to": "+243812345678", "message": " "}, "secret", 400),
    ],
)
def test_bad_requests_are_refused_and_send_nothing(gateway, form, key, status):
    assert _post(gateway, form, key).status_code == status
    assert gateway.messages == []


def test_the_next_requests_can_be_made_to_fail(gateway):
    gateway.fail_next(502, times=2)
    form = {"username": "mwolo", "to": "+243812345678", "message": "x"}

    assert [_post(gateway, form).status_code for _ in range(3)] == [502, 502, 201]
    assert len(gateway.messages) == 1


def test_the_fake_started_as_make_run_does_keeps_each_sms(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.sms", "--port", str(port), "--folder", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port)
        response = httpx.post(
            f"http://127.0.0.1:{port}/version1/messaging",
            data={"username": "sandbox", "to": "+243812345678", "message": "Mwolo Energy: test"},
            headers={"apiKey": "any"},
            timeout=10,
        )
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)

    assert response.status_code == 201
    [line] = (tmp_path / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["message"] == "Mwolo Energy: test"
    assert "sms to +243812345678" in output
    assert process.returncode == 0
