"""The nightly backup of the database: one consistent dump a day, the last N days kept.

``database_backup`` writes ``mwolo-<day>.dump`` (PostgreSQL: ``pg_dump`` custom format,
restored with ``pg_restore``) or ``mwolo-<day>.sqlite3`` (SQLite: the online backup API,
itself a database) into ``settings.MWOLO_BACKUP_DIR``, then deletes the backups of days
more than ``settings.MWOLO_BACKUP_KEEP_DAYS`` before. Beat runs it at 02:00 (Kinshasa) as
the task ``core.database_backup``; ``manage.py backup_database [--as-of DAY]`` runs it by
hand.

- Consistent: ``pg_dump`` reads one snapshot; SQLite's backup copies the file under a read
  lock, while the platform keeps running (in WAL mode, writers go on meanwhile).
- Never half a file: the dump is written under a temporary name and renamed when complete.
- Idempotent for a day: when that day's backup exists, nothing is written again (only the
  old ones are pruned). Two runs at once: the second is refused (a lock in the folder).
- Only files named as above are ever deleted: the folder may hold other things.
- Dumps hold every client's personal data: a folder made here is private (0700), each
  file 0600. Copy them off the server (docs/operations.md).
"""

import datetime as dt
import fcntl
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections

from . import clock

PREFIX = "mwolo-"
EXTENSIONS = {"postgresql": ".dump", "sqlite": ".sqlite3"}
# mwolo-2026-12-20.dump, and the temporary name of one being written.
_NAME = re.compile(r"\.?mwolo-(\d{4}-\d{2}-\d{2})\.(dump|sqlite3)(\.partial)?")
PG_DUMP_TIMEOUT = 6 * 3600  # seconds: a dump still running at 08:00 has a problem


class BackupError(Exception):
    """The backup could not be made; the message says why and what to do."""


@dataclass
class BackupReport:
    day: dt.date
    path: Path
    size: int  # bytes
    written: bool  # False: that day's backup was there already
    deleted: list[Path] = field(default_factory=list)


def _file_name(day: dt.date, vendor: str) -> str:
    return f"{PREFIX}{day.isoformat()}{EXTENSIONS[vendor]}"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / ".backup.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"Another backup is being written in {folder}; try again once it is done."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pg_dump(settings_dict: dict, target: Path) -> None:
    program = shutil.which("pg_dump")
    if program is None:
        raise BackupError(
            "pg_dump is not on the PATH: install the PostgreSQL client of the server's major "
            "version or newer (Debian: apt-get install postgresql-client), then run again."
        )
    command = [program, "--format=custom", "--no-password", f"--file={target}"]
    if settings_dict.get("HOST"):
        command.append(f"--host={settings_dict['HOST']}")
    if settings_dict.get("PORT"):
        command.append(f"--port={settings_dict['PORT']}")
    if settings_dict.get("USER"):
        command.append(f"--username={settings_dict['USER']}")
    command.append(str(settings_dict["NAME"]))
    environment = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        # In the environment, not on the command line that every user of the host can read.
        environment["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    sslmode = (settings_dict.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        environment["PGSSLMODE"] = str(sslmode)
    try:
        finished = subprocess.run(  # noqa: S603 - our own command line, no shell
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=PG_DUMP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackupError(f"pg_dump did not finish within {PG_DUMP_TIMEOUT} s.") from None
    if finished.returncode != 0:
        raise BackupError(
            f"pg_dump failed (exit {finished.returncode}): {finished.stderr.strip()[-2000:]}"
        )


def _sqlite_backup(settings_dict: dict, target: Path) -> None:
    source_path = Path(str(settings_dict["NAME"]))
    if not source_path.is_file():
        raise BackupError(f"The SQLite database {source_path} does not exist.")
    source = sqlite3.connect(source_path)
    try:
        destination = sqlite3.connect(target)
        try:
            # All pages in one step: one consistent snapshot, other processes keep writing.
            source.backup(destination)
        finally:
            destination.close()
    except sqlite3.Error as error:
        raise BackupError(f"The SQLite backup failed: {error}") from error
    finally:
        source.close()


def backups_prune(*, folder: Path, day: dt.date, keep_days: int) -> list[Path]:
    """Delete the backups (and leftovers of interrupted ones) of the days more than
    ``keep_days`` before ``day``; returns what was deleted. Other files are left alone."""
    oldest_kept = day - dt.timedelta(days=keep_days - 1)
    deleted = []
    for path in sorted(folder.iterdir()):
        match = _NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        if dt.date.fromisoformat(match.group(1)) < oldest_kept:
            path.unlink()
            deleted.append(path)
    return deleted


def database_backup(
    *,
    day: dt.date | None = None,
    folder: Path | None = None,
    keep_days: int | None = None,
    using: str = "default",
) -> BackupReport:
    """Back the database up as ``day``'s backup (default: today in Kinshasa), unless that
    day's backup exists already, and delete those older than ``keep_days`` days.

    ``folder`` and ``keep_days`` default to ``settings.MWOLO_BACKUP_DIR`` and
    ``settings.MWOLO_BACKUP_KEEP_DAYS``. Raises ``BackupError`` with what to do (pg_dump
    missing or failing, another backup running, an unknown database) and then leaves no
    partial file behind.
    """
    day = day or clock.today("Africa/Kinshasa")
    folder = Path(folder or settings.MWOLO_BACKUP_DIR)
    keep_days = settings.MWOLO_BACKUP_KEEP_DAYS if keep_days is None else keep_days
    if keep_days < 1:
        raise BackupError(f"Keep at least one day of backups, not {keep_days}.")
    connection = connections[using]
    vendor = connection.vendor
    if vendor not in EXTENSIONS:
        raise BackupError(f"No backup for a {vendor} database: PostgreSQL or SQLite only.")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # private when we create it
    path = folder / _file_name(day, vendor)
    with _locked(folder):
        written = not path.exists()
        if written:
            partial = folder / f".{path.name}.partial"
            partial.unlink(missing_ok=True)
            partial.touch(mode=0o600)
            try:
                if vendor == "postgresql":
                    _pg_dump(connection.settings_dict, partial)
                else:
                    _sqlite_backup(connection.settings_dict, partial)
                partial.chmod(0o600)
                partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)
        deleted = backups_prune(folder=folder, day=day, keep_days=keep_days)
    return BackupReport(
        day=day, path=path, size=path.stat().st_size, written=written, deleted=deleted
    )
