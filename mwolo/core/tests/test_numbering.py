"""Gap-free numbering: numbers come from the issuing transaction and return on rollback."""

import threading

import pytest
from django.db import connection, transaction

from mwolo.core.numbering import formatted_number, sequence_next


@pytest.mark.django_db
def test_numbers_follow_each_other_per_key():
    with transaction.atomic():
        assert [sequence_next(key="a") for _ in range(3)] == [1, 2, 3]
        assert sequence_next(key="b") == 1
        assert formatted_number(prefix="FAC-2026", key="a") == "FAC-2026-000004"


@pytest.mark.django_db
def test_a_rolled_back_document_gives_its_number_back():
    with transaction.atomic():
        sequence_next(key="receipt")

    class DocumentFailedError(Exception):
        pass

    def issue_then_fail() -> None:
        with transaction.atomic():
            assert sequence_next(key="receipt") == 2
            raise DocumentFailedError

    with pytest.raises(DocumentFailedError):
        issue_then_fail()

    with transaction.atomic():
        assert sequence_next(key="receipt") == 2


@pytest.mark.django_db(transaction=True)
def test_numbering_outside_a_transaction_is_a_programming_error():
    with pytest.raises(RuntimeError):
        sequence_next(key="loose")


@pytest.mark.django_db(transaction=True)
def test_concurrent_issuers_never_share_or_skip_a_number():
    taken: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def issue(count: int) -> None:
        try:
            for _ in range(count):
                with transaction.atomic():
                    number = sequence_next(key="invoice:2026")
                with lock:
                    taken.append(number)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sorted(taken) == list(range(1, 101))
