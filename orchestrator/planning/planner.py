"""The planner: a pure function from (snapshot, target, options) to a plan a reviewer signs off.

For every app it decides one of:
- `update`: move it to the target (or re-apply the target when its deny assignment lacks the target's
  exclusions), with the exclusions added and removed, pattern-aware;
- `current`: already on the target, and its deny assignment carries the target's exclusions;
- `drifted`: its deny assignment differs from what its own current definition implies (a human
  looks first; apply never writes it);
- `skip`: with the reason (state, lock level, kind or plan the target does not fit, unknown definition,
  "different product": a service-catalog definition outside the target's lineage).

Risk flags (`risks.py`) judge what an update changes *in effect*. Whether an app is on the target is
the one rule of `checks.on_release`, which the engine and `verify` use too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrator.errors import TargetError
from orchestrator.models import (
    TERMINAL_SUCCESS,
    ActionChange,
    App,
    AppKind,
    Decision,
    Definition,
    DenyAssignment,
    LockLevel,
    MarketplacePlan,
    Plan,
    PlanCounts,
    PlanItem,
    PlanOptions,
    Risk,
    Snapshot,
    Target,
    TenantInventory,
)
from orchestrator.planning.actions import diff
from orchestrator.planning.checks import is_marketplace, key, on_release, same_offer
from orchestrator.planning.derive import expected_deny, implied_lock_level
from orchestrator.planning.fingerprint import fingerprint_of, summarize
from orchestrator.planning.lineage import describe as describe_lineage
from orchestrator.planning.lineage import in_lineage
from orchestrator.planning.risks import backticked, principal_change, risks
from orchestrator.planning.waves import WaveMember, assign_waves, parse_steps


def _short_id(resource_id: str | None) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] if resource_id else "none"


def _plan_text(plan: MarketplacePlan) -> str:
    return f"{plan.publisher}/{plan.product}/{plan.name}@{plan.version}"


@dataclass(frozen=True)
class _Outcome:
    decision: Decision
    reason: str
    change: ActionChange = ActionChange()  # noqa: RUF009 (immutable pydantic value)
    risks: tuple[Risk, ...] = ()


# --- fit: does the target apply to this app at all? -----------------------------------------------


def _misfit(app: App, target: Target) -> str | None:
    # One release may be published on both channels: a target names a definition for service-catalog
    # instances, a plan version for marketplace instances, or both.
    kind = key(app.kind)
    if kind == key(AppKind.MARKETPLACE):
        if target.plan is None:
            return "the target names no marketplace plan version (for this MarketPlace instance)"
        if app.plan is None:
            return "MarketPlace instance without a marketplace plan"
        if not same_offer(app.plan, target.plan):
            return (
                f"marketplace plan {app.plan.publisher}/{app.plan.product}/{app.plan.name} is not the "
                f"target's {target.plan.publisher}/{target.plan.product}/{target.plan.name}"
            )
        return None
    if kind != key(AppKind.SERVICE_CATALOG):
        return f"kind {app.kind}: neither ServiceCatalog nor MarketPlace"
    if target.definition_id is None:
        return "the target names no application definition (for this ServiceCatalog instance)"
    if not app.definition_id:
        return "ServiceCatalog instance without an application definition id"
    if not in_lineage(app.definition_id, target):
        return (
            f"different product: definition {_short_id(app.definition_id)} is not one the target "
            f"replaces ({describe_lineage(target)})"
        )
    return None


def _on_target(app: App, target: Target) -> bool:
    return on_release(app, target.definition_id, target.plan)


def _from_text(app: App) -> str:
    return _plan_text(app.plan) if app.plan is not None else _short_id(app.definition_id)


def _to_text(app: App, target: Target) -> str:
    if is_marketplace(app) and target.plan is not None:
        return _plan_text(target.plan)
    return _short_id(target.definition_id)


# --- comparing a deny assignment with what a definition implies -----------------------------------


def _deviation(deny: DenyAssignment, definition: Definition) -> str | None:
    """How `deny` differs from what `definition` implies, or None when it carries exactly that."""
    expected = expected_deny(definition)
    assert expected is not None  # callers rule out lock level None
    problems: list[str] = []
    lock = implied_lock_level(deny)
    if lock != definition.lock_level:
        problems.append(
            f"denies {list(deny.actions)} (lock level {lock or 'unknown'}, not {definition.lock_level})"
        )
    for label, actual, wanted in (
        ("actions", deny.not_actions, expected[0]),
        ("data actions", deny.not_data_actions, expected[1]),
    ):
        extra, missing = diff(wanted, actual)
        if missing:
            problems.append(f"lacks excluded {label} {backticked(missing)}")
        if extra:
            problems.append(f"also excludes {label} {backticked(extra)}")
    return "; ".join(problems) or None


# --- one app -------------------------------------------------------------------------------------


def _change(deny: DenyAssignment | None, expected: tuple[tuple[str, ...], tuple[str, ...]]) -> ActionChange:
    old_actions = deny.not_actions if deny else ()
    old_data = deny.not_data_actions if deny else ()
    actions_added, actions_removed = diff(old_actions, expected[0])
    data_added, data_removed = diff(old_data, expected[1])
    return ActionChange(
        actions_added=actions_added,
        actions_removed=actions_removed,
        data_actions_added=data_added,
        data_actions_removed=data_removed,
    )


def _change_text(change: ActionChange) -> str:
    if change.empty:
        return "exclusions unchanged"
    parts = []
    for sign, patterns, noun in (
        ("+", change.actions_added, "excluded action"),
        ("-", change.actions_removed, "excluded action"),
        ("+", change.data_actions_added, "excluded data action"),
        ("-", change.data_actions_removed, "excluded data action"),
    ):
        if patterns:
            parts.append(f"{sign}{len(patterns)} {noun}{'' if len(patterns) == 1 else 's'}")
    return ", ".join(parts)


def _current_definition(app: App, target: Target, snapshot: Snapshot) -> Definition | None:
    if _on_target(app, target):
        return target.definition
    if app.definition_id:
        return snapshot.definitions.get(key(app.definition_id))
    return None  # a marketplace plan version: its allowed actions live in the offer, not in ARM


# Paths apply writes (config.WRITING_PATHS); the others' updates go into customer kits, not waves.
_WRITING = frozenset({"direct", "delegated"})


def _decide(app: App, target: Target, snapshot: Snapshot) -> _Outcome:
    outcome = _decide_ignoring_access(app, target, snapshot)
    if outcome.decision == Decision.UPDATE and app.writable is False:
        # Marked here rather than failed at apply: the reviewer sees which customers must grant access.
        return _Outcome(
            Decision.SKIP,
            f"no write access to resource group {app.resource_group} (would: {outcome.reason}); "
            "see `orchestrator doctor`",
            outcome.change,
            outcome.risks,
        )
    return outcome


def _decide_ignoring_access(app: App, target: Target, snapshot: Snapshot) -> _Outcome:
    misfit = _misfit(app, target)
    if misfit:
        return _Outcome(Decision.SKIP, misfit)
    if app.provisioning_state.strip() != TERMINAL_SUCCESS:
        return _Outcome(
            Decision.SKIP, f"provisioning state is {app.provisioning_state}, not {TERMINAL_SUCCESS}"
        )
    if target.definition.lock_level == "None":
        return _Outcome(
            Decision.SKIP,
            "the target's lock level is None: it places no deny assignment (moving would drop the "
            "app's protection; a human decides)",
        )
    if app.deny_assignment is None and app.deny_assignment_problem:
        # Without knowing which deny assignment is the app's, neither a diff nor a verification means
        # anything; re-applying would not tell them apart either.
        return _Outcome(
            Decision.DRIFTED,
            f"its system deny assignment cannot be told apart: {app.deny_assignment_problem}",
        )
    if _on_target(app, target):
        return _current_or_reapply(app, target)
    return _move(app, target, snapshot)


def _target_deny(target: Target) -> tuple[tuple[str, ...], tuple[str, ...]]:
    expected = expected_deny(target.definition)
    assert expected is not None  # callers rule out lock level None
    return expected


def _current_or_reapply(app: App, target: Target) -> _Outcome:
    """An app on the target: current when its deny assignment is the target's, else re-apply it."""
    deny = app.deny_assignment
    deviation = _deviation(deny, target.definition) if deny else None
    added, dropped = principal_change(deny, target)
    if deny is not None and deviation is None and not (added or dropped):
        return _Outcome(Decision.CURRENT, f"already on {_to_text(app, target)} with the expected exclusions")
    if deny is None:
        why = "no system deny assignment was found"
    elif deviation is not None:
        why = f"its deny assignment {deviation}"
    else:
        why = "its excluded principals differ from the target's authorizations"
    change = _change(deny, _target_deny(target))
    return _Outcome(
        Decision.UPDATE,
        f"already on {_to_text(app, target)} but {why}: re-apply",
        change,
        risks(change, target, implied_lock_level(deny) if deny else None, app),
    )


