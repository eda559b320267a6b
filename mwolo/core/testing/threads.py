"""Work run in threads of their own, for tests of concurrent transactions."""

import threading
from collections.abc import Callable

from django.db import connections


def in_thread(work: Callable[[], object], errors: list[BaseException]) -> threading.Thread:
    """Start ``work`` in a thread, on its own database connection (closed when it ends);
    what it raises is appended to ``errors`` for the test to check."""

    def run() -> None:
        try:
            work()
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread
