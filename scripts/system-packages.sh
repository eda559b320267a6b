#!/usr/bin/env bash
# Debian packages the test suite drives: Chromium (browser tests, through Playwright),
# poppler-utils (reading PDFs back), gettext (compiling translations), Mosquitto,
# shellcheck (the deployment scripts).
# Installs what is missing when run as root; otherwise says what to install.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
command -v msgfmt >/dev/null || missing+=(gettext)
command -v shellcheck >/dev/null || missing+=(shellcheck)
# Brokers the tests restart on purpose: Mosquitto keeps its queues across a restart.
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages: ${missing[*]}. Run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "Installing ${missing[*]}…"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