def _move(app: App, target: Target, snapshot: Snapshot) -> _Outcome:
    """An app on another release: update it, unless its own state says a human looks first."""
    deny = app.deny_assignment
    current = _current_definition(app, target, snapshot)
    if app.definition_id and current is None:
        return _Outcome(
            Decision.SKIP,
            f"current definition {_short_id(app.definition_id)} is unknown (not in the snapshot)",
        )
    lock_before: LockLevel | None = current.lock_level if current else app.lock_level
    if lock_before is None and deny is not None:
        lock_before = implied_lock_level(deny)
    if lock_before == "None":
        return _Outcome(
            Decision.SKIP,
            "current lock level is None: the app has no deny assignment, "
            "and adding one is for a human to decide",
        )
    held = _held_back(app, current)
    if held is not None:
        return held
    change = _change(deny, _target_deny(target))
    reason = f"{_from_text(app)} → {_to_text(app, target)}: {_change_text(change)}"
    if current is None:
        reason += " (drift not checked: the current plan version's allowed actions are not in ARM)"
    return _Outcome(Decision.UPDATE, reason, change, risks(change, target, lock_before, app))


def _held_back(app: App, current: Definition | None) -> _Outcome | None:
    """Drifted (its deny assignment is not what its current definition implies) or unknown; else None."""
    deny = app.deny_assignment
    if current is None:
        if deny is None:
            return _Outcome(
                Decision.SKIP,
                "no system deny assignment found and the current plan version's lock level is unknown",
            )
        return None
    if deny is None:
        return _Outcome(
            Decision.DRIFTED,
            f"no system deny assignment found, but {_short_id(app.definition_id)} implies lock level "
            f"{current.lock_level}",
        )
    deviation = _deviation(deny, current)
    if deviation:
        return _Outcome(
            Decision.DRIFTED,
            f"deny assignment differs from what {_from_text(app)} implies: {deviation}",
        )
    return None


