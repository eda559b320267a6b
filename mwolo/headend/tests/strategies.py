"""Hypothesis strategies for what a broken or hostile meter may send."""

from hypothesis import strategies as st

from .meters import encode

COMMAND_ID = "9d4c0f0e-2c3a-4c1e-9a53-7f1b2d6a1e10"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: json.dumps writes them
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "at",
    "energy_kwh",
    "relay",
    "power_w",
    "voltage_v",
    "credit_kwh",
    "tamper",
    "readings",
    "id",
    "status",
    "error",
    "online",
    "fw",
]
time_texts = st.sampled_from(
    [
        "2026-11-21T08:15:00Z",
        "2026-11-21T08:15:00",
        "2026-11-21T08:15:00+14:00",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "",
    ]
) | st.text(max_size=30)
field_values = (
    json_values
    | time_texts
    | st.sampled_from(["on", "off", "ok", "error", COMMAND_ID])
    | st.integers(0, 25).flatmap(
        lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places)
    )
)
near_valid_objects = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=8) | st.builds(
    lambda items: {"readings": items},
    st.lists(st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=6), max_size=4),
)


def junk_payloads() -> st.SearchStrategy[bytes]:
    """Random bytes, random JSON, and objects with the protocol's fields and random values."""
    return st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda value: encode(value).encode()),
        near_valid_objects.map(lambda obj: encode(obj).encode()),
    )
