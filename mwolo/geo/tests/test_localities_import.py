"""The CSV import of territories and communes: all good rows, or nothing and every bad line."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mwolo.core.exceptions import ApplicationError
from mwolo.geo.models import Commune, Province, Territory
from mwolo.geo.services import localities_import

pytestmark = pytest.mark.django_db

HEADER = "province_code,territory,territory_kind,commune,commune_kind\n"


def test_the_26_provinces_ship_with_their_time_zones():
    assert Province.objects.count() == 26
    assert Province.objects.get(code="CD-KN").time_zone == "Africa/Kinshasa"
    assert Province.objects.get(code="CD-HK").time_zone == "Africa/Lubumbashi"
    assert Province.objects.get(name="Équateur").capital == "Mbandaka"


def test_kinshasa_has_its_24_communes():
    assert Commune.objects.filter(territory__name="Kinshasa").count() == 24


def test_import_creates_new_localities_and_skips_known_ones():
    source = io.StringIO(
        HEADER
        + "CD-KL,Kikwit,city,Lukolela,commune\n"
        + "CD-KL,Kikwit,city,Nzinda,commune\n"
        + "CD-KN,Kinshasa,city,Gombe,commune\n"
        + "CD-KL,Bulungu,territory,,\n"
    )
    report = localities_import(source=source)

    assert report.territories_created == 2
    assert report.communes_created == 2
    assert report.rows_skipped == 1
    assert Territory.objects.get(name="Bulungu").kind == Territory.Kind.TERRITORY
    assert set(Commune.objects.filter(territory__name="Kikwit").values_list("name", flat=True)) == {
        "Lukolela",
        "Nzinda",
    }


def test_a_bad_file_reports_every_bad_line_and_imports_nothing():
    before = (Territory.objects.count(), Commune.objects.count())
    source = io.StringIO(
        HEADER
        + "CD-KL,Kikwit,city,Lukolela,commune\n"
        + "CD-XX,Nowhere,city,Centre,commune\n"
        + "CD-KL,Idiofa,village,,\n"
        + "CD-KL,Kikwit,territory,Nzinda,commune\n"
    )
    with pytest.raises(ApplicationError) as excinfo:
        localities_import(source=source)

    errors = excinfo.value.extra["errors"]
    assert [error.split(":")[0] for error in errors] == ["ligne 3 ", "ligne 4 ", "ligne 5 "]
    assert "code de province inconnu « CD-XX »" in errors[0]
    assert "territory_kind doit valoir" in errors[1]
    assert "deux types différents" in errors[2]
    assert (Territory.objects.count(), Commune.objects.count()) == before


def test_only_valid_rows_imports_the_good_ones_and_lists_the_bad():
    source = io.StringIO(HEADER + "CD-KL,Kikwit,city,Lukolela,commune\nCD-XX,Nowhere,city,,\n")
    report = localities_import(source=source, only_valid_rows=True)

    assert report.communes_created == 1
    assert len(report.errors) == 1
    assert not Territory.objects.filter(name="Nowhere").exists()


def test_a_file_without_the_expected_columns_is_refused():
    with pytest.raises(ApplicationError, match="Il manque au fichier les colonnes"):
        localities_import(source=io.StringIO("province,name\nCD-KN,Gombe\n"))


def test_the_command_exits_non_zero_with_the_bad_lines(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "CD-XX,Nowhere,city,,\n", encoding="utf-8")

    with pytest.raises(CommandError, match="ligne 2 : code de province inconnu"):
        call_command("import_localities", str(bad), stdout=io.StringIO())
    with pytest.raises(CommandError, match="Impossible de lire"):
        call_command("import_localities", str(tmp_path / "missing.csv"), stdout=io.StringIO())


LATIN1_EXPORT = (
    HEADER
    + "CD-KL,Kikwit,city,Lukolela,commune\n"
    + "CD-BC,Mbanza-Ngungu,territory,Kimpésé,sector\n"
).encode("latin-1")


def test_a_file_that_is_not_utf8_is_refused_with_its_line_and_imports_nothing(tmp_path):
    export = tmp_path / "localites.csv"
    export.write_bytes(LATIN1_EXPORT)
    before = (Territory.objects.count(), Commune.objects.count())

    with pytest.raises(CommandError) as excinfo:
        call_command("import_localities", str(export), "--only-valid-rows", stdout=io.StringIO())

    message = str(excinfo.value)
    assert "Le fichier doit être un texte UTF-8, et la ligne 3 ne l’est pas" in message
    assert "l’octet 35 de la ligne vaut 0xE9 (« é » en Windows-1252)" in message
    assert "CSV UTF-8" in message
    assert (Territory.objects.count(), Commune.objects.count()) == before


def test_the_command_exits_non_zero_without_a_traceback_on_a_latin1_file(tmp_path):
    export = tmp_path / "localites.csv"
    export.write_bytes(LATIN1_EXPORT)

    result = subprocess.run(
        [sys.executable, "manage.py", "import_localities", str(export)],
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "MWOLO_VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_excel_csv_utf8_export_with_its_byte_order_mark_is_imported(tmp_path):
    export = tmp_path / "localites.csv"
    export.write_bytes(LATIN1_EXPORT.decode("latin-1").encode("utf-8-sig"))

    call_command("import_localities", str(export), stdout=io.StringIO())

    assert Commune.objects.get(name="Kimpésé").territory.name == "Mbanza-Ngungu"
