"""Loading territories, cities and communes from CSV (the provinces ship as data)."""

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from django.db import transaction
from django.utils.translation import gettext as _

from mwolo.core.exceptions import ApplicationError

from .models import Commune, Province, Territory

BUNDLED_LOCALITIES = Path(__file__).parent / "data" / "localities.csv"
LOCALITY_COLUMNS = ("province_code", "territory", "territory_kind", "commune", "commune_kind")


@dataclass(frozen=True)
class LocalityRow:
    line: int
    province: Province
    territory: str
    territory_kind: str
    commune: str
    commune_kind: str


@dataclass
class LocalityImportReport:
    territories_created: int = 0
    communes_created: int = 0
    rows_skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _parse_locality_rows(
    rows: Iterable[dict[str, str]], provinces: dict[str, Province]
) -> tuple[list[LocalityRow], list[str]]:
    territory_kinds = set(Territory.Kind.values)
    commune_kinds = set(Commune.Kind.values)
    parsed, errors = [], []
    seen_kinds: dict[tuple[str, str], str] = {}
    for line, raw in enumerate(rows, start=2):  # line 1 is the header
        values = {key: (raw.get(key) or "").strip() for key in LOCALITY_COLUMNS}
        problems = []
        province = provinces.get(values["province_code"].upper())
        if province is None:
            problems.append(_("unknown province code “%s”") % values["province_code"])
        if not values["territory"]:
            problems.append(_("territory is empty"))
        if values["territory_kind"] not in territory_kinds:
            problems.append(
                _("territory_kind must be one of %s") % ", ".join(sorted(territory_kinds))
            )
        if values["commune"] and values["commune_kind"] not in commune_kinds:
            problems.append(_("commune_kind must be one of %s") % ", ".join(sorted(commune_kinds)))
        key = (values["province_code"].upper(), values["territory"].casefold())
        if seen_kinds.setdefault(key, values["territory_kind"]) != values["territory_kind"]:
            problems.append(_("territory “%s” is given two different kinds") % values["territory"])
        if problems:
            errors.append(
                _("line %(line)d: %(problems)s") % {"line": line, "problems": "; ".join(problems)}
            )
            continue
        assert province is not None  # noqa: S101 - checked above
        parsed.append(
            LocalityRow(
                line=line,
                province=province,
                territory=values["territory"],
                territory_kind=values["territory_kind"],
                commune=values["commune"],
                commune_kind=values["commune_kind"],
            )
        )
    return parsed, errors


def localities_import(*, source: TextIO, only_valid_rows: bool = False) -> LocalityImportReport:
    """Create the territories/cities and communes listed in a CSV file.

    Columns: ``province_code`` (ISO 3166-2, e.g. ``CD-KN``), ``territory``,
    ``territory_kind`` (city|territory), ``commune`` (may be empty), ``commune_kind``
    (commune|sector|chiefdom). Idempotent: rows already present are skipped.

    All or nothing: any bad row raises ``ApplicationError`` listing every bad row with its
    line number and writes nothing, unless ``only_valid_rows`` is set, in which case the
    good rows are imported and the bad ones reported.
    """
    reader = csv.DictReader(source)
    missing = set(LOCALITY_COLUMNS) - set(reader.fieldnames or [])
    if missing:
        raise ApplicationError(
            _("The file lacks the columns: %s.") % ", ".join(sorted(missing)),
        )
    provinces = {p.code.upper(): p for p in Province.objects.all()}
    rows, errors = _parse_locality_rows(reader, provinces)
    if errors and not only_valid_rows:
        raise ApplicationError(
            _("Nothing imported: %d bad rows.") % len(errors), extra={"errors": errors}
        )
    report = LocalityImportReport(errors=errors)
    with transaction.atomic():
        existing = {
            (t.province_id, t.name.casefold()): t
            for t in Territory.objects.filter(province__in={row.province for row in rows})
        }
        for row in rows:
            key = (row.province.pk, row.territory.casefold())
            territory = existing.get(key)
            if territory is None:
                territory = Territory.objects.create(
                    province=row.province, name=row.territory, kind=row.territory_kind
                )
                existing[key] = territory
                report.territories_created += 1
            if not row.commune:
                continue
            _commune, created = Commune.objects.get_or_create(
                territory=territory, name=row.commune, defaults={"kind": row.commune_kind}
            )
            if created:
                report.communes_created += 1
            else:
                report.rows_skipped += 1
    return report
