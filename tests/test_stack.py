"""`make run` on a fresh data directory: the whole process stack starts, serves, works, stops.

Runs against the services this test run uses: the embedded defaults, or (in CI's second
pass) a fresh PostgreSQL database and Redis with a key prefix of its own.
"""

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from itertools import takewhile
from pathlib import Path

import environ
import httpx
import psycopg
import pytest
from django.utils import translation

from mwolo.core.permissions import Role

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "stack-test-password-2026"
START_TIMEOUT = 300  # migrate + seed + start, on a slow CI machine

pytestmark = pytest.mark.stack


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    run = f"{os.getpid()}_{time.monotonic_ns()}"
    env.update(
        MWOLO_VAR_DIR=str(tmp_path / "var"),
        PORT=str(_free_port()),
        MWOLO_DEMO_PASSWORD=DEMO_PASSWORD,
        # make run's embedded broker, on a port of this run (not the CI pass's Mosquitto).
        MQTT_URL=f"mqtt://127.0.0.1:{_free_port()}",
        # The sinks and the operator simulator too: a developer's `make run` may be up.
        SANDBOX_SMTP_PORT=str(_free_port()),
        SANDBOX_SMS_PORT=str(_free_port()),
        SANDBOX_OPERATORS_PORT=str(_free_port()),
    )
    database = None
    if "DATABASE_URL" in os.environ:
        config = environ.Env.db_url_config(os.environ["DATABASE_URL"])
        database = f"mwolo_stack_{run}"
        server = {
            "host": config["HOST"],
            "port": config["PORT"] or 5432,
            "user": config["USER"],
            "password": config["PASSWORD"],
            "dbname": "postgres",
            "autocommit": True,
        }
        with psycopg.connect(**server) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = re.sub(r"/[^/]*$", f"/{database}", os.environ["DATABASE_URL"])
    if "CELERY_BROKER_URL" in os.environ:
        env["CELERY_KEY_PREFIX"] = f"mwolo-stack-{run}:"
    yield env
    if database:
        with psycopg.connect(**server) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _wait_until_served(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"{url} not served after {START_TIMEOUT}s:\n{log.read_text()[-4000:]}")


def _manage(env: dict[str, str], code: str) -> str:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def _stop(process: subprocess.Popen) -> None:
    """What a developer's Ctrl-C does: SIGINT to the whole foreground process group."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail("make run did not stop on Ctrl-C within 60 s")


# One row of the demo accounts table: username, role, agency (columns 2+ spaces apart).
_ACCOUNT_ROW = re.compile(r"^  (?P<username>[a-z][\w.]*)(?: \*)?\s{2,}(?P<role>\S.*?)\s{2,}\S")


def _demo_accounts(output: str) -> dict[str, str]:
    """The accounts table ``seed_demo`` printed before the processes started: role by user."""
    # After the title line, the column names and their underlines: one line per account.
    lines = output.split("Demo accounts", 1)[1].splitlines()[3:]
    rows = [_ACCOUNT_ROW.match(line) for line in takewhile(lambda line: line[:2] == "  ", lines)]
    return {row["username"]: row["role"] for row in rows if row}


def _started_process_groups(output: str) -> dict[str, int]:
    """honcho starts each process in a group of its own and logs ``web.1 started (pid=…)``."""
    return {
        name: int(pid) for name, pid in re.findall(r"\| (\w+)\.1 started \(pid=(\d+)\)", output)
    }


def _running_in_group(pgid: int) -> list[str]:
    """The command lines of the processes of group ``pgid`` still running (Linux /proc).

    Zombies do not count: a process whose shell parent died first is reparented, and some
    containers' PID 1 reaps orphans late; it has exited all the same.
    """
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            running.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return running


def test_make_run_starts_serves_works_and_stops(stack_env: dict[str, str], tmp_path: Path):
    log = tmp_path / "make-run.log"
    base = f"http://127.0.0.1:{stack_env['PORT']}"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=stack_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_served(f"{base}/admin/login/", process, log)

        home = httpx.get(f"{base}/", timeout=10)
        assert home.status_code == 200
        assert "Mwolo" in home.text
        assert "Mwolo Energy" in httpx.get(f"{base}/admin/login/", timeout=10).text

        # The demo administrator logs in through the login form and sees demo clients.
        with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as browser:
            browser.get("/admin/login/")
            logged_in = browser.post(
                "/admin/login/?next=/admin/crm/client/",
                data={
                    "username": "admin",
                    "password": DEMO_PASSWORD,
                    "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                },
                headers={"Referer": f"{base}/admin/login/"},
            )
            assert logged_in.status_code == 200
            assert re.search(r"CL-\d{7}", logged_in.text), logged_in.text[:2000]

        # The worker takes a task from the broker and runs it against the database, while
        # the demo's invoice notices (hundreds, queued at start-up) are still being sent:
        # they have a queue of their own, which the worker serves in turn with this one.
        _manage(
            stack_env,
            "import datetime as dt\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            "from django.utils import timezone\n"
            "from mwolo.core.tasks import sessions_purge_expired_task\n"
            "s = SessionStore(); s.set_expiry(timezone.now() - dt.timedelta(days=1)); s.save()\n"
            "sessions_purge_expired_task.delay()\n",
        )
        count_expired = (
            "from django.contrib.sessions.models import Session\n"
            "from django.utils import timezone\n"
            "print(Session.objects.filter(expire_date__lt=timezone.now()).count())\n"
        )
        deadline = time.monotonic() + 60
        while _manage(stack_env, count_expired) != "0":
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(2)

        # The simulated demo meters report through the broker and the head-end.
        fresh_readings = (
            "import datetime as dt\n"
            "from django.utils import timezone\n"
            "from mwolo.metering.models import MeterReading\n"
            "since = timezone.now() - dt.timedelta(minutes=5)\n"
            "print(MeterReading.objects.filter(source='telemetry', taken_at__gte=since).count())\n"
        )
        deadline = time.monotonic() + 120
        while _manage(stack_env, fresh_readings) == "0":
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(3)

        output = log.read_text()
        assert "beat: Starting" in output
        assert "demo meters" in output
        assert base in output or f":{stack_env['PORT']}" in output
        # The accounts table lists an account for every role, under the role's French name.
        accounts = _demo_accounts(output)
        with translation.override("fr"):
            assert set(accounts.values()) == {str(role.label) for role in Role}
            assert accounts["admin"] == str(Role.ADMINISTRATOR.label)
            assert accounts["client.demo"] == str(Role.CLIENT.label)
            assert accounts["cashier.lubumbashi"] == str(Role.CASHIER.label)
    finally:
        _stop(process)

    # One Ctrl-C stopped every process by itself: honcho had nothing to kill, and the worker
    # put back what it had taken from the queue.
    output = log.read_text()
    groups = _started_process_groups(output)
    assert set(groups) >= {"web", "worker", "beat", "broker", "headend", "meters"}, groups
    assert "SIGKILL" not in output, output[-4000:]
    assert "worker: Cold shutdown" in output
    for name in groups:
        assert re.search(rf"\| {name}\.1 stopped \(rc=", output), name
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # make and honcho are gone
    left = {name: running for name, pgid in groups.items() if (running := _running_in_group(pgid))}
    assert not left
    with pytest.raises(httpx.ConnectError):
        httpx.get(base, timeout=2)
