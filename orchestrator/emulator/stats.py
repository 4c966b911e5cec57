"""Counters for the admin surface: what the orchestrator did to the emulator."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # "<route kind> <status>"
    routes: Counter[str] = field(default_factory=Counter)  # "<method> <route name>": which calls
    writes_per_app: Counter[str] = field(default_factory=Counter)
    max_concurrent_ops_per_app: dict[str, int] = field(default_factory=dict)
    conflicting_writes: int = 0  # writes refused (409) because an operation on the app was running
    # Accepted updates asking for what the app's last operation had already given it, successfully.
    writes_after_success: Counter[str] = field(default_factory=Counter)
    cross_tenant_attempts: int = 0
    expired_token_attempts: int = 0
    unauthenticated_attempts: int = 0
    throttled: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    tokens_issued: int = 0
    token_failures: int = 0

    def as_json(self, operations_in_flight: int) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "requests_total": sum(self.requests.values()),
            "routes": dict(sorted(self.routes.items())),
            "writes_per_app": dict(sorted(self.writes_per_app.items())),
            "max_concurrent_ops_per_app": dict(sorted(self.max_concurrent_ops_per_app.items())),
            "operations_in_flight": operations_in_flight,
            "conflicting_writes": self.conflicting_writes,
            "writes_after_success": sum(self.writes_after_success.values()),
            "writes_after_success_per_app": dict(sorted(self.writes_after_success.items())),
            "cross_tenant_attempts": self.cross_tenant_attempts,
            "expired_token_attempts": self.expired_token_attempts,
            "unauthenticated_attempts": self.unauthenticated_attempts,
            "throttled_429": self.throttled,
            "faults_injected": dict(sorted(self.faults_injected.items())),
            "tokens_issued": self.tokens_issued,
            "token_failures": self.token_failures,
        }
