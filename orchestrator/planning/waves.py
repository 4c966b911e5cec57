"""Deterministic wave assignment: the canary ring first, then the rest in configured steps.

Steps are counts ("10") or percentages ("25%") of the non-canary apps; the last step repeats until
every app is placed. Apps are placed in the order of a stable hash of their id, so the result does
not depend on listing order and each wave mixes tenants instead of taking them alphabetically.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.models import Wave, WaveSpec

CANARY_WAVE_NAME = "canary"
_STEP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class WaveMember:
    """An app to place: its id and its tenant's ring label."""

    app_id: str
    ring: str


@dataclass(frozen=True)
class Step:
    count: int | None = None  # an absolute number of apps
    percent: float | None = None  # a share of the non-canary apps

    def size(self, pool: int) -> int:
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return max(1, math.ceil(pool * self.percent / 100))


def parse_step(text: str) -> Step:
    """One step: a positive whole count ("10") or a percentage in (0, 100] ("25%")."""
    match = _STEP.match(text)
    hint = 'use a count like "10" or a percentage like "25%"'
    if match is None:
        raise ValueError(f"invalid wave step {text!r}: {hint}")
    number, percent = match.group(1), match.group(2)
    if percent:
        value = float(number)
        if not 0 < value <= 100:
            raise ValueError(f"invalid wave step {text!r}: a percentage must be above 0% and at most 100%")
        return Step(percent=value)
    if "." in number or int(number) < 1:
        raise ValueError(f"invalid wave step {text!r}: a count must be a whole number of at least 1")
    return Step(count=int(number))


def parse_steps(steps: Sequence[str]) -> tuple[Step, ...]:
    """Every step, validated; raises ValueError naming the first bad one."""
    if not steps:
        raise ValueError('wave steps are empty: give at least one, e.g. "100%"')
    return tuple(parse_step(s) for s in steps)


def _placement_key(app_id: str) -> tuple[str, str]:
    key = app_id.strip().casefold()
    return hashlib.sha256(key.encode("utf-8")).hexdigest(), key


def assign_waves(members: Sequence[WaveMember], spec: WaveSpec) -> tuple[Wave, ...]:
    """Waves in order: "canary" (tenants in the canary ring, if any), then "wave-1", "wave-2", ..."""
    steps = parse_steps(spec.steps)
    canary_ring = spec.canary_ring.strip().casefold()
    ordered = sorted({m.app_id: m for m in members}.values(), key=lambda m: _placement_key(m.app_id))
    canary = [m.app_id for m in ordered if canary_ring and m.ring.strip().casefold() == canary_ring]
    rest = [m.app_id for m in ordered if not (canary_ring and m.ring.strip().casefold() == canary_ring)]

    waves: list[Wave] = []
    if canary:
        waves.append(Wave(index=0, name=CANARY_WAVE_NAME, app_ids=tuple(canary)))
    placed, step_index = 0, 0
    while placed < len(rest):
        step = steps[min(step_index, len(steps) - 1)]
        size = step.size(len(rest))
        chunk = rest[placed : placed + size]
        waves.append(Wave(index=len(waves), name=f"wave-{step_index + 1}", app_ids=tuple(chunk)))
        placed += len(chunk)
        step_index += 1
    return tuple(waves)
