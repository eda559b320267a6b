"""The production deployment: settings, the files in deploy/ and the processes they start.

Real commands only: Django's checks, collectstatic and migrate run in subprocesses with
the production settings; gunicorn is started by the container's entrypoint and probed by
its health check; Mosquitto runs the stack's configuration; `docker compose config` runs
when the Compose plugin is installed. Nothing needs Docker or a network.
"""

import getpass
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
APP_SERVICES = ("migrate", "web", "worker", "beat", "headend", "headend-2")
HEADENDS = ("headend", "headend-2")

# Variables a production settings module reads but env.example leaves out, with the reason.
NOT_IN_ENV_EXAMPLE = {
    "DJANGO_DEBUG": "production.py sets DEBUG = False whatever the environment says",
    "SANDBOX_OPERATORS_PORT": "where `make run` starts the operator simulator",
}
# Settings modules that never run in production (the developer's and the test suite's).
NON_PRODUCTION_SETTINGS = {"local.py", "test.py"}
# Variables of the templates that hold a password or key: only placeholders may be committed.
SECRET_VARIABLES = {
    "env.example": {
        "DJANGO_SECRET_KEY",
        "EMAIL_HOST_PASSWORD",
        "MPESA_CONSUMER_SECRET",
        "MPESA_PASSKEY",
        "MPESA_CALLBACK_SECRET",
        "VODACOM_API_KEY",
        "VODACOM_CALLBACK_SECRET",
        "AIRTEL_CLIENT_SECRET",
        "AIRTEL_CALLBACK_KEY",
        "ORANGE_CLIENT_SECRET",
        "ORANGE_MERCHANT_KEY",
    },
    "compose.env.example": {"POSTGRES_PASSWORD", "REDIS_PASSWORD"},
}
# Services without a health check, and why.
NO_HEALTHCHECK = {
    "migrate": "one-shot: its exit code is what web, worker and beat wait for",
    "beat": "serves nothing to probe; its restart policy covers a crash",
}
# Upload directories (upload_to) whose files anyone may download through Caddy. Everything
# else under media/ must be refused by the Caddyfile and served by Django after its checks.
PUBLIC_MEDIA_DIRS: frozenset[str] = frozenset()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of a template; every variable must follow a comment line."""
    variables: dict[str, str] = {}
    previous = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", stripped)
            assert match, f"{path.name}:{number}: not a NAME=value line: {line!r}"
            name, value = match.groups()
            assert name not in variables, f"{path.name}:{number}: {name} appears twice"
            assert previous.startswith("#"), f"{path.name}:{number}: {name} has no comment"
            variables[name] = value
        previous = stripped
    return variables


def _settings_reads() -> set[str]:
    """Environment variables read by the settings modules that production imports."""
    patterns = (
        r"\benv(?:\.\w+)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
        r"\bos\.environ(?:\.get)?\s*[\[(]\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
        r"\bos\.getenv\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
    )
    names: set[str] = set()
    for module in sorted((ROOT / "config" / "settings").glob("*.py")):
        if module.name not in NON_PRODUCTION_SETTINGS:
            source = module.read_text(encoding="utf-8")
            for pattern in patterns:
                names.update(re.findall(pattern, source))
    return names


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def _base_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: nothing leaks in from the developer's shell or CI's."""
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }


def _local_paths(tmp_path: Path) -> dict[str, str]:
    """The image's paths (/app/...) moved under tmp_path."""
    return {
        "MWOLO_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_STATIC_ROOT": str(tmp_path / "staticfiles"),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
    }


def _env_example_production_env(tmp_path: Path) -> dict[str, str]:
    """deploy/env.example as an operator fills it in, on SQLite instead of PostgreSQL."""
    env = _base_env(tmp_path)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    for name, value in _read_env_file(DEPLOY / "env.example").items():
        env[name] = value.replace("change-me", secrets.token_urlsafe(50)[:50])
    env.update(_local_paths(tmp_path))
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return env


def _minimal_production_env(tmp_path: Path) -> dict[str, str]:
    """Only what production.py requires: every other setting keeps its default."""
    env = _base_env(tmp_path)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="portail.mwolo.example",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL=f"redis://:{secrets.token_urlsafe(24)}@redis:6379/0",
        CACHE_URL=f"redis://:{secrets.token_urlsafe(24)}@redis:6379/1",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        MQTT_URL=f"mqtt://mwolo-headend:{secrets.token_urlsafe(24)}@mosquitto:1883",
        **_local_paths(tmp_path),
    )
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "manage.py", *args], env)


