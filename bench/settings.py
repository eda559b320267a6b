"""The test settings with the benchmarks' routes (``bench.urls``), for the servers a
benchmark starts."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