# --- the plan ------------------------------------------------------------------------------------


def _counts(items: Sequence[PlanItem]) -> PlanCounts:
    decisions = Counter(i.decision for i in items)
    risks = Counter(code for i in items for code in {r.code for r in i.risks})
    return PlanCounts(
        apps=len(items),
        tenants=len({key(i.tenant_id) for i in items}),
        update=decisions[Decision.UPDATE],
        current=decisions[Decision.CURRENT],
        drifted=decisions[Decision.DRIFTED],
        skip=decisions[Decision.SKIP],
        risks=dict(sorted(risks.items())),
    )


def _notes(snapshot: Snapshot) -> tuple[str, ...]:
    return tuple(
        f"tenant {t.display_name} ({t.tenant_id}) was not fully read: {t.error}; "
        "apps not read are not in this plan"
        for t in sorted(snapshot.tenants, key=lambda t: (key(t.display_name), key(t.tenant_id)))
        if t.error
    )


class _Tenants:
    """Tenant names and rings: `rings` (the fleet config) overrides the ring a snapshot entry carries."""

    def __init__(self, snapshot: Snapshot, rings: Mapping[str, str]) -> None:
        self._tenants: dict[str, TenantInventory] = {key(t.tenant_id): t for t in snapshot.tenants}
        self._rings = {key(k): v for k, v in rings.items()}

    def name(self, app: App) -> str:
        tenant = self._tenants.get(key(app.tenant_id))
        return tenant.display_name if tenant and tenant.display_name else app.tenant_id

    def ring(self, app: App) -> str:
        tenant = self._tenants.get(key(app.tenant_id))
        return self._rings.get(key(app.tenant_id), tenant.ring if tenant else "")


