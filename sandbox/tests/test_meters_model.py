"""The meter model without a broker: a recording link and a clock the test moves."""

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from openpaygo import generate_token

from sandbox.meters import (
    TOKEN_START_COUNT,
    Category,
    Fleet,
    Meter,
    MeterSpec,
    RecordingLink,
    factory_secret,
    select_share,
)
from sandbox.meters.load import CURVES, WEEK_S

MONDAY = datetime(2026, 11, 16, tzinfo=UTC).timestamp()


@dataclass
class Clock:
    t: float = MONDAY

    def __call__(self) -> float:
        return self.t


def _meter(
    *, prepaid: bool = False, credit: str = "10", interval: float = 60, serial: str = "UNIT-1"
) -> tuple[Meter, RecordingLink, Clock]:
    clock, link = Clock(), RecordingLink()
    spec = MeterSpec.for_serial(serial, prepaid=prepaid)
    meter = Meter(
        spec,
        prefix="p",
        clock=clock,
        link=link,
        interval=interval,
        initial_credit_kwh=Decimal(credit),
        seed="unit",
    )
    return meter, link, clock


def _command(action: str, command_id: str, **extra: str) -> bytes:
    body = {
        "id": command_id,
        "action": action,
        "issued_at": "2026-11-16T00:00:00Z",
        "expires_at": "2100-01-01T00:00:00+01:00",
        **extra,
    }
    return json.dumps(body).encode()


def _sent(link: RecordingLink, kind: str) -> list[dict]:
    return [body for name, body, _ in link.messages if name.endswith("/" + kind)]


@pytest.mark.parametrize("category", list(Category))
def test_the_closed_form_energy_is_the_integral_of_the_load_curve(category):
    curve = CURVES[category]
    start, step = MONDAY + 1234.5, 60.0
    numeric = sum(curve.share(start + (i + 0.5) * step) * step / 3600 for i in range(7 * 24 * 60))
    closed = curve.energy_wh(start + WEEK_S) - curve.energy_wh(start)
    assert closed == pytest.approx(numeric, rel=1e-6)
    assert closed == pytest.approx(curve.cumulative_wh[-1])


def test_households_peak_in_the_evening_and_shops_in_the_day():
    residential, commercial = CURVES[Category.RESIDENTIAL], CURVES[Category.COMMERCIAL]
    # 19:00 and 03:00 in Kinshasa (UTC+1) on a Monday.
    evening, night, noon = MONDAY + 18 * 3600, MONDAY + 2 * 3600, MONDAY + 11 * 3600
    assert residential.share(evening) > 3 * residential.share(night) > 0
    assert commercial.share(noon) > 3 * commercial.share(night) > 0


def test_the_factory_secret_is_the_documented_derivation():
    expected = hmac.new(b"mwolo-sandbox-factory-key", b"SIM-000001", hashlib.sha256).hexdigest()
    assert factory_secret("SIM-000001") == expected[:32]
    assert re.fullmatch(r"[0-9a-f]{32}", factory_secret("SIM-000002"))
    assert factory_secret("SIM-000001", b"other key") != factory_secret("SIM-000001")
    assert MeterSpec.for_serial("SIM-000001", prepaid=True).secret_hex == expected[:32]
    assert MeterSpec.for_serial("SIM-000001", prepaid=False).secret_hex is None


def test_shares_of_the_fleet_are_exact_stable_and_independent():
    serials = [f"SIM-{i:06d}" for i in range(1, 1001)]
    prepaid = select_share(serials, 0.3, "prepaid")
    assert len(prepaid) == 300
    assert prepaid == select_share(list(reversed(serials)), 0.3, "prepaid")
    assert select_share(serials, 0.3, "flaky") != prepaid
    assert select_share(serials, ["SIM-000007", "NOT-IN-FLEET"], "prepaid") == {"SIM-000007"}
    with pytest.raises(ValueError, match="between 0 and 1"):
        select_share(serials, 1.5, "prepaid")


def test_a_register_restarted_from_its_spec_never_goes_backwards():
    meter, _, clock = _meter()
    installed = meter.register_kwh
    meter.handle_command(_command("disconnect", "off-for-a-day"))
    clock.t += 86400
    meter.handle_command(_command("connect", "back-on"))
    clock.t += 86400
    live = meter.register_kwh
    assert live > installed

    # A restarted simulator starts from the spec, which assumes the relay was always on.
    restarted = MeterSpec.for_serial("UNIT-1", prepaid=False).register_at(clock.t)
    assert restarted > live


