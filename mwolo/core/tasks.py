from celery import shared_task

from .backup import database_backup
from .services import sessions_purge_expired


@shared_task(name="core.sessions_purge_expired")
def sessions_purge_expired_task() -> int:
    return sessions_purge_expired()


@shared_task(name="core.database_backup")
def database_backup_task() -> dict[str, object]:
    """Tonight's backup (beat: 02:00 Kinshasa); a failure is logged with its reason."""
    report = database_backup()
    return {
        "day": report.day.isoformat(),
        "path": str(report.path),
        "size": report.size,
        "written": report.written,
        "deleted": [str(path) for path in report.deleted],
    }
