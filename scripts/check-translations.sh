#!/usr/bin/env bash
# The committed .mo files must be what the committed .po files compile to.
set -euo pipefail
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
