import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mwolo.metering.headend import Headend


class Command(BaseCommand):
    help = (
        "Run the head-end: receive meters' telemetry, acknowledgements and status over MQTT, "
        "store them, and send the commands that are due. Runs until SIGINT or SIGTERM."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client-id", default="mwolo-headend")
        parser.add_argument(
            "--shared-group",
            help="share the meters' acks and telemetry with other head-end processes of "
            "this group (MQTT shared subscription; Mosquitto)",
        )
        parser.add_argument(
            "--statuses",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="take the meters' statuses; exactly one process of a group must, so that "
            "a meter's statuses are stored in the order it sent them (default: yes)",
        )
        parser.add_argument(
            "--heartbeat",
            type=Path,
            help="touch this file whenever the head-end is connected and its dispatch loop "
            "has run: a health check can test its age",
        )

    def handle(
        self,
        *args: Any,
        client_id: str,
        shared_group: str | None,
        statuses: bool,
        heartbeat: Path | None,
        **options: Any,
    ) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"head-end {client_id} running; Ctrl-C stops it")
        Headend(
            client_id=client_id, shared_group=shared_group, statuses=statuses, heartbeat=heartbeat
        ).run(stop)
