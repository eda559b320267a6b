from argparse import ArgumentParser
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mwolo.demo.selectors import demo_meter_serials
from sandbox.meters import Fleet
from sandbox.meters.__main__ import run_until_signalled


class Command(BaseCommand):
    help = (
        "Run the simulated meters of the demo (SIM-000001, …) on the platform's MQTT broker "
        "until Ctrl-C: live readings, acks to commands, prepaid credit. make run starts it."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=60.0,
            help="seconds between a meter's readings (default 60)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        serials, prepaid = demo_meter_serials()
        if not serials:
            raise CommandError("The demo has no meters: run “manage.py seed_demo” first.")
        broker = urlsplit(settings.MQTT_URL)
        fleet = Fleet(
            broker.hostname or "127.0.0.1",
            broker.port or 1883,
            settings.MQTT_TOPIC_PREFIX,
            serials=serials,
            prepaid=prepaid,
            interval=options["interval"],
        )
        self.stdout.write(f"{len(serials)} demo meters ({len(prepaid)} prepaid) on {broker.netloc}")
        run_until_signalled(fleet)
