"""Protocol v1 parsing and building: strict, total, exact."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mwolo.headend.protocol import (
    MAX_ENERGY_KWH,
    Ack,
    ProtocolError,
    Reading,
    Status,
    Telemetry,
    command_payload,
    command_topic,
    parse_message,
    parse_topic,
    stale_subscription_topics,
    subscription_topics,
)

from .meters import ack_payload, encode, status_payload, telemetry_payload
from .strategies import json_values, near_valid_objects

P = "mwolo"
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
TELEMETRY = f"{P}/meters/SN-001/telemetry"
ACK = f"{P}/meters/SN-001/ack"
STATUS = f"{P}/meters/SN-001/status"
COMMAND_ID = "9d4c0f0e-2c3a-4c1e-9a53-7f1b2d6a1e10"


def parse(topic: str, payload: bytes | str) -> object:
    raw = payload.encode() if isinstance(payload, str) else payload
    return parse_message(topic, raw, P, now=NOW)


def reason_of(topic: str, payload: bytes | str) -> str:
    with pytest.raises(ProtocolError) as error:
        parse(topic, payload)
    return error.value.reason


# --- Topics ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("mwolo/meters/SN-001/telemetry", ("SN-001", "telemetry")),
        ("mwolo/meters/a_b-C9/ack", ("a_b-C9", "ack")),
        (f"mwolo/meters/{'x' * 64}/status", ("x" * 64, "status")),
    ],
)
def test_topic_gives_serial_and_kind(topic, expected):
    assert parse_topic(topic, "mwolo") == expected


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("other/meters/SN1/telemetry", "bad_topic"),
        ("mwolo/meter/SN1/telemetry", "bad_topic"),
        ("mwolo/meters/SN1", "bad_topic"),
        ("mwolo/meters/SN1/telemetry/extra", "bad_topic"),
        ("mwolo/meters//telemetry", "bad_serial"),
        (f"mwolo/meters/{'x' * 65}/telemetry", "bad_serial"),
        ("mwolo/meters/SN 1/telemetry", "bad_serial"),
        ("mwolo/meters/SN.1/telemetry", "bad_serial"),
        ("mwolo/meters/SN1/cmd", "unknown_kind"),
        ("mwolo/meters/SN1/Telemetry", "unknown_kind"),
    ],
)
def test_bad_topics_are_refused(topic, reason):
    with pytest.raises(ProtocolError) as error:
        parse_topic(topic, "mwolo")
    assert error.value.reason == reason


def test_prefix_may_have_levels():
    assert parse_topic("dc/kin/meters/A1/status", "dc/kin") == ("A1", "status")
    assert command_topic("dc/kin", "A1") == "dc/kin/meters/A1/cmd"


def test_command_topic_refuses_invalid_serials():
    with pytest.raises(ValueError, match="serial"):
        command_topic("mwolo", "a/b")
    with pytest.raises(ValueError, match="serial"):
        command_topic("mwolo", "+")


def test_subscriptions_plain_and_shared():
    assert subscription_topics("mwolo") == [
        "mwolo/meters/+/ack",
        "mwolo/meters/+/telemetry",
        "mwolo/meters/+/status",
    ]
    assert stale_subscription_topics("mwolo") == []
    # Shared: acks and telemetry among the group, statuses to one process only, unshared.
    assert subscription_topics("mwolo", "headend") == [
        "$share/headend/mwolo/meters/+/ack",
        "$share/headend/mwolo/meters/+/telemetry",
        "mwolo/meters/+/status",
    ]
    assert subscription_topics("mwolo", "headend", statuses=False) == [
        "$share/headend/mwolo/meters/+/ack",
        "$share/headend/mwolo/meters/+/telemetry",
    ]
    # What an earlier run with other settings may have left in the session.
    assert stale_subscription_topics("mwolo", "headend", statuses=False) == [
        "mwolo/meters/+/ack",
        "mwolo/meters/+/telemetry",
        "mwolo/meters/+/status",
        "$share/headend/mwolo/meters/+/status",
    ]


# --- Valid messages -------------------------------------------------------------------------


def test_single_reading_as_in_the_documentation():
    message = parse(
        TELEMETRY,
        '{"at": "2026-11-21T08:15:00Z", "energy_kwh": 15234.125, "relay": "on",'
        ' "power_w": 412, "voltage_v": 229.5}',
    )
    assert message == Telemetry(
        serial="SN-001",
        readings=(
            Reading(
                at=dt.datetime(2026, 11, 21, 8, 15, tzinfo=dt.UTC),
                energy_kwh=Decimal("15234.125"),
                relay="on",
                power_w=Decimal("412"),
                voltage_v=Decimal("229.5"),
            ),
        ),
    )
    reading = message.readings[0]
    assert str(reading.energy_kwh) == "15234.125"
    assert reading.credit_kwh is None
    assert reading.tamper is False


def test_batch_of_readings_and_offsets_converted_to_utc():
    message = parse(
        TELEMETRY,
        '{"readings": [{"at": "2026-11-21T09:15:00+01:00", "energy_kwh": 15233.9, "relay": "on"},'
        ' {"at": "2026-11-21T08:30:00Z", "energy_kwh": 15234.1, "relay": "off",'
        ' "credit_kwh": -2.5, "tamper": true}]}',
    )
    assert isinstance(message, Telemetry)
    first, second = message.readings
    assert first.at == dt.datetime(2026, 11, 21, 8, 15, tzinfo=dt.UTC)
    assert first.at.utcoffset() == dt.timedelta(0)
    assert first.energy_kwh == Decimal("15233.900")
    assert (second.relay, second.credit_kwh, second.tamper) == ("off", Decimal("-2.500"), True)


def test_energy_is_exact_and_quantized():
    # Vendors' float formatting: rounded half-even to the protocol's 0.001, never a float.
    for text, expected in [
        ("0.1000000000000000055511151231257827", "0.100"),
        ("15234.125000000002", "15234.125"),
        ("2.0005", "2.000"),
        ("2.0015", "2.002"),
        ("-0", "0.000"),
        ("1.5e3", "1500.000"),
        (str(MAX_ENERGY_KWH), str(MAX_ENERGY_KWH)),
    ]:
        energy = parse(TELEMETRY, reading(energy_kwh=text)).readings[0].energy_kwh
        assert str(energy) == expected, text


def test_ack_as_in_the_documentation():
    message = parse(
        ACK,
        f'{{"id": "{COMMAND_ID}", "status": "error", "relay": "off",'
        ' "at": "2026-11-21T08:00:03Z", "error": "invalid_token", "credit_kwh": 12.5,'
        ' "energy_kwh": 100}',
    )
    assert message == Ack(
        serial="SN-001",
        command_id=uuid.UUID(COMMAND_ID),
        status="error",
        relay="off",
        at=dt.datetime(2026, 11, 21, 8, 0, 3, tzinfo=dt.UTC),
        error="invalid_token",
        energy_kwh=Decimal("100"),
        credit_kwh=Decimal("12.5"),
    )


def test_status_as_in_the_documentation_and_the_last_will():
    assert parse(STATUS, '{"online": true, "relay": "on", "fw": "2.4.1"}') == Status(
        serial="SN-001", online=True, relay="on", fw="2.4.1"
    )
    assert parse(STATUS, '{"online": false}') == Status(serial="SN-001", online=False)


def test_unknown_fields_and_nulls_for_optional_fields_are_accepted():
    message = parse(
        TELEMETRY,
        '{"at": "2026-11-21T08:15:00Z", "energy_kwh": 1, "relay": "on", "power_w": null,'
        ' "tamper": null, "vendor_extra": {"x": [1, 2]}}',
    )
    assert message.readings[0].power_w is None
    assert message.readings[0].tamper is False


# --- Invalid messages: one stable reason each ----------------------------------------------


def raw(fields: dict[str, str | None]) -> bytes:
    """A JSON object from raw JSON texts of its values (None leaves the field out)."""
    items = [f'"{name}": {value}' for name, value in fields.items() if value is not None]
    return ("{" + ", ".join(items) + "}").encode()


def reading(**changes: str | None) -> bytes:
    return raw({"at": '"2026-11-21T08:15:00Z"', "energy_kwh": "1", "relay": '"on"', **changes})


def ack(**changes: str | None) -> bytes:
    at = '"2026-11-21T08:00:03Z"'
    return raw({"id": f'"{COMMAND_ID}"', "status": '"ok"', "relay": '"on"', "at": at, **changes})


def batch(count: int) -> bytes:
    return b'{"readings": [' + b",".join([reading()] * count) + b"]}"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TELEMETRY, b"", "empty"),
        (TELEMETRY, b"\xff\xfe{}", "bad_encoding"),
        (TELEMETRY, b'{"at": "\xc3\x28"}', "bad_encoding"),
        (TELEMETRY, b"{", "bad_json"),
        (TELEMETRY, b"{'at': 1}", "bad_json"),
        (TELEMETRY, reading(energy_kwh="NaN"), "bad_json"),
        (TELEMETRY, reading(energy_kwh="Infinity"), "bad_json"),
        (TELEMETRY, reading(energy_kwh="-Infinity"), "bad_json"),
        (TELEMETRY, b'{"a": 1, "a": 2}', "bad_json"),
        (TELEMETRY, b"[" * 100_000 + b"]" * 100_000, "bad_json"),
        (TELEMETRY, b"\xef\xbb\xbf" + reading(), "bad_json"),  # a BOM is not JSON
        (TELEMETRY, b"[]", "not_object"),
        (TELEMETRY, b"42", "not_object"),
        (TELEMETRY, b'"text"', "not_object"),
        (TELEMETRY, b"null", "not_object"),
        (TELEMETRY, b"{}", "missing_field"),
        (TELEMETRY, reading(at=None), "missing_field"),
        (TELEMETRY, reading(at="null"), "missing_field"),
        (TELEMETRY, reading(relay=None), "missing_field"),
        (TELEMETRY, reading(energy_kwh="true"), "bad_type"),  # bool is an int in Python
        (TELEMETRY, reading(energy_kwh='"1.5"'), "bad_type"),
        (TELEMETRY, reading(energy_kwh="[1]"), "bad_type"),
        (TELEMETRY, reading(at="1700000000"), "bad_type"),
        (TELEMETRY, reading(relay="true"), "bad_type"),
        (TELEMETRY, reading(tamper="1"), "bad_type"),
        (TELEMETRY, reading(power_w="false"), "bad_type"),
        (TELEMETRY, reading(credit_kwh="{}"), "bad_type"),
        (TELEMETRY, reading(energy_kwh="-0.001"), "bad_value"),
        (TELEMETRY, reading(energy_kwh="1e999999999"), "bad_value"),
        (TELEMETRY, reading(energy_kwh="9" * 5000), "bad_value"),
        (TELEMETRY, reading(energy_kwh="100000000000"), "bad_value"),
        (TELEMETRY, reading(relay='"ON"'), "bad_value"),
        (TELEMETRY, reading(voltage_v="-1"), "bad_value"),
        (TELEMETRY, reading(power_w="1e12"), "bad_value"),
        (TELEMETRY, reading(at='"yesterday"'), "bad_time"),
        (TELEMETRY, reading(at='"2026-11-21T25:00:00Z"'), "bad_time"),
        (TELEMETRY, reading(at='"1970-01-01T00:00:00Z"'), "bad_time"),
        (TELEMETRY, reading(at='"0001-01-01T00:00:00+01:00"'), "bad_time"),
        (TELEMETRY, reading(at='"9999-12-31T23:59:59-01:00"'), "bad_time"),
        (TELEMETRY, reading(at=f'"{"2" * 100}"'), "bad_time"),
        (TELEMETRY, reading(at='"2026-11-21T08:15:00"'), "naive_time"),
        (TELEMETRY, reading(at='"2026-11-21"'), "naive_time"),
        (TELEMETRY, reading(at='"2026-11-22T12:00:01Z"'), "future_time"),
        (TELEMETRY, b'{"readings": {}}', "bad_type"),
        (TELEMETRY, b'{"readings": []}', "bad_value"),
        (TELEMETRY, b'{"readings": [1]}', "bad_type"),
        (TELEMETRY, b'{"readings": [{"at": "2026-11-21T08:15:00Z"}]}', "missing_field"),
        (TELEMETRY, batch(1001), "batch_too_large"),
        (ACK, ack(id="5"), "bad_type"),
        (ACK, ack(id='"not-a-uuid"'), "bad_value"),
        (ACK, ack(id=f'"{{{COMMAND_ID}}}"'), "bad_value"),
        (ACK, ack(status='"done"'), "bad_value"),
        (ACK, ack(status='["ok"]'), "bad_type"),
        (ACK, ack(relay=None), "missing_field"),
        (ACK, ack(at='"2026-11-21T08:00:03"'), "naive_time"),
        (ACK, ack(error='"a\\u0000b"'), "bad_value"),
        (ACK, ack(error=f'"{"x" * 257}"'), "bad_value"),
        (ACK, ack(energy_kwh="-1"), "bad_value"),
        (STATUS, b'{"online": "yes"}', "bad_type"),
        (STATUS, b'{"online": 1}', "bad_type"),
        (STATUS, b'{"relay": "on"}', "missing_field"),
        (STATUS, b'{"online": true, "fw": 2}', "bad_type"),
        (STATUS, b'{"online": true, "fw": "\\ud800"}', "bad_value"),
        (STATUS, b'{"online": true, "relay": "half"}', "bad_value"),
    ],
)
def test_invalid_messages_are_refused_with_a_reason(topic, payload, reason):
    assert reason_of(topic, payload) == reason


def test_payload_over_one_megabyte_is_refused_unread():
    assert reason_of(STATUS, b" " * (1024 * 1024 + 1)) == "too_large"


def test_protocol_error_carries_reason_and_detail():
    with pytest.raises(ProtocolError) as error:
        parse(TELEMETRY, b'{"readings": [{"at": "2026-11-21T08:15:00Z", "relay": "on"}]}')
    assert error.value.reason == "missing_field"
    assert "readings[0].energy_kwh" in error.value.detail
    assert str(error.value).startswith("missing_field: ")


def test_future_limit_follows_the_clock_by_default():
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    ok = f'{{"at": "{soon.isoformat()}", "energy_kwh": 1, "relay": "on"}}'.encode()
    bad = f'{{"at": "{later.isoformat()}", "energy_kwh": 1, "relay": "on"}}'.encode()
    assert isinstance(parse_message(TELEMETRY, ok, P), Telemetry)
    with pytest.raises(ProtocolError, match="future_time"):
        parse_message(TELEMETRY, bad, P)


# --- Totality: nothing but ProtocolError, whatever arrives --------------------------------

topics = st.sampled_from([TELEMETRY, ACK, STATUS])


def assert_total(topic: str, payload: bytes) -> None:
    try:
        message = parse(topic, payload)
    except ProtocolError as error:
        reason = error.reason
    else:
        assert isinstance(message, Telemetry | Ack | Status)
        return
    assert reason


@given(topic=topics, payload=st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_errors(topic, payload):
    assert_total(topic, payload)


@given(topic=topics, value=json_values)
def test_random_json_raises_only_protocol_errors(topic, value):
    assert_total(topic, encode(value).encode())


@given(topic=topics, obj=near_valid_objects)
@settings(max_examples=300)
def test_objects_with_the_right_fields_and_wrong_values_raise_only_protocol_errors(topic, obj):
    assert_total(topic, encode(obj).encode())


@given(topic=st.text(max_size=80), payload=st.binary(max_size=40))
def test_random_topics_raise_only_protocol_errors(topic, payload):
    try:
        parse(topic, payload)
    except ProtocolError:
        return


# --- Round trips -----------------------------------------------------------------------------

times = st.datetimes(
    min_value=dt.datetime(2000, 1, 2),  # noqa: DTZ001 - hypothesis adds the zone
    max_value=dt.datetime(2026, 11, 22),  # noqa: DTZ001
    timezones=st.sampled_from(
        [
            dt.UTC,
            dt.timezone(dt.timedelta(hours=1)),
            dt.timezone(dt.timedelta(hours=-5, minutes=-30)),
        ]
    ),
)
kwh = st.decimals(min_value=0, max_value=MAX_ENERGY_KWH, places=3)
signed = st.decimals(min_value=-999_999, max_value=999_999, places=3)
relays = st.sampled_from(["on", "off"])
readings = st.builds(
    Reading,
    at=times,
    energy_kwh=kwh,
    relay=relays,
    power_w=st.none() | signed,
    voltage_v=st.none() | st.decimals(min_value=0, max_value=1000, places=1),
    credit_kwh=st.none() | signed,
    tamper=st.booleans(),
)
texts = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)


@given(reading=readings)
def test_single_reading_round_trips(reading):
    message = parse(TELEMETRY, telemetry_payload(reading))
    assert message == Telemetry(serial="SN-001", readings=(reading,))


@given(batch=st.lists(readings, min_size=1, max_size=30))
def test_batch_round_trips(batch):
    message = parse(TELEMETRY, telemetry_payload(*batch, batch=True))
    assert message == Telemetry(serial="SN-001", readings=tuple(batch))


@given(
    ack=st.builds(
        Ack,
        serial=st.just("SN-001"),
        command_id=st.uuids(),
        status=st.sampled_from(["ok", "error"]),
        relay=relays,
        at=times,
        error=st.none() | texts,
        energy_kwh=st.none() | kwh,
        credit_kwh=st.none() | signed,
    )
)
def test_ack_round_trips(ack):
    assert parse(ACK, ack_payload(ack)) == ack


@given(
    status=st.builds(
        Status,
        serial=st.just("SN-001"),
        online=st.booleans(),
        relay=st.none() | relays,
        fw=st.none() | texts,
    )
)
def test_status_round_trips(status):
    assert parse(STATUS, status_payload(status)) == status


# --- Commands --------------------------------------------------------------------------------


@given(
    command_id=st.uuids(),
    action=st.sampled_from(["connect", "disconnect", "read"]),
    issued_at=times,
    validity=st.timedeltas(min_value=dt.timedelta(seconds=1), max_value=dt.timedelta(days=30)),
)
def test_command_payload_round_trips(command_id, action, issued_at, validity):
    body = json.loads(command_payload(command_id, action, issued_at, issued_at + validity))
    assert body == {
        "id": str(command_id),
        "action": action,
        "issued_at": issued_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires_at": (issued_at + validity).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert dt.datetime.fromisoformat(body["issued_at"]) == issued_at.replace(microsecond=0)


def test_command_payload_as_in_the_documentation():
    payload = command_payload(
        command_id=uuid.UUID(COMMAND_ID),
        action="token",
        issued_at=dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        expires_at=dt.datetime(2026, 11, 21, 20, 0, tzinfo=dt.UTC),
        token="123456789",
    )
    assert payload == (
        b'{"id":"9d4c0f0e-2c3a-4c1e-9a53-7f1b2d6a1e10","action":"token",'
        b'"issued_at":"2026-11-21T08:00:00Z","expires_at":"2026-11-21T20:00:00Z",'
        b'"token":"123456789"}'
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "toggle"}, "unknown command action"),
        ({"action": "token"}, "token"),
        ({"action": "connect", "token": "123"}, "token"),
        ({"action": "token", "token": "12a"}, "digits"),
        ({"issued_at": dt.datetime(2026, 11, 21, 8, 0)}, "naive"),  # noqa: DTZ001
        ({"expires_at": dt.datetime(2026, 11, 21, 7, 0, tzinfo=dt.UTC)}, "expire after"),
    ],
)
def test_command_payload_refuses_what_the_protocol_cannot_carry(kwargs, message):
    arguments = {
        "command_id": uuid.uuid4(),
        "action": "connect",
        "issued_at": dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC),
        "expires_at": dt.datetime(2026, 11, 21, 20, 0, tzinfo=dt.UTC),
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        command_payload(**arguments)
