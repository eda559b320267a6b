"""The nightly backup: a dump that restores, one per day, the last N days kept, clear
errors. On the run's database: SQLite (the online backup API) or PostgreSQL (pg_dump)."""

import datetime as dt
import io
import os
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_celery_beat.models import PeriodicTask

from mwolo.accounts.models import User
from mwolo.core.tasks import database_backup_task

DAY = dt.date(2026, 12, 20)
EXTENSION = ".dump" if connection.vendor == "postgresql" else ".sqlite3"


@pytest.fixture
def folder(settings, tmp_path: Path) -> Path:
    settings.MWOLO_BACKUP_DIR = tmp_path / "backups"
    settings.MWOLO_BACKUP_KEEP_DAYS = 14
    return settings.MWOLO_BACKUP_DIR


def backup(*arguments: str) -> str:
    out = io.StringIO()
    call_command("backup_database", *arguments, stdout=out)
    return out.getvalue()


def backups(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


def usernames_restored(dump: Path, scratch: Path) -> set[str]:
    """The user names found in ``dump`` once restored into a scratch database."""
    table = User._meta.db_table
    if connection.vendor == "sqlite":
        restored = scratch / "restored.sqlite3"
        source, target = sqlite3.connect(dump), sqlite3.connect(restored)
        source.backup(target)
        source.close()
        rows = target.execute(f"SELECT username FROM {table}").fetchall()  # noqa: S608
        target.close()
        return {username for (username,) in rows}
    config = connection.settings_dict
    name = f"{config['NAME']}_restore"
    params = {
        "host": config["HOST"] or "127.0.0.1",
        "port": config["PORT"] or 5432,
        "user": config["USER"],
        "password": config["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        environment = {**os.environ, "PGPASSWORD": config["PASSWORD"] or ""}
        subprocess.run(
            [
                "pg_restore",
                "--no-owner",
                f"--host={params['host']}",
                f"--port={params['port']}",
                f"--username={params['user']}",
                f"--dbname={name}",
                str(dump),
            ],
            env=environment,
            check=True,
            capture_output=True,
        )
        with psycopg.connect(dbname=name, **params) as restored:
            rows = restored.execute(f"SELECT username FROM {table}").fetchall()  # noqa: S608
        return {username for (username,) in rows}
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.mark.django_db(transaction=True)
def test_the_backup_restores_into_a_scratch_database_with_what_was_committed(folder, tmp_path):
    User.objects.create_user(username="sauvegarde.temoin", password="x")

    printed = backup("--as-of", DAY.isoformat())

    dump = folder / f"mwolo-2026-12-20{EXTENSION}"
    assert printed == (
        f"Backup of 2026-12-20: {dump} ({dump.stat().st_size} bytes, written); "
        "0 older backups deleted.\n"
    )
    assert backups(folder) == [dump.name]
    assert dump.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert "sauvegarde.temoin" in usernames_restored(dump, tmp_path)


@pytest.mark.django_db(transaction=True)
def test_the_same_day_twice_keeps_the_first_backup(folder):
    backup("--as-of", DAY.isoformat())
    dump = folder / f"mwolo-2026-12-20{EXTENSION}"
    first = (dump.stat().st_mtime_ns, dump.read_bytes())

    again = backup("--as-of", DAY.isoformat())

    assert "there already, kept" in again
    assert (dump.stat().st_mtime_ns, dump.read_bytes()) == first
    assert backups(folder) == [dump.name]
    assert not [path for path in folder.iterdir() if path.name.endswith(".partial")]


@pytest.mark.django_db
def test_backups_older_than_the_days_kept_are_deleted_and_nothing_else(folder, settings):
    folder.mkdir()
    for days_before in range(20):
        day = DAY - dt.timedelta(days=days_before)
        (folder / f"mwolo-{day.isoformat()}{EXTENSION}").write_bytes(b"dump")
    (folder / ".mwolo-2026-11-01.dump.partial").write_bytes(b"half")  # a crash long ago
    others = ["notes.txt", "mwolo-2026-11-01.txt", "autre-2026-11-01.dump"]
    for name in others:
        (folder / name).write_bytes(b"not ours")

    # Today's exists already: nothing is dumped, the old ones go.
    printed = backup("--as-of", DAY.isoformat())

    assert printed.endswith("there already, kept); 7 older backups deleted.\n")
    kept = [f"mwolo-{DAY - dt.timedelta(days=n):%Y-%m-%d}{EXTENSION}" for n in range(14)]
    assert backups(folder) == sorted(kept + others)
    assert not (folder / ".mwolo-2026-11-01.dump.partial").exists()


@pytest.mark.django_db
def test_without_pg_dump_on_the_path_postgresql_is_refused_clearly(folder, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))

    if connection.vendor == "postgresql":
        with pytest.raises(CommandError) as refused:
            backup("--as-of", DAY.isoformat())
        assert str(refused.value) == (
            "pg_dump is not on the PATH: install the PostgreSQL client of the server's major "
            "version or newer (Debian: apt-get install postgresql-client), then run again."
        )
        assert backups(folder) == []
        assert [path.name for path in folder.iterdir()] == [".backup.lock"]
    else:  # SQLite needs no program
        assert "written" in backup("--as-of", DAY.isoformat())


@pytest.mark.django_db
def test_a_bad_day_is_refused_before_any_work(folder):
    with pytest.raises(CommandError) as refused:
        backup("--as-of", "hier")

    assert str(refused.value).startswith("--as-of must be a day such as 2026-12-20")
    assert not folder.exists()


@pytest.mark.django_db
def test_beat_runs_the_task_every_night_at_two_in_kinshasa(folder):
    task = PeriodicTask.objects.get(name="Back up the database")
    assert (task.task, task.enabled) == ("core.database_backup", True)
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == (
        "2",
        "0",
        "Africa/Kinshasa",
    )

    report = database_backup_task.delay().get()

    assert report["written"] is True
    assert Path(report["path"]).parent == folder
    assert Path(report["path"]).name.endswith(EXTENSION)
