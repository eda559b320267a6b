from celery import shared_task

from .services import sessions_purge_expired


@shared_task(name="core.sessions_purge_expired")
def sessions_purge_expired_task() -> int:
    return sessions_purge_expired()
