"""Gunicorn settings of the web container (`gunicorn --config deploy/gunicorn.conf.py`).

Command-line flags override these, e.g. `--workers 8` in the web service's command.
"""

import os

bind = "0.0.0.0:8000"

# Threads let a worker overlap requests that wait on PostgreSQL or an operator's API.
# Workers scale with the CPUs this container may use (cpuset-aware), capped so a large
# host does not open more database connections than PostgreSQL's default 100 allow for.
worker_class = "gthread"
workers = min(2 * len(os.sched_getaffinity(0)) + 1, 9)
threads = 4

# A long statement PDF may take a while; anything slower is a bug to find, not to wait on.
timeout = 60
graceful_timeout = 30
# Longer than Caddy's idle keep-alive (30s, Caddyfile): the proxy always closes an idle
# connection first, so it never reuses one that gunicorn has just closed (a spurious 502).
keepalive = 35

# Recycle workers now and then: PDF and import libraries hold on to memory.
max_requests = 2000
max_requests_jitter = 200

# The worker heartbeat on tmpfs: on the container's overlay filesystem a slow write can
# make the arbiter think a healthy worker hung and kill it.
worker_tmp_dir = "/dev/shm"  # noqa: S108

# Only Caddy reaches this port (it is not published), so its X-Forwarded-* are trusted.
forwarded_allow_ips = "*"

# For `gunicornc` (worker status, changing the worker count without a restart).
control_socket = "/tmp/gunicorn.ctl"  # noqa: S108

accesslog = "-"
errorlog = "-"
# The client address is the one Caddy saw; %(M)s is the response time in milliseconds.
access_log_format = '%({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'
