"""Test runs: the same services as the run's environment (embedded or real), isolated per run."""

import os

from .base import *
from .base import DATABASES, VAR_DIR, env

SECRET_KEY = "test-key-not-for-production-0123456789abcdef"  # noqa: S105 - 32+ bytes for JWT
DEBUG = False
FIELD_ENCRYPTION_KEYS = ["dGVzdC1rZXktbm90LWZvci1wcm9kdWN0aW9uLTAxMjM="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WHITENOISE_USE_FINDERS = True
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
# Tasks run in the calling process so a test sees their effect; the stack test starts
# real worker and beat processes on the run's broker.
# Uploads of this run (or xdist worker) go to a folder of their own, removed at the end.
MEDIA_ROOT = VAR_DIR / "test" / f"media_{os.getpid()}"
PRIVATE_MEDIA_ROOT = VAR_DIR / "test" / f"private_{os.getpid()}"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# A benchmark serving the app with gunicorn queues them as production does.
CELERY_TASK_ALWAYS_EAGER = env.bool("MWOLO_TEST_TASKS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True

# Two test runs on one server must not share (or drop) each other's database. SQLite tests
# use a file, like `make run`, so that threads and processes can share it.
_run_id = env.str("MWOLO_TEST_RUN_ID", default=str(os.getpid()))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test" / f"test_mwolo_{_run_id}.sqlite3")}
    (VAR_DIR / "test").mkdir(exist_ok=True)
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_mwolo_{_run_id}"}
