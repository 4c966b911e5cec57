"""Durations in the executor's policies, and the one way they follow a time-scaled emulator.

A policy marks its duration fields with `seconds(...)`; `scaled` multiplies exactly those, so counts
and shares stay as they are and a new duration cannot be forgotten by a hand-written copy.
"""

from __future__ import annotations

from dataclasses import field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Policy = TypeVar("Policy", bound=DataclassInstance)
else:
    Policy = TypeVar("Policy")

_DURATION = "duration"


def seconds(default: float) -> Any:
    """A dataclass field holding a duration in seconds (scaled by `scaled`)."""
    return field(default=default, metadata={_DURATION: True})


def scaled(policy: Policy, factor: float) -> Policy:
    """`policy` with every duration multiplied by `factor` (emulator time scale, tests)."""
    changes = {f.name: getattr(policy, f.name) * factor for f in fields(policy) if f.metadata.get(_DURATION)}
    return replace(policy, **changes)
