from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mwolo.core.exceptions import ApplicationError
from mwolo.metering.services import readings_import, readings_table_read


class Command(BaseCommand):
    help = (
        "Import meter readings from CSV (UTF-8) or Excel (.xlsx) with the columns serial, "
        "taken_at, energy_kwh. A bad row imports nothing and every bad row is listed, unless "
        "--only-valid-rows. Times without an offset are the meter's agency's local time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--only-valid-rows", action="store_true")

    def handle(self, *args: Any, file: Path, only_valid_rows: bool, **options: Any) -> None:
        try:
            with file.open("rb") as source:
                rows = readings_table_read(file=source, filename=file.name)
            report = readings_import(rows=rows, actor=None, only_valid_rows=only_valid_rows)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}") from error
        except ApplicationError as error:
            raise CommandError(
                "\n".join([error.message, *error.extra.get("errors", [])])
            ) from error
        for problem in report.errors:
            self.stderr.write(f"skipped {problem}")
        self.stdout.write(
            f"{report.imported} readings imported, {report.flagged} flagged for review."
        )
