"""Bounded concurrency and pacing that adapts to ARM throttling, per subscription.

Two caps: at most `global_limit` apps in progress across the run, and at most `per_subscription` in
one subscription. ARM throttles per subscription (and per principal), so pacing is per subscription
too: `x-ms-ratelimit-remaining-subscription-writes/reads` running low widens the gap between calls,
a 429's `Retry-After` closes the subscription's gate until then. An app waits for its subscription's
gate *before* taking a global slot, so a throttled subscription slows down without holding slots the
other subscriptions could use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.gateway import CallInfo

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
CallKind = Literal["read", "write"]


@dataclass(frozen=True)
class PacingPolicy:
    # Start spacing calls when ARM says fewer than this many remain in the subscription's bucket.
    low_water: int = 20
    # The gap to start from (ARM refills write tokens at about 10 per second per subscription).
    base_interval: float = 0.1
    max_interval: float = 5.0

    def scaled(self, factor: float) -> PacingPolicy:
        return PacingPolicy(self.low_water, self.base_interval * factor, self.max_interval * factor)


@dataclass
class _Gate:
    semaphore: asyncio.Semaphore
    not_before: float = 0.0  # closed until then (Retry-After)
    interval: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "write": 0.0})
    last: dict[str, float] = field(default_factory=lambda: {"read": float("-inf"), "write": float("-inf")})
    in_flight: int = 0


class Pacer:
    def __init__(
        self,
        *,
        global_limit: int,
        per_subscription: int,
        policy: PacingPolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if global_limit < 1 or per_subscription < 1:
            raise ValueError("concurrency limits must be at least 1")
        self.global_limit = global_limit
        self.per_subscription = per_subscription
        self.policy = policy or PacingPolicy()
        self._clock = clock
        self._sleep = sleep
        self._global = asyncio.Semaphore(global_limit)
        self._gates: dict[str, _Gate] = {}
        self.in_flight = 0
        self.peak_in_flight = 0
        self.peak_per_subscription: dict[str, int] = {}
        self.throttle_events = 0

    def _gate(self, subscription_id: str) -> _Gate:
        key = subscription_id.lower()
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(asyncio.Semaphore(self.per_subscription))
        return gate

    @asynccontextmanager
    async def slot(self, subscription_id: str) -> AsyncIterator[None]:
        """Hold one app's place: a subscription slot, its pacing gate, then a global slot."""
        gate = self._gate(subscription_id)
        async with gate.semaphore:
            await self._wait_gate(gate, "write", reserve=False)
            async with self._global:
                gate.in_flight += 1
                self.in_flight += 1
                key = subscription_id.lower()
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                self.peak_per_subscription[key] = max(self.peak_per_subscription.get(key, 0), gate.in_flight)
                try:
                    yield
                finally:
                    gate.in_flight -= 1
                    self.in_flight -= 1

    async def before_call(self, subscription_id: str, kind: CallKind) -> None:
        """Wait until a call of this kind to the subscription is due, and claim its turn."""
        await self._wait_gate(self._gate(subscription_id), kind, reserve=True)

    async def _wait_gate(self, gate: _Gate, kind: CallKind, *, reserve: bool) -> None:
        while True:
            now = self._clock()
            due = max(gate.not_before, gate.last[kind] + gate.interval[kind])
            if due <= now:
                if reserve:
                    gate.last[kind] = now
                return
            await self._sleep(due - now)

    def observe(self, subscription_id: str, info: CallInfo) -> None:
        """Adapt the gap between calls to what ARM says remains in the subscription's buckets."""
        gate = self._gate(subscription_id)
        for kind, remaining in (("write", info.remaining_writes), ("read", info.remaining_reads)):
            if remaining is None:
                continue
            current = gate.interval[kind]
            if remaining <= self.policy.low_water:
                widened = current * 2 if current > 0 else self.policy.base_interval
                gate.interval[kind] = min(widened, self.policy.max_interval)
            elif remaining > 2 * self.policy.low_water and current > 0:
                narrowed = current / 2
                gate.interval[kind] = 0.0 if narrowed < self.policy.base_interval / 4 else narrowed

    def throttled(self, subscription_id: str, retry_after: float | None) -> None:
        """A 429 reached us (the transport's retries were exhausted): close the gate for a while."""
        gate = self._gate(subscription_id)
        self.throttle_events += 1
        wait = retry_after if retry_after is not None else max(self.policy.base_interval * 10, 1e-3)
        gate.not_before = max(gate.not_before, self._clock() + wait)
        for kind in ("read", "write"):
            gate.interval[kind] = min(
                max(gate.interval[kind] * 2, self.policy.base_interval), self.policy.max_interval
            )