def _runtime_stage() -> list[str]:
    instructions = _dockerfile_instructions()
    last_from = max(n for n, i in enumerate(instructions) if i.startswith("FROM "))
    return instructions[last_from:]


def _runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in _runtime_stage():
        if instruction.startswith("ENV "):
            env.update(token.split("=", 1) for token in shlex.split(instruction)[1:])
    return env


def _dockerfile_instructions() -> list[str]:
    """Instructions of deploy/Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[str] = []
    current = ""
    for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        current += " " + line.strip().removesuffix("\\")
        if not line.rstrip().endswith("\\"):
            instructions.append(current.strip())
            current = ""
    return instructions


# --- Production settings ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make_env",
    [_minimal_production_env, _env_example_production_env],
    ids=["minimal", "env.example"],
)
def test_deploy_check_is_clean_with_production_values(tmp_path, make_env):
    result = _manage(make_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    "variable",
    [
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "CACHE_URL",
        "FIELD_ENCRYPTION_KEYS",
        "MQTT_URL",
    ],
)
def test_production_settings_refuse_to_start_without_a_required_variable(tmp_path, variable):
    env = _minimal_production_env(tmp_path)
    del env[variable]

    result = _manage(env, "check")

    assert result.returncode != 0
    assert f"Set the {variable} environment variable" in result.stderr, result.stderr


def test_production_offers_no_operator_that_would_fall_back_to_the_simulator(tmp_path):
    env = _minimal_production_env(tmp_path)
    env.update(
        MOBILE_MONEY_OPERATORS="airtel",
        AIRTEL_BASE_URL="https://openapi.airtel.africa",
        AIRTEL_CLIENT_ID="mwolo",
        AIRTEL_CLIENT_SECRET=secrets.token_urlsafe(24),
    )

    refused = _manage(env, "check")
    env["AIRTEL_CALLBACK_KEY"] = secrets.token_urlsafe(24)
    accepted = _manage(env, "check")

    assert refused.returncode != 0
    assert "Set the AIRTEL_CALLBACK_KEY environment variable(s)" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr


def test_production_settings_refuse_an_empty_secret_key(tmp_path):
    env = _minimal_production_env(tmp_path)
    env["DJANGO_SECRET_KEY"] = ""

    result = _manage(env, "check")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr, result.stderr


# --- The image ---------------------------------------------------------------------------


def test_dockerfile_builds_in_stages_and_runs_gunicorn_as_a_user():
    instructions = _dockerfile_instructions()
    stages = [i for i in instructions if i.startswith("FROM ")]
    args = {
        i.split("=", 1)[0].removeprefix("ARG "): i.split("=", 1)[1]
        for i in instructions
        if i.startswith("ARG ") and "=" in i
    }

    assert len(stages) >= 2, "a build stage and a runtime stage"
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert any("uv sync --frozen --no-dev" in i for i in instructions if i.startswith("RUN "))
    assert any("collectstatic" in i for i in instructions if i.startswith("RUN "))
    runtime = _runtime_stage()
    assert _runtime_env()["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    users = [i.split()[1] for i in runtime if i.startswith("USER ")]
    assert users, "the runtime stage must switch to its own user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(i.startswith("HEALTHCHECK ") for i in runtime)
    command = next(i for i in runtime if i.startswith("CMD "))
    assert "gunicorn" in command


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory) -> Path:
    """The Dockerfile's collectstatic step, run with the build-only values it gives itself."""
    tmp_path = tmp_path_factory.mktemp("build")
    step = next(i for i in _dockerfile_instructions() if "collectstatic" in i)
    build_env: dict[str, str] = {}
    for token in shlex.split(step.removeprefix("RUN ")):
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", token)
        if not match:
            break
        build_env[match[1]] = match[2]
    assert build_env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    env = {**_base_env(tmp_path), **build_env, **_local_paths(tmp_path)}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'build.sqlite3'}"

    result = _manage(env, "collectstatic", "--noinput", "--verbosity", "0")

    assert result.returncode == 0, result.stdout + result.stderr
    static_root = Path(env["DJANGO_STATIC_ROOT"])
    assert (static_root / "staticfiles.json").is_file(), "the manifest the pages are built from"
    assert not (tmp_path / "build.sqlite3").exists(), "collectstatic must not need a database"
    return static_root


