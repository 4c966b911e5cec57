"""ARM-like token-bucket throttling per subscription and per tenant, reads/writes/deletes apart.

Defaults are ARM's published regional limits (learn.microsoft.com, "Request limits and throttling",
2024 token-bucket table): subscription and tenant reads 250 bucket / 25 per s refill, writes and
deletes 200 bucket / 10 per s. Refill is time-scaled: with time scale 0.01 it is 100x faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Scaler = Callable[[float], float]

DEFAULT_LIMITS: dict[str, tuple[float, float]] = {
    # operation class: (bucket size, refill per second)
    "reads": (250.0, 25.0),
    "writes": (200.0, 10.0),
    "deletes": (200.0, 10.0),
}


@dataclass
class Bucket:
    size: float
    refill: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def _refill(self, now: float, scaled: Scaler) -> None:
        rate = self.refill / max(scaled(1.0), 1e-9)  # tokens per real second
        self.tokens = min(self.size, self.tokens + max(0.0, now - self.stamp) * rate)
        self.stamp = max(self.stamp, now)

    def take(self, now: float, scaled: Scaler) -> float:
        """Take one token; return 0 on success, else the (real) seconds until one is available."""
        self._refill(now, scaled)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return scaled((1 - self.tokens) / self.refill)


@dataclass
class ThrottleDecision:
    wait: float  # 0: allowed
    scope: str  # "subscription" | "tenant"
    headers: dict[str, str]


class Throttler:
    def __init__(self, limits: dict[str, tuple[float, float]] | None = None) -> None:
        self.limits = dict(limits or DEFAULT_LIMITS)
        self._buckets: dict[tuple[str, str, str], Bucket] = {}

    def _bucket(self, scope: str, key: str, op: str) -> Bucket:
        k = (scope, key, op)
        bucket = self._buckets.get(k)
        if bucket is None:
            size, refill = self.limits[op]
            bucket = self._buckets[k] = Bucket(size, refill, size)
        return bucket

    def reset(self) -> None:
        self._buckets.clear()

    def check(
        self, subscription: str | None, tenant: str | None, op: str, scaled: Scaler
    ) -> ThrottleDecision:
        """Take a token from the subscription's and the tenant's bucket; `scaled` is the runtime's
        time scale (Runtime.scaled): refill and waits are in emulated seconds."""
        now = time.monotonic()
        headers: dict[str, str] = {}
        wait, scope = 0.0, ""
        for name, key in (("subscription", subscription), ("tenant", tenant)):
            if not key:
                continue
            bucket = self._bucket(name, key.lower(), op)
            w = bucket.take(now, scaled) if wait == 0 else 0.0
            if w > 0 and wait == 0:
                wait, scope = w, name
            headers[f"x-ms-ratelimit-remaining-{name}-{op}"] = str(int(bucket.tokens))
        return ThrottleDecision(wait, scope, headers)
