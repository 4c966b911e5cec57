"""How a run executes: caps, failure tolerance, waits. Plain values; the CLI builds them from flags."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from orchestrator.executor.pacing import PacingPolicy
from orchestrator.executor.retrying import RetryPolicy

_TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class Tolerance:
    """How many apps of a wave may fail before the rollout stops: a count (`3`) or a share (`10%`)."""

    count: int | None = 0
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        match = _TOLERANCE.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a count (e.g. 3) or a percentage (e.g. 10%)")
        number, percent = match.groups()
        if percent:
            value = float(number)
            if value > 100:
                raise ValueError(f"{text!r}: a percentage is at most 100%")
            return cls(count=None, percent=value)
        if "." in number:
            raise ValueError(f"{text!r}: a count is a whole number")
        return cls(count=int(number), percent=None)

    def allowed(self, wave_size: int) -> int:
        if self.percent is not None:
            return math.floor(wave_size * self.percent / 100 + 1e-9)
        return self.count or 0

    def exceeded(self, failures: int, wave_size: int) -> bool:
        return failures > self.allowed(wave_size)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True)
class CrashPoint:
    """Test hook: kill this process the n-th time the engine reaches `point` (crash/resume tests)."""

    point: str  # "before-submit" | "after-submit" | "verifying" | "succeeded"
    nth: int

    POINTS = ("before-submit", "after-submit", "verifying", "succeeded")

    @classmethod
    def parse(cls, text: str) -> CrashPoint:
        point, _, nth = text.partition(":")
        if point not in cls.POINTS or not nth.isdigit() or int(nth) < 1:
            raise ValueError(f"{text!r}: expected one of {', '.join(cls.POINTS)} followed by ':N'")
        return cls(point, int(nth))


@dataclass(frozen=True)
class ExecutorSettings:
    # The user's blast-radius limits on apps in progress (all / per subscription). None: ARM's signals
    # alone pace the wave (see executor/pacing.py).
    concurrency: int | None = None
    per_subscription: int | None = None
    failure_tolerance: Tolerance = field(default_factory=Tolerance)
    only_wave: int | None = None
    bake_seconds: float = 0.0
    # Whole-operation retries (failed operations with a transient code, 409 busy, exhausted transport).
    operation_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            attempts=5, deadline_seconds=1800, initial_seconds=5, max_seconds=120
        )
    )
    # Bounded wait for the deny assignment to carry the new exclusions after the operation succeeded.
    verify_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            attempts=10, deadline_seconds=600, initial_seconds=2, max_seconds=60, jitter_seconds=0.5
        )
    )
    # Waiting for an app found mid-operation (after a crash) to reach a terminal provisioning state.
    settle_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            attempts=30, deadline_seconds=3600, initial_seconds=5, max_seconds=60
        )
    )
    # After a write whose answer was lost, how long ARM may take to show that the write landed. The
    # engine writes again only if the app still looks untouched (and idle) after this long.
    write_visibility_seconds: float = 30.0
    pacing: PacingPolicy = field(default_factory=PacingPolicy)
    crash_at: CrashPoint | None = None
    # tenant id → None when an update may start now, else why not (maintenance window closed).
    window_gate: Callable[[str], str | None] | None = None
    # The factor every wait above was multiplied by (`scaled`): `--time-scale`, the emulator's factor.
    time_scale: float = 1.0

    def scaled(self, factor: float) -> ExecutorSettings:
        """Every wait multiplied by `factor` (for a time-scaled emulator); counts unchanged."""
        return replace(
            self,
            time_scale=self.time_scale * factor,
            operation_retry=self.operation_retry.scaled(factor),
            verify_retry=self.verify_retry.scaled(factor),
            settle_retry=self.settle_retry.scaled(factor),
            write_visibility_seconds=self.write_visibility_seconds * factor,
            pacing=self.pacing.scaled(factor),
        )
