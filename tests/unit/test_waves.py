"""Wave assignment: canary first, then steps by count or percentage, deterministic."""

from __future__ import annotations

import pytest

from orchestrator.models import WaveSpec
from orchestrator.planning.waves import WaveMember, assign_waves, parse_step, parse_steps


def _members(n: int, ring: str = "main", prefix: str = "app") -> list[WaveMember]:
    return [WaveMember(app_id=f"/apps/{prefix}{i}", ring=ring) for i in range(n)]


def test_canary_ring_first_then_percentages_of_the_rest() -> None:
    members = _members(3, ring="Canary", prefix="c") + _members(10)
    waves = assign_waves(members, WaveSpec(canary_ring="canary", steps=("25%", "100%")))
    assert [(w.index, w.name, len(w.app_ids)) for w in waves] == [
        (0, "canary", 3),
        (1, "wave-1", 3),
        (2, "wave-2", 7),
    ]
    assert set(waves[0].app_ids) == {m.app_id for m in members if m.ring == "Canary"}
    placed = [a for w in waves for a in w.app_ids]
    assert sorted(placed) == sorted(m.app_id for m in members)


def test_no_canary_wave_when_no_tenant_is_in_the_ring() -> None:
    waves = assign_waves(_members(5), WaveSpec(steps=("2",)))
    assert [(w.index, w.name, len(w.app_ids)) for w in waves] == [
        (0, "wave-1", 2),
        (1, "wave-2", 2),
        (2, "wave-3", 1),
    ]


def test_last_step_repeats_and_counts_mix_with_percentages() -> None:
    waves = assign_waves(_members(100), WaveSpec(steps=("1", "10%", "30")))
    assert [len(w.app_ids) for w in waves] == [1, 10, 30, 30, 29]


def test_small_percentages_still_place_at_least_one_app() -> None:
    waves = assign_waves(_members(3), WaveSpec(steps=("1%",)))
    assert [len(w.app_ids) for w in waves] == [1, 1, 1]


def test_deterministic_whatever_the_input_order() -> None:
    members = _members(40)
    spec = WaveSpec(steps=("5", "25%"))
    assert assign_waves(members, spec) == assign_waves(list(reversed(members)), spec)


def test_empty_input_gives_no_waves() -> None:
    assert assign_waves([], WaveSpec()) == ()


@pytest.mark.parametrize("bad", ["", "abc", "0", "-5", "0%", "150%", "2.5", "%", "10 apps"])
def test_invalid_steps_are_rejected_with_a_clear_message(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid wave step"):
        parse_step(bad)
    with pytest.raises(ValueError, match="invalid wave step"):
        assign_waves(_members(1), WaveSpec(steps=("10", bad)))


def test_empty_steps_are_rejected() -> None:
    with pytest.raises(ValueError, match="wave steps are empty"):
        parse_steps(())


def test_valid_steps_parse() -> None:
    assert parse_step("10").count == 10
    assert parse_step(" 12.5% ").percent == 12.5