def _ordered_apps(snapshot: Snapshot, tenant_name: Callable[[App], str]) -> list[App]:
    """Each app once (the first read of an id wins), by tenant, subscription, group and name."""
    unique: dict[str, App] = {}
    for app in snapshot.apps:
        unique.setdefault(key(app.id), app)
    return sorted(
        unique.values(),
        key=lambda a: (
            key(tenant_name(a)),
            key(a.tenant_id),
            key(a.subscription_id),
            key(a.resource_group),
            key(a.name),
            key(a.id),
        ),
    )


def _item(app: App, target: Target, outcome: _Outcome, tenant_name: str) -> PlanItem:
    is_update = outcome.decision == Decision.UPDATE
    expected = expected_deny(target.definition) if is_update else None
    as_read = summarize(app)
    return PlanItem(
        app_id=app.id,
        app_name=app.name,
        tenant_id=app.tenant_id,
        tenant_name=tenant_name,
        subscription_id=app.subscription_id,
        resource_group=app.resource_group,
        kind=app.kind,
        decision=outcome.decision,
        reason=outcome.reason,
        from_definition_id=app.definition_id,
        from_plan=app.plan,
        to_definition_id=target.definition_id if is_update and not is_marketplace(app) else None,
        to_plan=target.plan if is_update and is_marketplace(app) else None,
        change=outcome.change,
        expected_not_actions=expected[0] if expected else (),
        expected_not_data_actions=expected[1] if expected else (),
        risks=outcome.risks,
        fingerprint=fingerprint_of(app.id, as_read),
        as_read=as_read,
        path=app.path,
    )


def build_plan(
    snapshot: Snapshot,
    target: Target,
    options: PlanOptions,
    *,
    tool_version: str,
    now: datetime,
    rings: Mapping[str, str],
) -> Plan:
    """The plan for moving every fitting app in `snapshot` to `target` (unsealed: see planfile.seal).

    `rings` maps tenant id → ring label (the fleet config); a tenant missing there keeps the ring its
    snapshot entry carries. Raises ValueError for invalid wave steps and TargetError for a target that
    names neither a definition nor a plan.
    """
    if target.definition_id is None and target.plan is None:
        raise TargetError(f"target {target.name!r}: give a definition id, a marketplace plan, or both")
    parse_steps(options.waves.steps)
    tenants = _Tenants(snapshot, rings)
    apps = _ordered_apps(snapshot, tenants.name)
    items = [_item(app, target, _decide(app, target, snapshot), tenants.name(app)) for app in apps]
    ring_of = {key(a.id): tenants.ring(a) for a in apps}
    waves = assign_waves(
        [
            WaveMember(i.app_id, ring_of[key(i.app_id)])
            for i in items
            if i.decision == Decision.UPDATE and i.path in _WRITING
        ],
        options.waves,
    )
    wave_of = {key(app_id): w.index for w in waves for app_id in w.app_ids}
    items = [
        i.model_copy(update={"wave": wave_of[key(i.app_id)]}) if key(i.app_id) in wave_of else i
        for i in items
    ]
    return Plan(
        tool_version=tool_version,
        created_at=now,
        target=target,
        options=options,
        items=tuple(items),
        waves=waves,
        counts=_counts(items),
        notes=_notes(snapshot),
        incomplete_tenants=tuple(t.display_name or t.tenant_id for t in snapshot.tenants if t.error),
    )
