"""Health check of the web container: gunicorn answers /healthz/ (database included).

The request looks like one Caddy forwards: a Host taken from DJANGO_ALLOWED_HOSTS and
X-Forwarded-Proto: https, so neither the host check nor the HTTPS redirect answers in its
place. /healthz/ runs a query, so a lost database shows as unhealthy too.
Exits 0 on a 2xx/3xx answer, 1 with the reason otherwise. Standard library only: it runs
every 30 seconds and must start fast.
"""

import argparse
import http.client
import os
import sys


def allowed_host() -> str:
    for entry in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        host = entry.strip()
        if host and host != "*":
            # ".mwolo.cd" allows the domain and its subdomains: the domain itself matches.
            return host.lstrip(".")
    return "localhost"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", default="/healthz/")
    args = parser.parse_args()

    host = allowed_host()
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=8)
    try:
        connection.request("GET", args.path, headers={"Host": host, "X-Forwarded-Proto": "https"})
        status = connection.getresponse().status
    except OSError as error:
        sys.exit(f"unhealthy: no answer from 127.0.0.1:{args.port}: {error}")
    finally:
        connection.close()
    if status >= 400:
        sys.exit(f"unhealthy: GET {args.path} (Host: {host}) answered HTTP {status}")


if __name__ == "__main__":
    main()
