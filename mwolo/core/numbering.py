"""Gap-free numbering.

``sequence_next`` must run inside the transaction that creates the numbered document: the
counter row is updated (and so locked) in that transaction, so a rollback gives the number
back and two concurrent issuers wait for each other instead of taking the same number.
"""

from collections.abc import Callable

from django.db import IntegrityError, connection, transaction

from .models import Sequence


def sequence_reserve(*, key: str, count: int) -> int:
    """Take the next ``count`` values of the counter ``key`` at once; returns the first.

    For documents issued in bulk (a billing run): one counter update for the whole batch.
    Needs an open transaction, like ``sequence_next``.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("sequence numbers must be taken inside the issuing transaction")
    if count < 1:
        raise ValueError("count must be at least 1")
    last = _advance(key, count)
    if last is None:
        try:
            with transaction.atomic():
                Sequence.objects.create(key=key, last_value=count)
            last = count
        except IntegrityError:
            # Another transaction created it first: take the values after theirs.
            last = _advance(key, count)
    if last is None:
        raise RuntimeError(f"the counter {key!r} could not be advanced")
    return last - count + 1


def _advance(key: str, count: int) -> int | None:
    """The counter's new last value, in one statement (None when it does not exist yet)."""
    table, last, name = map(
        connection.ops.quote_name, (Sequence._meta.db_table, "last_value", "key")
    )
    with connection.cursor() as cursor:
        # PostgreSQL and SQLite (3.35+) both return the updated row.
        cursor.execute(
            f"UPDATE {table} SET {last} = {last} + %s WHERE {name} = %s RETURNING {last}",  # noqa: S608
            [count, key],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def sequence_next(*, key: str) -> int:
    """Next value of the counter ``key`` (1 for a new counter). Needs an open transaction."""
    return sequence_reserve(key=key, count=1)


def formatted_number(*, prefix: str, key: str, width: int = 6) -> str:
    """``PREFIX-000123`` from the counter ``key``; see ``sequence_next``."""
    return f"{prefix}-{sequence_next(key=key):0{width}d}"


def free_formatted_number(
    *, prefix: str, key: str, width: int, is_taken: Callable[[str], bool]
) -> str:
    """Like ``formatted_number``, skipping numbers someone typed in by hand.

    For identifiers staff may also enter themselves (client numbers from a former system);
    never for legal documents, whose numbers are only ever given by the counter.
    """
    while True:
        number = formatted_number(prefix=prefix, key=key, width=width)
        if not is_taken(number):
            return number
