from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mwolo.core.exceptions import ApplicationError
from mwolo.metering.services import readings_import


class Command(BaseCommand):
    help = (
        "Import meter readings from CSV (serial,taken_at,energy_kwh). A bad row imports "
        "nothing and every bad row is listed, unless --only-valid-rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv_file", type=Path)
        parser.add_argument("--only-valid-rows", action="store_true")

    def handle(self, *args: Any, csv_file: Path, only_valid_rows: bool, **options: Any) -> None:
        try:
            with csv_file.open(encoding="utf-8-sig", newline="") as source:
                report = readings_import(source=source, actor=None, only_valid_rows=only_valid_rows)
        except OSError as error:
            raise CommandError(f"Cannot read {csv_file}: {error.strerror}") from error
        except ApplicationError as error:
            raise CommandError(
                "\n".join([error.message, *error.extra.get("errors", [])])
            ) from error
        for problem in report.errors:
            self.stderr.write(f"skipped {problem}")
        self.stdout.write(
            f"{report.imported} readings imported, {report.flagged} flagged for review."
        )
