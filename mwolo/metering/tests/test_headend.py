"""The head-end's handler with the real database, without a broker: what it stores, what it
counts (malformed, unknown, duplicate and late messages), and that nothing crashes it.

The transport's own tests (mwolo/headend/tests) feed junk through a real broker to a
stand-in handler; here the messages a broker would hand over go through the real handler.
"""

import datetime as dt
import itertools
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwolo.core import clock
from mwolo.crm.tests.factories import SiteFactory
from mwolo.headend.protocol import ProtocolError, Telemetry, parse_message
from mwolo.headend.tests.meters import encode
from mwolo.headend.tests.strategies import junk_payloads
from mwolo.headend.transport import Batch, Delivery
from mwolo.metering import services
from mwolo.metering.headend import Headend
from mwolo.metering.models import HeadendRejection, Meter, MeterCommand, MeterReading, Relay
from mwolo.metering.tests.factories import installed_meter

# The handler closes stale connections before each batch, as its worker thread must: that
# needs real transactions, not the test's wrapping one.
pytestmark = pytest.mark.django_db(transaction=True)

PREFIX = "fuzz"
mids = itertools.count(1)


@pytest.fixture
def headend() -> Headend:
    # Never started: the test plays the transport and calls the handler as it would.
    return Headend(url="mqtt://127.0.0.1:1", prefix=PREFIX, client_id="test-headend")


def received(headend: Headend, items: list[tuple[str, str, bytes, bool]]) -> tuple[Batch, int]:
    """What the transport does with messages ``(serial, kind, payload, retained)``: parse
    each; refuse the invalid ones (counted with their reason); batch the rest."""
    batch, refused = Batch(), 0
    for serial, kind, payload, retained in items:
        topic = f"{PREFIX}/meters/{serial}/{kind}"
        try:
            message = parse_message(topic, payload, PREFIX)
        except ProtocolError as error:
            headend.refused(topic, payload, error.reason)
            refused += 1
            continue
        batch.add(
            Delivery(
                message=message,
                topic=topic,
                mid=next(mids),
                qos=1,
                retained=retained,
                duplicate=False,
                generation=1,
            )
        )
    return batch, refused


def counters() -> Counter[str]:
    return Counter(dict(HeadendRejection.objects.values_list("reason", "count")))


def reading(at: dt.datetime, energy: str, relay: str = "on") -> bytes:
    return encode({"at": at, "energy_kwh": Decimal(energy), "relay": relay}).encode()


def test_what_changes_nothing_is_counted_by_reason_with_the_refused_messages(headend):
    meter = installed_meter(SiteFactory(), at=clock.now() - dt.timedelta(hours=5))
    base = meter.last_reading_at
    command = services.meter_relay_request(
        meter_id=meter.pk, wanted=Relay.OFF, why="staff", source="staff"
    )
    ack = encode(
        {"id": str(command.uuid), "status": "ok", "relay": "off", "at": clock.now()}
    ).encode()
    newest = reading(base + dt.timedelta(hours=2), "1002")
    first, _refused = received(headend, [(meter.serial, "telemetry", newest, False)])
    headend.handle(first)
    batch, refused = received(
        headend,
        [
            (meter.serial, "telemetry", newest, False),  # duplicate
            (meter.serial, "telemetry", reading(base + dt.timedelta(hours=1), "1001"), False),
            (meter.serial, "ack", ack, False),
            (meter.serial, "ack", ack, False),  # duplicate
            (meter.serial, "status", b'{"online": true, "relay": "off"}', False),
            ("GHOST-1", "telemetry", newest, False),
            ("GHOST-1", "ack", ack, False),
            ("GHOST-1", "status", b'{"online": false}', True),
            (meter.serial, "telemetry", b"{not json", False),
            (meter.serial, "status", b"", True),  # a retained status being cleared
        ],
    )

    headend.handle(batch)
    headend.flush_counters()

    assert refused == 2
    assert counters() == {
        "bad_json": 1,
        "empty": 1,
        "duplicate_reading": 1,
        "late_reading": 1,
        "duplicate_ack": 1,
        "unknown_serial": 3,
    }
    last_topics = dict(HeadendRejection.objects.values_list("reason", "last_topic"))
    assert last_topics["bad_json"] == f"{PREFIX}/meters/{meter.serial}/telemetry"
    assert last_topics["duplicate_ack"] == f"{PREFIX}/meters/{meter.serial}/ack"
    assert last_topics["unknown_serial"].startswith(f"{PREFIX}/meters/GHOST-1/")
    assert MeterReading.objects.filter(meter=meter).count() == 3
    command.refresh_from_db()
    assert command.status == MeterCommand.Status.ACKNOWLEDGED
    # Counted once: the counters were handed to the database and emptied.
    headend.flush_counters()
    assert sum(counters().values()) == 8


