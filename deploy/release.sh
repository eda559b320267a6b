#!/bin/sh
# The release step: run once per deployment by the one-shot `migrate` service, before
# web, worker and beat start (they wait for it to exit 0). Each step is idempotent, so
# running it again is harmless.
#
#   release.sh [STATIC_PUBLISH_DIR]
#
# 1. refuse values still copied from env.example ("change-me"), naming them;
# 2. Django's deployment checks, warnings included: an insecure setting stops the release;
# 3. database migrations, then the role groups and their permissions;
# 4. copy the image's collected static files to STATIC_PUBLISH_DIR (the volume Caddy
#    serves). Files from earlier releases stay, so a page cached before the upgrade
#    still finds its old hashed CSS and JS.
set -eu
cd "$(dirname "$0")/.."

placeholders=$(env | grep -- 'change-me' | cut -d= -f1 | tr '\n' ' ')
if [ -n "$placeholders" ]; then
    echo "release: still the placeholder from deploy/env.example: ${placeholders}" >&2
    echo "release: set real values in deploy/mwolo.env (see docs/operations.md)" >&2
    exit 1
fi

python manage.py check --deploy --fail-level WARNING
python manage.py migrate --noinput
python manage.py sync_roles

if [ $# -ge 1 ]; then
    static_root=${DJANGO_STATIC_ROOT:-/app/staticfiles}
    cp -R --preserve=timestamps "$static_root/." "$1/"
    echo "release: static files published to $1"
fi
