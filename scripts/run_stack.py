"""`make run`'s process runner: honcho, with time for the processes to stop by themselves.

On Ctrl-C honcho sends SIGTERM to each process's group and SIGKILLs what is left five
seconds later (``honcho.manager.KILL_WAIT``, which its command line does not expose). The
Celery worker on the embedded broker needs longer than that for a clean stop: its event
loop polls the folder broker in two-second rounds and finishes one more round once told to
stop, then puts the messages it had taken back in the queue and joins its pool (5 to 7 s
measured). Killed before that, it loses those messages. The worker is still bounded: the
Procfile has it requeue running tasks rather than wait for them (REMAP_SIGTERM).

Usage: the arguments of ``honcho`` (``python scripts/run_stack.py start --port 8000``).
"""

import sys

import honcho.manager
from honcho.command import main

# Seconds between honcho's SIGTERM and its SIGKILL; a process that needs this long is stuck.
honcho.manager.KILL_WAIT = 20  # type: ignore[attr-defined]

if __name__ == "__main__":
    sys.exit(main())
