#!/bin/sh
# Entrypoint of every container built from deploy/Dockerfile: wait until the database
# accepts connections (after a host reboot PostgreSQL may still be recovering while the
# app containers start), then become the command, so gunicorn or Celery is PID 1 and
# receives `docker stop`'s SIGTERM directly for a graceful shutdown.
set -eu

python "$(dirname "$0")/wait_for_db.py" --timeout 120
exec "$@"