def test_dockerfile_collectstatic_step_works_with_its_build_only_values(collected_static):
    assert any(collected_static.glob("admin/css/base.*.css"))


# --- Release step, entrypoint, gunicorn and the health check -------------------------------


def test_release_refuses_placeholder_values_and_changes_nothing(tmp_path):
    env = _env_example_production_env(tmp_path)
    env["EMAIL_HOST_PASSWORD"] = "change-me-smtp-password"

    result = _run([str(DEPLOY / "release.sh"), str(tmp_path / "published")], env)

    assert result.returncode != 0
    assert "EMAIL_HOST_PASSWORD" in result.stderr, result.stderr
    assert not (tmp_path / "db.sqlite3").exists()
    assert not (tmp_path / "published").exists()


def test_wait_for_db_gives_up_with_a_clear_message(tmp_path):
    env = _minimal_production_env(tmp_path)
    # Nothing listens on a port just freed: every attempt is refused at once.
    env["DATABASE_URL"] = f"postgres://mwolo:secret@127.0.0.1:{_free_port()}/mwolo"

    result = _run([sys.executable, str(DEPLOY / "wait_for_db.py"), "--timeout", "3"], env)

    assert result.returncode == 1
    assert "database not reachable after 3s" in result.stderr, result.stderr


@pytest.fixture
def served(tmp_path, collected_static) -> Iterator[tuple[dict[str, str], int, subprocess.Popen]]:
    """The web container's life on this machine: release step, then entrypoint + gunicorn."""
    env = _env_example_production_env(tmp_path)
    env["DJANGO_STATIC_ROOT"] = str(collected_static)
    published = tmp_path / "published"
    published.mkdir()

    release = _run([str(DEPLOY / "release.sh"), str(published)], env, timeout=300)

    assert release.returncode == 0, release.stdout + release.stderr
    assert (published / "staticfiles.json").is_file()
    port = _free_port()
    log = (tmp_path / "gunicorn.log").open("w")
    gunicorn = subprocess.Popen(
        [
            # Run as Docker runs it: executable bit and shebang, no shell in front.
            str(DEPLOY / "entrypoint.sh"),
            "gunicorn",
            "--config",
            str(DEPLOY / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--control-socket",
            str(tmp_path / "gunicorn.ctl"),
            "config.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield env, port, gunicorn
    finally:
        if gunicorn.poll() is None:
            gunicorn.send_signal(signal.SIGTERM)
            try:
                gunicorn.wait(timeout=40)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
                gunicorn.wait()
        log.close()


def _healthcheck(env: dict[str, str], port: int) -> subprocess.CompletedProcess:
    return _run([sys.executable, str(DEPLOY / "healthcheck.py"), "--port", str(port)], env, 20)


def test_release_then_gunicorn_serves_and_the_health_check_passes(served, tmp_path):
    env, port, gunicorn = served
    # Generous: the first request imports and renders everything, on a busy CI machine.
    deadline = time.monotonic() + 120
    while (result := _healthcheck(env, port)).returncode != 0:
        log = (tmp_path / "gunicorn.log").read_text()
        assert gunicorn.poll() is None, f"gunicorn exited:\n{log[-4000:]}"
        assert time.monotonic() < deadline, f"{result.stderr}\n{log[-4000:]}"
        time.sleep(0.5)

    # The entrypoint exec'd: the process Docker signals is gunicorn, not a shell.
    cmdline = Path(f"/proc/{gunicorn.pid}/cmdline").read_bytes().split(b"\0")
    assert any(part.endswith(b"gunicorn") for part in cmdline), cmdline
    # A request for a host Django does not serve is an unhealthy answer, not a pass.
    wrong_host = _healthcheck({**env, "DJANGO_ALLOWED_HOSTS": "other.example"}, port)
    assert wrong_host.returncode == 1
    assert "HTTP 400" in wrong_host.stderr
    # docker stop: SIGTERM, and gunicorn finishes cleanly within the grace period.
    gunicorn.send_signal(signal.SIGTERM)
    assert gunicorn.wait(timeout=40) == 0


def test_health_check_fails_when_nothing_listens(tmp_path):
    result = _healthcheck(_minimal_production_env(tmp_path), _free_port())

    assert result.returncode == 1
    assert "no answer" in result.stderr


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    scripts = sorted(str(path) for path in DEPLOY.glob("*.sh"))

    result = _run(["shellcheck", *scripts], _base_env(ROOT))

    assert result.returncode == 0, result.stdout + result.stderr


# --- compose.yaml and the env templates ----------------------------------------------------


def test_compose_file_defines_the_whole_stack():
    compose = _compose()

    assert set(compose["services"]) == {
        *APP_SERVICES,
        "postgres",
        "redis",
        "mosquitto",
        "caddy",
    }
    images = {name: service.get("image", "") for name, service in compose["services"].items()}
    assert images["postgres"].startswith("postgres:15")
    assert images["redis"].startswith("redis:7")
    assert images["mosquitto"].startswith("eclipse-mosquitto:2")
    assert images["caddy"].startswith("caddy:2")
    assert {"postgres_data", "media", "static", "mosquitto_data", "caddy_data"} <= set(
        compose["volumes"]
    )


def test_web_worker_and_beat_start_only_after_a_successful_release():
    services = _compose()["services"]

    assert services["migrate"]["command"][0] == "/app/deploy/release.sh"
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat", *HEADENDS):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name


def test_every_long_running_service_has_a_health_check():
    services = _compose()["services"]

    # web keeps the image's HEALTHCHECK; the worker must replace it (no HTTP port there).
    assert "healthcheck" not in services["web"]
    disabled = {name for name, s in services.items() if s.get("healthcheck", {}).get("disable")}
    assert disabled == set(NO_HEALTHCHECK)
    for name, service in services.items():
        if name not in disabled and name != "web":
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name


def _option(command: list[str], name: str) -> str | None:
    values = [part.split("=", 1)[1] for part in command if part.startswith(f"{name}=")]
    assert len(values) <= 1, command
    return values[0] if values else None


def test_the_head_ends_share_the_meters_messages_and_one_takes_the_statuses():
    services = _compose()["services"]
    commands = {name: services[name]["command"] for name in HEADENDS}

    for name, command in commands.items():
        assert command[:3] == ["python", "manage.py", "headend"], name
        assert _option(command, "--shared-group") == "headend", name
        assert services[name]["healthcheck"]["test"][0] == "CMD-SHELL", name
        assert _option(command, "--heartbeat") in services[name]["healthcheck"]["test"][1]
        assert services[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    # Two processes with one client id would push each other off the broker.
    client_ids = [_option(command, "--client-id") for command in commands.values()]
    assert None not in client_ids
    assert len(set(client_ids)) == len(client_ids)
    # Statuses in the order a meter sent them: exactly one process takes them.
    takers = [name for name, command in commands.items() if "--no-statuses" not in command]
    assert takers == ["headend"]


def test_only_caddy_is_reachable_from_outside():
    services = _compose()["services"]

    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"caddy"}
    assert _compose()["networks"]["backend"]["internal"] is True
    for name in ("postgres", "redis", "mosquitto", "migrate", "beat", *HEADENDS):
        assert services[name]["networks"] == ["backend"], name


def test_app_services_read_mwolo_env_and_name_only_variables_of_env_example():
    services = _compose()["services"]
    documented = set(_read_env_file(DEPLOY / "env.example"))

    for name in APP_SERVICES:
        service = services[name]
        assert service["env_file"] == "mwolo.env", name
        assert set(service.get("environment") or {}) <= documented, name
    for name, service in services.items():
        if name not in APP_SERVICES:
            assert "env_file" not in service, f"{name} must get only what it needs"


def test_compose_interpolates_exactly_the_variables_of_compose_env_example():
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    without_escapes = text.replace("$$", "")
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", without_escapes))

    # A bare $NAME would be filled in by Compose, not by the container's shell.
    assert not re.search(r"\$[A-Za-z_]", without_escapes)
    assert interpolated == set(_read_env_file(DEPLOY / "compose.env.example"))


def test_env_example_lists_exactly_the_variables_the_settings_read():
    documented = set(_read_env_file(DEPLOY / "env.example"))
    read = _settings_reads() - set(NOT_IN_ENV_EXAMPLE)

    assert read - documented == set(), "read by the settings, missing from env.example"
    assert documented - read == set(), "in env.example, read by no production setting"
    assert set(NOT_IN_ENV_EXAMPLE) <= _settings_reads(), "stale entry in NOT_IN_ENV_EXAMPLE"


def test_env_templates_hold_placeholders_that_agree_with_each_other():
    app = _read_env_file(DEPLOY / "env.example")
    stack = _read_env_file(DEPLOY / "compose.env.example")
    for template, names in SECRET_VARIABLES.items():
        values = app if template == "env.example" else stack
        for name in names:
            assert "change-me" in values[name], f"{template}: {name} must be a placeholder"

    database = urlsplit(app["DATABASE_URL"])
    assert database.hostname == "postgres"
    assert database.username == stack["POSTGRES_USER"]
    assert database.password == stack["POSTGRES_PASSWORD"]
    assert database.path == f"/{stack['POSTGRES_DB']}"
    for name in ("CELERY_BROKER_URL", "CACHE_URL"):
        redis = urlsplit(app[name])
        assert redis.hostname == "redis", name
        assert redis.password == stack["REDIS_PASSWORD"], name


def test_image_paths_in_env_example_match_the_dockerfile():
    app = _read_env_file(DEPLOY / "env.example")
    runtime_env = _runtime_env()

    for name in ("MWOLO_VAR_DIR", "DJANGO_STATIC_ROOT", "DJANGO_MEDIA_ROOT"):
        assert runtime_env[name] == app[name], name


def test_mosquitto_files_are_mounted_where_the_config_reads_them():
    config = (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
    read = set(re.findall(r"^(?:password_file|acl_file) (\S+)", config, re.MULTILINE))
    mounts = {
        volume["target"]: volume["source"]
        for volume in _compose()["services"]["mosquitto"]["volumes"]
        if isinstance(volume, dict)
    }

    assert read <= set(mounts), read - set(mounts)
    for target in read:
        source = mounts[target].removeprefix("./")
        assert source == "mosquitto.passwd" or (DEPLOY / source).is_file(), source


def test_every_upload_directory_is_either_public_or_refused_by_caddy():
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    refused = set(re.findall(r"handle /media/([\w-]+)/\*\s*\{\s*respond 404", caddyfile))
    upload_dirs: set[str] = set()
    for models in (ROOT / "mwolo").rglob("models.py"):
        source = models.read_text(encoding="utf-8")
        assert not re.search(r"upload_to\s*=\s*[a-z_]", source), (
            f"{models}: a callable upload_to; classify its directory here by hand"
        )
        upload_dirs.update(
            value.strip("/").split("/")[0]
            for value in re.findall(r"upload_to\s*=\s*[\"']([^\"']+)[\"']", source)
        )

    unclassified = upload_dirs - refused - PUBLIC_MEDIA_DIRS
    assert not unclassified, (
        f"media/{sorted(unclassified)} would be downloadable by anyone through Caddy: add "
        "`handle /media/<dir>/* { respond 404 }` to deploy/Caddyfile, or list the directory "
        "in PUBLIC_MEDIA_DIRS if its files are public"
    )


def test_docker_compose_accepts_the_stack(tmp_path):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker client is not on PATH")
    plugin = _run([docker, "compose", "version"], _base_env(tmp_path), 60)
    if plugin.returncode != 0:
        reason = (plugin.stderr.strip() or plugin.stdout.strip()).splitlines()[0]
        pytest.skip(f"the Docker Compose v2 plugin is not installed ({reason})")
    # A copy next to filled-in env files, as an operator's deploy/ directory looks.
    workdir = tmp_path / "deploy"
    shutil.copytree(DEPLOY, workdir, ignore=shutil.ignore_patterns("*.env", ".env"))
    shutil.copy(DEPLOY / "env.example", workdir / "mwolo.env")
    shutil.copy(DEPLOY / "compose.env.example", workdir / ".env")
    (workdir / "mosquitto.passwd").touch()

    result = _run(
        [docker, "compose", "-f", str(workdir / "compose.yaml"), "config", "-q"],
        _base_env(tmp_path),
        60,
    )

    assert result.returncode == 0, result.stdout + result.stderr


# --- Mosquitto with deploy/mosquitto.conf --------------------------------------------------

MQTT_TOOLS = ("mosquitto", "mosquitto_passwd", "mosquitto_pub", "mosquitto_sub")
HEADEND = ("mwolo-headend", secrets.token_urlsafe(16))
METERS = {serial: secrets.token_urlsafe(16) for serial in ("MTR0001", "MTR0002")}


def _mqtt_tool(name: str) -> str:
    # mosquitto itself lives in /usr/sbin, outside a normal user's PATH.
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip(f"{name} is not installed (Debian packages mosquitto, mosquitto-clients)")
    return found


class Broker:
    """deploy/mosquitto.conf on free loopback ports, with files under a temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.health_port = _free_port()
        self.process: subprocess.Popen | None = None
        tools = {name: _mqtt_tool(name) for name in MQTT_TOOLS}
        self.tools = tools
        passwd = directory / "passwd"
        for username, password in [HEADEND, *METERS.items()]:
            create = ["-c"] if not passwd.exists() else []
            subprocess.run(
                [tools["mosquitto_passwd"], *create, "-b", str(passwd), username, password],
                check=True,
                capture_output=True,
            )
        shutil.copy(DEPLOY / "mosquitto.acl", directory / "acl")
        shutil.copy(DEPLOY / "mosquitto-health.acl", directory / "acl-health")
        (directory / "data").mkdir()
        config = (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
        config = re.sub(r"^listener 1883$", f"listener {self.port} 127.0.0.1", config, flags=re.M)
        config = config.replace("listener 1880 127.0.0.1", f"listener {self.health_port} 127.0.0.1")
        config = config.replace("/mosquitto/config/", f"{directory}/")
        config = config.replace("/mosquitto/data/", f"{directory / 'data'}/")
        assert str(self.port) in config
        assert str(self.health_port) in config
        # Started as root, Mosquitto would switch to a "mosquitto" user that may not exist.
        self.config = directory / "mosquitto.conf"
        self.config.write_text(f"{config}\nuser {getpass.getuser()}\n", encoding="utf-8")

    def start(self) -> None:
        self.log = (self.directory / "mosquitto.log").open("a")
        self.process = subprocess.Popen(
            [self.tools["mosquitto"], "-c", str(self.config)], stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 10
        while True:
            assert self.process.poll() is None, (self.directory / "mosquitto.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "Mosquitto did not listen within 10 s"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()

    def credentials(self, username: str | None) -> list[str]:
        if username is None:
            return []
        password = HEADEND[1] if username == HEADEND[0] else METERS[username]
        return ["-u", username, "-P", password]

    def publish(self, username: str | None, topic: str, message: str, *extra: str):
        return subprocess.run(
            [self.tools["mosquitto_pub"], "-h", "127.0.0.1", "-p", str(self.port), "-q", "1",
             *self.credentials(username), "-t", topic, "-m", message, *extra],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip

    def subscribe(self, username: str | None, topic: str, wait: int = 5, port: int | None = None):
        """A mosquitto_sub that exits after one message, or with code 27 after `wait` s."""
        return subprocess.Popen(
            [self.tools["mosquitto_sub"], "-h", "127.0.0.1", "-p", str(port or self.port),
             "-q", "1", *self.credentials(username), "-t", topic, "-C", "1", "-W", str(wait), "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


@pytest.fixture
def broker(tmp_path) -> Iterator[Broker]:
    broker = Broker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def _publish_until_received(broker, subscriber, messages) -> str:
    """Publish (username, topic, message) rounds until the subscriber has its message.

    Publishing again and again removes the race with the subscription being set up; the
    subscriber keeps the first message it receives, so anything it must never see would
    show in its place.
    """
    deadline = time.monotonic() + 10
    while subscriber.poll() is None and time.monotonic() < deadline:
        for username, topic, message in messages:
            assert broker.publish(username, topic, message).returncode == 0
        time.sleep(0.2)
    output, errors = subscriber.communicate(timeout=10)
    assert subscriber.returncode == 0, errors
    return output.strip()


def test_mosquitto_health_listener_answers_anonymous_uptime_reads(broker):
    health = broker.subscribe(None, "$SYS/broker/uptime", port=broker.health_port)

    output, errors = health.communicate(timeout=15)

    assert health.returncode == 0, errors
    assert output.startswith("$SYS/broker/uptime ")


def test_mosquitto_refuses_anonymous_clients_and_wrong_passwords(broker):
    anonymous = broker.publish(None, "mwolo/meters/MTR0001/telemetry", "{}")
    wrong = broker.publish("MTR0001", "mwolo/meters/MTR0001/telemetry", "{}", "-P", "wrong")

    assert anonymous.returncode != 0
    assert "not authori" in anonymous.stderr
    assert wrong.returncode != 0


def test_mosquitto_lets_a_meter_publish_on_its_own_topics_only(broker):
    headend = broker.subscribe(HEADEND[0], "mwolo/meters/+/telemetry")

    received = _publish_until_received(
        broker,
        headend,
        [
            ("MTR0001", "mwolo/meters/MTR0002/telemetry", "forged"),
            ("MTR0001", "mwolo/meters/MTR0001/telemetry", "genuine"),
        ],
    )

    assert received == "mwolo/meters/MTR0001/telemetry genuine"


def test_mosquitto_lets_the_head_end_account_share_the_meters_messages(broker):
    # The subscription of a head-end in the group (deploy/compose.yaml): the ACL must let
    # the head-end's account take it, and the broker must deliver through it.
    headend = broker.subscribe(HEADEND[0], "$share/headend/mwolo/meters/+/telemetry")

    received = _publish_until_received(
        broker, headend, [("MTR0001", "mwolo/meters/MTR0001/telemetry", "shared")]
    )

    assert received == "mwolo/meters/MTR0001/telemetry shared"


def test_mosquitto_delivers_a_command_to_its_meter_only(broker):
    intruder = broker.subscribe("MTR0001", "mwolo/meters/MTR0002/cmd", wait=4)
    addressee = broker.subscribe("MTR0002", "mwolo/meters/MTR0002/cmd")

    received = _publish_until_received(
        broker, addressee, [(HEADEND[0], "mwolo/meters/MTR0002/cmd", "disconnect")]
    )
    intercepted, _ = intruder.communicate(timeout=15)

    assert received == "mwolo/meters/MTR0002/cmd disconnect"
    assert intruder.returncode == 27, "timed out without a message"
    assert intercepted == ""


def test_mosquitto_keeps_retained_meter_status_across_a_restart(broker):
    status = '{"online": true, "relay": "on"}'
    published = broker.publish("MTR0001", "mwolo/meters/MTR0001/status", status, "-r")
    assert published.returncode == 0, published.stderr

    broker.stop()
    broker.start()
    headend = broker.subscribe(HEADEND[0], "mwolo/meters/+/status")
    output, errors = headend.communicate(timeout=15)

    assert headend.returncode == 0, errors
    assert output.strip() == f"mwolo/meters/MTR0001/status {status}"


def test_a_head_end_taken_out_of_the_group_stops_getting_a_share_once_its_session_is_dropped(
    broker,
):
    """docs/operations.md, "Head-end processes": the broker keeps giving a stopped member of
    the group its share; a clean connection with its client id (on the loopback health
    listener, from inside the container) ends that."""
    shared = "$share/headend/mwolo/meters/+/telemetry"

    def member(client_id: str, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [broker.tools["mosquitto_sub"], "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
             *broker.credentials(HEADEND[0]), "-i", client_id, "-c", "-t", shared, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    staying = member("mwolo-headend", "-W", "8")
    leaving = member("mwolo-headend-2", "-C", "1", "-W", "8")
    # Both members subscribed: the leaving one gets a message, then disconnects.
    _publish_until_received(broker, leaving, [("MTR0001", "mwolo/meters/MTR0001/telemetry", "0")])
    forget = subprocess.run(
        [broker.tools["mosquitto_sub"], "-h", "127.0.0.1", "-p", str(broker.health_port),
         "-i", "mwolo-headend-2", "-t", "$SYS/broker/uptime", "-C", "1", "-W", "5"],
        capture_output=True, text=True, timeout=15, check=False,
    )  # fmt: skip
    assert forget.returncode == 0, forget.stderr

    for number in range(1, 7):
        published = broker.publish("MTR0001", "mwolo/meters/MTR0001/telemetry", str(number))
        assert published.returncode == 0, published.stderr
    output, _ = staying.communicate(timeout=15)

    received = [line.split()[-1] for line in output.splitlines()]
    assert received[-6:] == ["1", "2", "3", "4", "5", "6"]
