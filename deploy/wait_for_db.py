"""Wait until the database named by the settings accepts connections.

Used by deploy/entrypoint.sh: a container that starts before PostgreSQL is ready waits
here, with one clear line per attempt, instead of crash-looping through tracebacks.
Exits 0 once connected, 1 with the last error when the timeout runs out.
"""

import argparse
import sys
import time
from pathlib import Path

# The project root, so `config.settings` imports whatever the working directory is.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django
from django.db import connection
from django.db.utils import OperationalError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120, help="seconds (default 120)")
    args = parser.parse_args()

    django.setup()
    if connection.vendor == "postgresql":
        # An unreachable host must fail one attempt in seconds, not after the TCP timeout.
        connection.settings_dict.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            connection.ensure_connection()
        except OperationalError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            if time.monotonic() >= deadline:
                sys.exit(f"wait_for_db: database not reachable after {args.timeout:g}s: {reason}")
            sys.stderr.write(f"wait_for_db: database not ready yet ({reason}); retrying\n")
            time.sleep(2)
        else:
            connection.close()
            return


if __name__ == "__main__":
    main()
