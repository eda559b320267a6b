"""Writing many rows at the speed of the database, for services that write in bulk.

``bulk_create`` builds a model instance and compiles every value through its field, which
costs more than the insert itself when a billing run writes a hundred thousand invoices.
These helpers take plain Python values of the model's fields (already checked by the
service: no ``save()``, no ``full_clean()``, no signals run) and hand them to the database
in one stream: ``COPY`` on PostgreSQL, ``executemany`` elsewhere.
"""

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any, cast

from django.db import connection, models
from django.db.models import Q
from django.db.models.expressions import RawSQL


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    return connection.ops.quote_name(cast(str, cast(models.Field, field).column))


def rows_insert(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert ``rows`` (values in the order of ``fields``, field attnames) into ``model``'s
    table; returns how many. Runs in the caller's transaction."""
    meta = model._meta
    concrete = [meta.get_field(name) for name in fields]
    columns = ", ".join(_column(model, name) for name in fields)
    json_at = [i for i, field in enumerate(concrete) if isinstance(field, models.JSONField)]
    table = connection.ops.quote_name(meta.db_table)
    count = 0
    if connection.vendor == "postgresql":
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                if json_at:
                    row = list(row)
                    for i in json_at:
                        row[i] = json.dumps(row[i])
                copy.write_row(row)
                count += 1
        return count
    adapt = connection.ops.adapt_datetimefield_value
    datetime_at = [i for i, field in enumerate(concrete) if isinstance(field, models.DateTimeField)]
    uuid_at = [i for i, field in enumerate(concrete) if isinstance(field, models.UUIDField)]
    prepared: list[list[Any]] = []
    for row in rows:
        values = list(row)
        for i in json_at:
            values[i] = json.dumps(values[i])
        for i in datetime_at:
            values[i] = adapt(values[i])
        for i in uuid_at:  # stored as 32 hex digits where the database has no uuid type
            values[i] = None if values[i] is None else values[i].hex
        prepared.append(values)
    marks = ", ".join(["%s"] * len(concrete))
    with connection.cursor() as cursor:
        # Table and column names come from the model, never from input.
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", prepared)  # noqa: S608
    return len(prepared)


def ids_reserve(model: type[models.Model], count: int) -> list[int]:
    """``count`` fresh primary keys of ``model``'s table, for rows ``rows_insert`` writes
    later with their ``id``: rows that point at them may then be written first.

    Taken from the table's own sequence (PostgreSQL's identity sequence, SQLite's
    ``sqlite_sequence``), so inserts that let the database choose never collide with them.
    Runs in the caller's transaction; on SQLite it takes the write lock.
    """
    if count < 1:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), _pk_column(model), count],
            )
            return [row[0] for row in cursor.fetchall()]
        # AUTOINCREMENT tables: SQLite gives new rows max(seq, max(id)) + 1.
        quoted, pk = connection.ops.quote_name(table), connection.ops.quote_name(_pk_column(model))
        cursor.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, "  # noqa: S608 - names from the model
            f"(SELECT coalesce(max({pk}), 0) FROM {quoted})) + %s WHERE name = %s RETURNING seq",
            [count, table],
        )
        row = cursor.fetchone()
        if row is None:  # the table never had a row: its counter does not exist yet
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) "  # noqa: S608
                f"SELECT %s, coalesce(max({pk}), 0) + %s FROM {quoted} RETURNING seq",
                [table, count],
            )
            row = cursor.fetchone()
    last = int(row[0])
    return list(range(last - count + 1, last + 1))


def _pk_column(model: type[models.Model]) -> str:
    return cast(str, cast(models.Field, model._meta.pk).column)


def numbers_assign(
    *,
    model: type[models.Model],
    ids: Sequence[int],
    prefix: str,
    first: int,
    width: int = 6,
    also: dict[str, Any] | None = None,
) -> None:
    """Number the rows ``ids`` of ``model`` in id order: ``prefix`` followed by ``first``,
    ``first + 1``… padded with zeros to ``width`` digits, in one UPDATE that also sets the
    fields of ``also`` (attname -> value), so each row is written once.

    For gap-free document numbers taken with ``numbering.sequence_reserve`` in the same
    transaction. The ORM cannot update from a window function, hence the SQL.
    """
    if not ids:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    pk = _column(model, "pk" if meta.pk is None else meta.pk.name)
    assignments: list[str] = []
    values: list[Any] = []
    for name, value in (also or {}).items():
        field = cast(models.Field, meta.get_field(name))
        assignments.append(f"{_column(model, name)} = %s")
        values.append(field.get_db_prep_save(value, connection))
    if connection.vendor == "postgresql":
        digits = "(%s + ranked.n - 1)::text"
        padded = f"lpad({digits}, greatest(%s, length({digits})), '0')"
        number_params: list[Any] = [prefix, first, width, first]
        id_filter = f"{pk} = ANY(%s)"
        id_params: list[Any] = [list(ids)]
    else:
        padded = "printf('%%0' || %s || 'd', %s + ranked.n - 1)"
        number_params = [prefix, width, first]
        id_filter = f"{pk} IN ({', '.join(['%s'] * len(ids))})"
        id_params = list(ids)
    number = _column(model, "number")
    sets = ", ".join([f"{number} = %s || {padded}", *assignments])
    sql = (
        f"UPDATE {table} SET {sets} "  # noqa: S608 - names from the model
        f"FROM (SELECT {pk} AS id, row_number() OVER (ORDER BY {pk}) AS n "
        f"FROM {table} WHERE {id_filter}) AS ranked "
        f"WHERE {table}.{pk} = ranked.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*number_params, *values, *id_params])


def among(field: str, values: Collection[Any]) -> Q:
    """``field__in=values`` for thousands of values: on PostgreSQL one array parameter
    (``unnest``) instead of a placeholder each, which costs more than the query itself."""
    values = list(values)
    if connection.vendor == "postgresql" and len(values) > 100:
        array = "text[]" if isinstance(values[0], str) else "bigint[]"
        # The SQL is constant; the values travel as one bound parameter.
        return Q(**{f"{field}__in": RawSQL(f"SELECT unnest(%s::{array})", [values])})  # noqa: S611
    return Q(**{f"{field}__in": values})
