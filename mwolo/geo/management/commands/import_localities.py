import io
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from mwolo.core.exceptions import ApplicationError
from mwolo.core.textfiles import utf8_text
from mwolo.geo.services import BUNDLED_LOCALITIES, localities_import


class Command(BaseCommand):
    help = (
        "Import territories, cities and communes from a CSV file "
        "(province_code,territory,territory_kind,commune,commune_kind). "
        "Without a file, imports the localities shipped with the platform."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv_file", nargs="?", type=Path, default=BUNDLED_LOCALITIES)
        parser.add_argument(
            "--only-valid-rows",
            action="store_true",
            help="Import the good rows even when some rows are bad (bad rows are listed).",
        )

    def handle(self, *args: Any, csv_file: Path, only_valid_rows: bool, **options: Any) -> None:
        try:
            # Decoded whole first: a file that is not UTF-8 is refused with its line, before
            # any row is read (the file is small).
            source = io.StringIO(utf8_text(csv_file.read_bytes()), newline="")
            report = localities_import(source=source, only_valid_rows=only_valid_rows)
        except OSError as error:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": csv_file, "error": error.strerror}
            ) from error
        except ApplicationError as error:
            raise CommandError(
                "\n".join([error.message, *error.extra.get("errors", [])])
            ) from error
        for problem in report.errors:
            self.stderr.write(_("skipped %s") % problem)
        self.stdout.write(
            _(
                "%(territories)d territories/cities and %(communes)d communes created, "
                "%(skipped)d already present."
            )
            % {
                "territories": report.territories_created,
                "communes": report.communes_created,
                "skipped": report.rows_skipped,
            }
        )
