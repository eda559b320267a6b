"""Bulk writes: ids reserved ahead of the rows, and rows written in one stream."""

import pytest
from django.db import transaction

from mwolo.core.bulk import ids_reserve, rows_insert
from mwolo.core.models import Sequence

pytestmark = pytest.mark.django_db


def test_reserved_ids_are_fresh_and_never_handed_out_again():
    with transaction.atomic():
        first = ids_reserve(Sequence, 3)  # the table has never had a row
        taken_by_the_database = Sequence.objects.create(key="after").pk
        second = ids_reserve(Sequence, 2)

    assert len(set(first + second + [taken_by_the_database])) == 6
    assert taken_by_the_database > max(first)
    assert min(second) > taken_by_the_database


def test_rows_written_later_with_their_reserved_ids_keep_them():
    Sequence.objects.create(key="existing")
    with transaction.atomic():
        ids = ids_reserve(Sequence, 2)
        written = rows_insert(
            Sequence, ("id", "key", "last_value"), [(ids[0], "one", 1), (ids[1], "two", 2)]
        )
        later = Sequence.objects.create(key="later")

    assert written == 2
    assert dict(Sequence.objects.filter(pk__in=ids).values_list("key", "pk")) == {
        "one": ids[0],
        "two": ids[1],
    }
    assert later.pk not in ids


def test_reserving_nothing_takes_nothing():
    assert ids_reserve(Sequence, 0) == []
