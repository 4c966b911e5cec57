"""A fingerprint of what `apply` must find unchanged in an app since it was planned.

Computed over a normalised summary (ids lower-cased, exclusions normalised, deduplicated and sorted)
so that re-reading the same state in another order or spelling yields the same value.
"""

from __future__ import annotations

import hashlib
import json

from orchestrator.models import App, AppStateSummary, MarketplacePlan
from orchestrator.planning.actions import dedupe, normalise


def _lower(value: str | None) -> str | None:
    return value.strip().casefold() if value is not None else None


def _normalised(patterns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(normalise(p) for p in dedupe(patterns))


def summarize(app: App) -> AppStateSummary:
    """The normalised state of `app` that the fingerprint covers."""
    plan = app.plan
    if plan is not None:
        plan = MarketplacePlan(
            publisher=plan.publisher.casefold(),
            product=plan.product.casefold(),
            name=plan.name.casefold(),
            version=plan.version.strip(),
        )
    deny = app.deny_assignment
    return AppStateSummary(
        definition_id=_lower(app.definition_id),
        plan=plan,
        provisioning_state=app.provisioning_state.strip(),
        managed_resource_group_id=_lower(app.managed_resource_group_id) or "",
        has_deny_assignment=deny is not None,
        not_actions=_normalised(deny.not_actions) if deny else (),
        not_data_actions=_normalised(deny.not_data_actions) if deny else (),
    )


def fingerprint(app: App) -> str:
    """sha256 (hex, prefixed) over the canonical JSON of the app id and its normalised state."""
    return fingerprint_of(app.id, summarize(app))


def fingerprint_of(app_id: str, summary: AppStateSummary) -> str:
    """`fingerprint` from an already computed summary (the planner stores both)."""
    body = {"app_id": _lower(app_id), "state": summary.model_dump(mode="json")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _plan_text(plan: MarketplacePlan | None) -> str:
    return "none" if plan is None else f"{plan.publisher}/{plan.product}/{plan.name}@{plan.version}"


def describe_difference(old: AppStateSummary, new_app: App) -> str:
    """One line saying what changed between the planned state and `new_app` ("" when nothing did)."""
    new = summarize(new_app)
    changes: list[str] = []
    if old.definition_id != new.definition_id:
        changes.append(f"definition {old.definition_id or 'none'} → {new.definition_id or 'none'}")
    if old.plan != new.plan:
        changes.append(f"plan {_plan_text(old.plan)} → {_plan_text(new.plan)}")
    if old.provisioning_state != new.provisioning_state:
        changes.append(f"provisioning state {old.provisioning_state} → {new.provisioning_state}")
    if old.managed_resource_group_id != new.managed_resource_group_id:
        changes.append("managed resource group changed")
    if old.has_deny_assignment != new.has_deny_assignment:
        changes.append("deny assignment " + ("appeared" if new.has_deny_assignment else "disappeared"))
    for label, before, after in (
        ("excluded actions", old.not_actions, new.not_actions),
        ("excluded data actions", old.not_data_actions, new.not_data_actions),
    ):
        gained = sorted(set(after) - set(before))
        lost = sorted(set(before) - set(after))
        if gained or lost:
            parts = [f"+{a}" for a in gained] + [f"-{a}" for a in lost]
            changes.append(f"{label} {' '.join(parts)}")
    return "; ".join(changes)
