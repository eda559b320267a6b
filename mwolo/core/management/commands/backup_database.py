from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mwolo.core.backup import BackupError, database_backup
from mwolo.core.management.as_of import EXAMPLE_DAY, as_of_day


class Command(BaseCommand):
    help = (
        "Back the database up into MWOLO_BACKUP_DIR (pg_dump custom format, or SQLite's "
        "online backup), as the day's file, and delete the backups older than "
        "MWOLO_BACKUP_KEEP_DAYS days (beat runs it at 02:00, Kinshasa). Idempotent: a day "
        "whose backup exists is not dumped again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            help=(
                f"the day the backup is filed under, e.g. {EXAMPLE_DAY}, and from which the "
                "days kept are counted (default: today in Kinshasa); the dump is always of "
                "the database as it is now"
            ),
        )

    def handle(self, *args: Any, as_of: str | None, **options: Any) -> None:
        day, _moment = as_of_day(as_of)
        try:
            report = database_backup(day=day)
        except BackupError as error:
            raise CommandError(str(error)) from error
        done = "written" if report.written else "there already, kept"
        self.stdout.write(
            f"Backup of {day.isoformat()}: {report.path} ({report.size} bytes, {done}); "
            f"{len(report.deleted)} older backups deleted."
        )
