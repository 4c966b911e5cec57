"""Seeded fault injection, per operation kind and optionally per application name pattern.

A rule: {"kind": read|list|write|poll|token|any, "action": ..., "probability": 1.0, "first": N,
"app": "glob", ...}. Actions: "429", "500", "503", "reset", "slow" (delay_ms), "fail_transient",
"fail_permanent" (the write is accepted, its operation ends Failed), "deny_delay" (seconds, time-scaled:
the deny assignment converges that long after the operation succeeded), and the two faults a real
network produces after a request arrived: "drop_response" (the request is handled, e.g. the write is
applied, then the connection is closed before any byte of the answer) and "drop_mid_body" (handled,
then the status line, headers and half the body are sent and the connection is closed). "reset"
closes the connection before the request is handled. See docs/emulator.md.
"""

from __future__ import annotations

import fnmatch
import json
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = {"read", "list", "write", "poll", "token", "any"}
RESPONSE_ACTIONS = {"429", "500", "503", "reset"}
AFTER_HANDLING_ACTIONS = {"drop_response", "drop_mid_body"}
OPERATION_ACTIONS = {"fail_transient", "fail_permanent", "deny_delay"}
ACTIONS = RESPONSE_ACTIONS | AFTER_HANDLING_ACTIONS | OPERATION_ACTIONS | {"slow"}

TRANSIENT_FAILURE = (
    "InternalServerError",
    "The deployment of the managed application failed with a transient error; retry the operation.",
)
PERMANENT_FAILURE = (
    "ApplicationDefinitionInvalid",
    "The application definition's main template is invalid (InvalidTemplate); the operation cannot succeed.",
)


@dataclass
class FaultRule:
    kind: str
    action: str
    probability: float = 1.0
    first: int | None = None  # only the first N matching requests
    app: str | None = None  # fnmatch pattern on the application name (case-insensitive)
    delay_ms: float = 0.0  # slow
    retry_after: float = 1.0  # 429: seconds, time-scaled
    deny_delay: float = 30.0  # deny_delay: seconds, time-scaled
    seen: int = field(default=0, compare=False)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> FaultRule:
        allowed = {"kind", "action", "probability", "first", "app", "delay_ms", "retry_after", "deny_delay"}
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"fault rule has unknown keys {sorted(unknown)}")
        rule = cls(**{k: raw[k] for k in raw})
        rule.action = str(rule.action)
        if rule.kind not in KINDS:
            raise ValueError(f"fault rule kind {rule.kind!r} is not one of {sorted(KINDS)}")
        if rule.action not in ACTIONS:
            raise ValueError(f"fault rule action {rule.action!r} is not one of {sorted(ACTIONS)}")
        if not 0 <= rule.probability <= 1:
            raise ValueError("fault rule probability must be within 0..1")
        return rule

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "action": self.action, "probability": self.probability}
        for key in ("first", "app"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(delay_ms=self.delay_ms, retry_after=self.retry_after, deny_delay=self.deny_delay)
        out["seen"] = self.seen
        return out


@dataclass
class FaultPlan:
    """What fired for one request."""

    delay_ms: float = 0.0
    response: FaultRule | None = None
    operation: list[FaultRule] = field(default_factory=list)
    after: FaultRule | None = None  # drop_response / drop_mid_body: once the handler has run


class FaultEngine:
    def __init__(self, seed: int = 0, rules: list[FaultRule] | None = None) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self.rules: list[FaultRule] = rules or []

    def replace(self, rules: list[FaultRule]) -> None:
        self.rules = rules
        self._rng = random.Random(self._seed)

    def evaluate(self, kind: str, app_name: str | None = None) -> FaultPlan | None:
        if not self.rules:
            return None
        plan = FaultPlan()
        fired = False
        for rule in self.rules:
            if rule.kind not in (kind, "any"):
                continue
            if rule.app is not None and (
                app_name is None or not fnmatch.fnmatch(app_name.lower(), rule.app.lower())
            ):
                continue
            if rule.action in OPERATION_ACTIONS and kind != "write":
                continue
            if rule.action in RESPONSE_ACTIONS and plan.response is not None:
                continue  # one response fault per request; later rules keep their "first N" budget
            if rule.action in AFTER_HANDLING_ACTIONS and plan.after is not None:
                continue
            rule.seen += 1
            if rule.first is not None and rule.seen > rule.first:
                continue
            if rule.probability < 1 and self._rng.random() >= rule.probability:
                continue
            fired = True
            if rule.action == "slow":
                plan.delay_ms += rule.delay_ms
            elif rule.action in RESPONSE_ACTIONS:
                plan.response = plan.response or rule
            elif rule.action in AFTER_HANDLING_ACTIONS:
                plan.after = rule
            else:
                plan.operation.append(rule)
        return plan if fired else None


def parse_rules(raw: Any) -> list[FaultRule]:
    """Accept {"rules": [...]} or a bare list."""
    if isinstance(raw, dict):
        raw = raw.get("rules", [])
    if not isinstance(raw, list):
        raise ValueError('faults must be a list of rules or {"rules": [...]}')
    return [FaultRule.parse(r) for r in raw]


def load_rules(path: Path) -> list[FaultRule]:
    text = path.read_text(encoding="utf-8")
    raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    return parse_rules(raw)
