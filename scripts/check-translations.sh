#!/usr/bin/env bash
# The committed .mo files must be what the committed .po files compile to.
set -euo pipefail
if ! command -v msgfmt >/dev/null; then
    echo "Cannot check the translations: msgfmt (GNU gettext) is not installed." >&2
    echo "Install the Debian package gettext: 'make system-packages' as root, or" >&2
    echo "'sudo apt-get install -y gettext'. ('make test' installs it before linting.)" >&2
    exit 2
fi
status=0
for po in locale/*/LC_MESSAGES/*.po; do
    [ -e "$po" ] || continue
    mo="${po%.po}.mo"
    if ! msgfmt --check-format -o - "$po" | cmp -s - "$mo"; then
        echo "$mo is stale: run 'make messages' (or msgfmt) and commit it" >&2
        status=1
    fi
done
exit $status
