"""An embedded MQTT broker (amqtt) for machines without Mosquitto.

    python -m sandbox.broker [--host 127.0.0.1] [--port 11883]

It listens by default where ``MQTT_URL`` points (``mqtt://127.0.0.1:11883`` when unset).

Anonymous, in memory, MQTT 3.1.1 with QoS 0/1/2 and retained messages: enough for
``make run`` and the tests. Production and CI use Mosquitto (``deploy/mosquitto.conf``).
The default port is not 1883, so it never collides with a real broker on the same machine.
"""

import argparse
import asyncio
import logging
import os
import signal
from urllib.parse import urlsplit

from amqtt.broker import Broker

DEFAULT_PORT = 11883


def broker_config(host: str, port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve(host: str, port: int) -> None:
    broker = Broker(broker_config(host, port))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logging.getLogger(__name__).info("MQTT broker listening on %s:%d", host, port)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    # By default it listens where the platform looks for its broker (MQTT_URL).
    configured = urlsplit(os.environ.get("MQTT_URL", f"mqtt://127.0.0.1:{DEFAULT_PORT}"))
    parser.add_argument("--host", default=configured.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=configured.port or DEFAULT_PORT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