def test_a_batch_retried_after_a_failure_counts_its_duplicates(headend):
    meter = installed_meter(SiteFactory())
    payload = reading(meter.last_reading_at + dt.timedelta(hours=1), "1001")
    batch, _refused = received(headend, [(meter.serial, "telemetry", payload, False)])

    headend.handle(batch)
    headend.handle(batch)  # the transport retries a batch whose acks were lost
    headend.flush_counters()

    assert MeterReading.objects.filter(meter=meter).count() == 2
    assert counters() == {"duplicate_reading": 1}


# --- Fuzz: whatever the meters send, the handler stores what is valid and counts the rest -------

KNOWN = ("FUZZ-1", "FUZZ-2")
SERIALS = (*KNOWN, "GHOST-1")
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# Quarter-hours over ten days: new readings, repeats and late ones all come up.
moments = st.integers(0, 960).map(lambda quarters: START + dt.timedelta(minutes=15 * quarters))
energies = st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False)
relays = st.sampled_from(["on", "off"])
reading_objects = st.fixed_dictionaries(
    {"at": moments, "energy_kwh": energies, "relay": relays},
    optional={"tamper": st.booleans(), "credit_kwh": energies},
)


def valid_payload(kind: str, command_ids: list[str]) -> st.SearchStrategy[bytes]:
    if kind == "telemetry":
        body = reading_objects | st.builds(
            lambda items: {"readings": items}, st.lists(reading_objects, min_size=1, max_size=5)
        )
    elif kind == "ack":
        body = st.fixed_dictionaries(
            {
                "id": st.sampled_from(command_ids),
                "status": st.sampled_from(["ok", "error"]),
                "relay": relays,
                "at": moments,
            },
            optional={"error": st.sampled_from(["expired", "relay_fault"])},
        )
    else:
        body = st.fixed_dictionaries({"online": st.booleans()}, optional={"relay": relays})
    return body.map(lambda obj: encode(obj).encode())


def meter_messages(command_ids: list[str]) -> st.SearchStrategy[tuple[str, str, bytes, bool]]:
    """(serial, kind, payload, retained): valid, near-valid or junk, known serial or not."""
    return st.tuples(
        st.sampled_from(SERIALS), st.sampled_from(["telemetry", "ack", "status"])
    ).flatmap(
        lambda serial_kind: st.tuples(
            st.just(serial_kind[0]),
            st.just(serial_kind[1]),
            st.one_of(  # two in three valid
                valid_payload(serial_kind[1], command_ids),
                valid_payload(serial_kind[1], command_ids),
                junk_payloads(),
            ),
            st.booleans(),
        )
    )


@pytest.fixture
def fuzz_meters():
    site = SiteFactory()
    meters = [installed_meter(site, serial=serial, at=START) for serial in KNOWN]
    for number, meter in enumerate(meters, start=1):
        command = services.meter_relay_request(
            meter_id=meter.pk, wanted=Relay.OFF, why="dunning", source="dunning"
        )
        # Fixed ids: the examples (derandomized) are then the same on every run.
        MeterCommand.objects.filter(pk=command.pk).update(uuid=uuid.UUID(int=number))
    return meters


def test_random_batches_never_crash_the_handler_and_every_reading_is_stored_or_counted(
    headend, fuzz_meters
):
    command_ids = [str(uuid.UUID(int=number)) for number in (1, 2, 99)]  # 99: nobody's

    @given(items=st.lists(meter_messages(command_ids), max_size=25))
    @settings(
        max_examples=80,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: CI never finds a new one late
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def handle_batch(items):
        batch, refused = received(headend, items)
        known_readings = sum(
            len(d.message.readings) for d in batch.telemetry if d.message.serial in KNOWN
        )
        ghosts = sum(1 for d in batch.deliveries() if d.message.serial == "GHOST-1")
        stored_before, counted_before = MeterReading.objects.count(), counters()

        headend.handle(batch)  # must not raise, whatever the batch holds
        headend.flush_counters()

        counted = counters() - counted_before
        stored = MeterReading.objects.count() - stored_before
        assert stored + counted["duplicate_reading"] == known_readings
        assert counted["late_reading"] <= stored
        assert counted["unknown_serial"] == ghosts
        malformed = sum(n for r, n in counted.items() if r not in services.ANOMALIES)
        assert malformed == refused
        for meter in Meter.objects.filter(serial__in=KNOWN):
            trusted = meter.readings.filter(flag="").order_by("-taken_at").first()
            assert meter.last_reading_at is not None
            assert trusted is None or meter.last_reading_at >= trusted.taken_at
        assert all(isinstance(d.message, Telemetry) for d in batch.telemetry)

    handle_batch()
    # The examples reached the database, not only the parser.
    counted = counters()
    assert MeterReading.objects.filter(source="telemetry").count() > 10
    assert counted["duplicate_reading"]
    assert counted["unknown_serial"]
    assert sum(n for reason, n in counted.items() if reason not in services.ANOMALIES)
    assert MeterCommand.objects.exclude(status__in=MeterCommand.IN_FLIGHT).exists()