def test_credit_runs_out_at_the_exact_instant_and_the_relay_opens():
    meter, link, clock = _meter(prepaid=True, credit="1")
    start_register = meter.register_kwh
    meter.set_demand(1000)  # 1 kWh lasts one hour
    clock.t += 2 * 3600
    meter.on_timer()

    assert meter.relay == "off"
    assert meter.credit_kwh == 0
    assert meter.register_kwh == start_register + 1
    cut = [r for r in _sent(link, "telemetry") if r["relay"] == "off"]
    assert len(cut) == 1
    # To the internal resolution of the register (1 mWh is 3.6 ms at 1 kW).
    cut_at = datetime.fromisoformat(cut[0]["at"]).timestamp()
    assert cut_at == pytest.approx(MONDAY + 3600, abs=0.01)
    assert cut[0]["credit_kwh"] == 0
    assert _sent(link, "status")[-1] == {"online": True, "relay": "off", "fw": meter.spec.fw}


def test_tokens_may_be_entered_out_of_order_but_each_only_once():
    meter, _, _ = _meter(prepaid=True, credit="0")
    secret = factory_secret("UNIT-1")
    first_count, first = generate_token(secret_key=secret, count=TOKEN_START_COUNT, value=10)
    _, second = generate_token(secret_key=secret, count=first_count, value=20)
    assert meter.relay == "off"

    assert meter.enter_token(second).accepted
    assert meter.enter_token(first).accepted  # a lost SMS arriving late still counts
    assert not meter.enter_token(first).accepted
    assert not meter.enter_token(second).accepted
    for bad in ("", "12345678901234", "12a456789", "٣٣٣٣٣٣٣٣٣"):
        assert meter.enter_token(bad).error == "invalid_token"
    assert meter.credit_kwh == 30
    assert meter.relay == "on"


def test_the_meter_remembers_at_least_the_last_64_commands():
    meter, link, _ = _meter()
    meter.handle_command(_command("disconnect", "first"))
    for i in range(64):
        meter.handle_command(_command("read", f"read-{i}"))
    meter.handle_command(_command("connect", "last"))
    meter.handle_command(_command("disconnect", "first"))  # re-sent after 65 others

    assert meter.relay == "on"
    assert [a["id"] for a in _sent(link, "ack")].count("first") == 2


def test_a_long_outage_comes_back_in_batches_of_at_most_1000_readings():
    meter, link, clock = _meter(interval=60)
    meter.go_offline()
    for _ in range(2500):
        clock.t += 60
        meter.on_timer()
    meter.handle_command(_command("disconnect", "queued"))
    assert _sent(link, "ack") == []

    meter.come_online()

    kinds = [name.rsplit("/", 1)[1] for name, _, _ in link.messages]
    assert kinds == ["status", "status", "telemetry", "telemetry", "telemetry", "status", "ack"]
    batches = [b["readings"] for b in _sent(link, "telemetry")]
    assert [len(b) for b in batches] == [1000, 1000, 500]
    energies = [Decimal(str(r["energy_kwh"])) for b in batches for r in b]
    assert energies == sorted(energies)
    assert _sent(link, "ack")[0]["relay"] == "off"


def test_a_relay_switched_by_hand_is_reported_and_a_command_puts_it_back():
    meter, link, _ = _meter()
    meter.handle_command(_command("disconnect", "cut"))

    meter.switch_by_hand(on=True)  # the client bridges the cut

    assert meter.relay == "on"
    assert _sent(link, "status")[-1] == {"online": True, "relay": "on", "fw": meter.spec.fw}
    assert _sent(link, "telemetry")[-1]["relay"] == "on"
    meter.handle_command(_command("disconnect", "again"))
    assert meter.relay == "off"


def test_a_stuck_relay_refuses_to_move_until_repaired():
    meter, link, _ = _meter()
    meter.set_relay_stuck(True)

    meter.handle_command(_command("disconnect", "stuck"))

    assert meter.relay == "on"
    ack = _sent(link, "ack")[-1]
    assert (ack["status"], ack["error"], ack["relay"]) == ("error", "relay_fault", "on")
    meter.set_relay_stuck(False)
    meter.handle_command(_command("disconnect", "repaired"))
    assert meter.relay == "off"


def test_a_flaky_meter_loses_acks_and_telemetry_but_not_its_status():
    meter, link, _ = _meter()
    meter.set_flaky(1.0)
    meter.handle_command(_command("disconnect", "lost"))
    meter.handle_command(_command("read", "lost-too"))
    assert _sent(link, "ack") == []
    assert _sent(link, "telemetry") == []
    assert _sent(link, "status")[-1]["relay"] == "off"


def test_a_fleet_refuses_serials_and_prefixes_that_would_break_topics():
    with pytest.raises(ValueError, match="serials"):
        Fleet(serials=["SIM-1", "bad/serial"])
    with pytest.raises(ValueError, match="serials"):
        Fleet(serials=["+"])
    with pytest.raises(ValueError, match="prefix"):
        Fleet(prefix="mwolo/#", count=1)
    with pytest.raises(ValueError, match="count"):
        Fleet(count=0)
    assert Fleet(count=3, serial_prefix="ABC").serials == ["ABC-000001", "ABC-000002", "ABC-000003"]
