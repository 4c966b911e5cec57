"""The planner: a pure function from (snapshot, target, options) to a plan a reviewer signs off.

For every app it decides one of:
- `update`: move it to the target (or re-apply the target when its deny assignment lacks the target's
  exclusions), with the exclusions added and removed, pattern-aware;
- `current`: already on the target, and its deny assignment carries the target's exclusions;
- `drifted`: its deny assignment differs from what its own current definition implies (a human
  looks first; apply never writes it);
- `skip`: with the reason (state, lock level, kind or plan the target does not fit, unknown definition,
  "different product": a service-catalog definition outside the target's lineage).

Risk flags judge what an update changes *in effect*: an exclusion only widens access if it names an
operation the target's lock level denies (under `CanNotDelete` only deletes are denied, so excluding a
write there changes nothing), and a removal only tightens when the removed operations are denied.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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
    Severity,
    Snapshot,
    Target,
    TenantInventory,
)
from orchestrator.planning.actions import diff, intersects, normalise
from orchestrator.planning.derive import denied_actions, expected_deny, implied_lock_level
from orchestrator.planning.fingerprint import fingerprint_of, summarize
from orchestrator.planning.lineage import describe as describe_lineage
from orchestrator.planning.lineage import in_lineage
from orchestrator.planning.waves import WaveMember, assign_waves, parse_steps

WRITE_OPERATIONS = "*/write"
DELETE_OPERATIONS = "*/delete"
AUTHORIZATION_OPERATIONS = "Microsoft.Authorization/*"


def _key(value: str | None) -> str:
    return (value or "").strip().casefold()


def _short_id(resource_id: str | None) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] if resource_id else "none"


def _plan_text(plan: MarketplacePlan) -> str:
    return f"{plan.publisher}/{plan.product}/{plan.name}@{plan.version}"


def _same_offer(a: MarketplacePlan, b: MarketplacePlan) -> bool:
    return (_key(a.publisher), _key(a.product), _key(a.name)) == (
        _key(b.publisher),
        _key(b.product),
        _key(b.name),
    )


def _backticked(patterns: Iterable[str]) -> str:
    return ", ".join(f"`{p}`" for p in patterns)


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
    kind = _key(app.kind)
    if kind == _key(AppKind.MARKETPLACE):
        if target.plan is None:
            return "the target names no marketplace plan version (for this MarketPlace instance)"
        if app.plan is None:
            return "MarketPlace instance without a marketplace plan"
        if not _same_offer(app.plan, target.plan):
            return (
                f"marketplace plan {app.plan.publisher}/{app.plan.product}/{app.plan.name} is not the "
                f"target's {target.plan.publisher}/{target.plan.product}/{target.plan.name}"
            )
        return None
    if kind != _key(AppKind.SERVICE_CATALOG):
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


def _is_marketplace(app: App) -> bool:
    return _key(app.kind) == _key(AppKind.MARKETPLACE)


def _on_target(app: App, target: Target) -> bool:
    if _is_marketplace(app):
        return (
            target.plan is not None
            and app.plan is not None
            and app.plan.version.strip() == target.plan.version.strip()
        )
    return _key(app.definition_id) == _key(target.definition_id)


def _from_text(app: App) -> str:
    return _plan_text(app.plan) if app.plan is not None else _short_id(app.definition_id)


def _to_text(app: App, target: Target) -> str:
    if _is_marketplace(app) and target.plan is not None:
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
            problems.append(f"lacks excluded {label} {_backticked(missing)}")
        if extra:
            problems.append(f"also excludes {label} {_backticked(extra)}")
    return "; ".join(problems) or None


def _principal_change(deny: DenyAssignment | None, target: Target) -> tuple[set[str], set[str]]:
    """(principals the target newly excludes, principals it stops excluding); empty when not known."""
    wanted = {_key(a.principal_id) for a in target.definition.authorizations}
    if not wanted or deny is None:  # a target that lists no authorizations leaves principals unchecked
        return set(), set()
    actual = {_key(p) for p in deny.excluded_principal_ids}
    return wanted - actual, actual - wanted


# --- risks -------------------------------------------------------------------------------------------


def _broadness(pattern: str) -> Severity | None:
    """HIGH for a wildcard across providers (`*`, `*/read`), MEDIUM for one covering a whole provider."""
    segments = normalise(pattern).split("/")
    if "*" in segments[0]:
        return Severity.HIGH
    if len(segments) > 1 and segments[1].startswith("*"):
        return Severity.MEDIUM
    return None


def _denied_by(pattern: str, denied: Sequence[str]) -> bool:
    return any(intersects(pattern, d) for d in denied)


def _version_key(version: str) -> tuple[int, ...] | None:
    parts = version.strip().split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def _is_downgrade(current: str, target: str) -> bool:
    """Whether a marketplace plan version moves backwards (only for dotted numeric versions)."""
    before, after = _version_key(current), _version_key(target)
    return before is not None and after is not None and after < before


def _risks(change: ActionChange, target: Target, lock_before: LockLevel | None, app: App) -> tuple[Risk, ...]:
    lock_after = target.definition.lock_level
    denied, denied_data = denied_actions(lock_after)
    risks: list[Risk] = []

    widening = [p for p in change.actions_added if _denied_by(p, denied)]
    writes = [p for p in widening if intersects(p, WRITE_OPERATIONS)]
    if writes:
        risks.append(
            Risk(code="widens-write", severity=Severity.HIGH, message=f"allows writes: {_backticked(writes)}")
        )
    deletes = [p for p in widening if intersects(p, DELETE_OPERATIONS)]
    if deletes:
        risks.append(
            Risk(
                code="widens-delete",
                severity=Severity.HIGH,
                message=f"allows deletes: {_backticked(deletes)}",
            )
        )
    authz = [p for p in widening if intersects(p, AUTHORIZATION_OPERATIONS)]
    if authz:
        risks.append(
            Risk(
                code="widens-authorization",
                severity=Severity.HIGH,
                message=f"allows Microsoft.Authorization operations: {_backticked(authz)}",
            )
        )
    broad = [(p, s) for p in widening if (s := _broadness(p)) is not None]
    if broad:
        severity = Severity.HIGH if any(s == Severity.HIGH for _, s in broad) else Severity.MEDIUM
        risks.append(
            Risk(
                code="broad-wildcard",
                severity=severity,
                message=f"wildcard over a whole provider or more: {_backticked(p for p, _ in broad)}",
            )
        )

    widening_data = [p for p in change.data_actions_added if _denied_by(p, denied_data)]
    if widening_data:
        strong = any(
            _broadness(p) is not None or intersects(p, WRITE_OPERATIONS) or intersects(p, DELETE_OPERATIONS)
            for p in widening_data
        )
        risks.append(
            Risk(
                code="widens-data",
                severity=Severity.HIGH if strong else Severity.MEDIUM,
                message=f"allows data actions: {_backticked(widening_data)}",
            )
        )

    tightening = [p for p in change.actions_removed if _denied_by(p, denied)]
    tightening += [p for p in change.data_actions_removed if _denied_by(p, denied_data)]
    if tightening:
        risks.append(
            Risk(
                code="tightens",
                severity=Severity.HIGH,
                message=(
                    f"no longer excludes {_backticked(tightening)}: workloads relying on it will fail "
                    "with AuthorizationFailed"
                ),
            )
        )

    if lock_before is not None and lock_before != lock_after:
        risks.append(
            Risk(
                code="lock-level-change",
                severity=Severity.HIGH,
                message=f"lock level {lock_before} → {lock_after}: the set of denied operations changes",
            )
        )

    if (
        app.plan is not None
        and target.plan is not None
        and _is_downgrade(app.plan.version, target.plan.version)
    ):
        risks.append(
            Risk(
                code="downgrade",
                severity=Severity.MEDIUM,
                message=f"plan version {app.plan.version} → {target.plan.version} is an older version",
            )
        )

    added, dropped = _principal_change(app.deny_assignment, target)
    if added or dropped:
        parts = [f"+{p}" for p in sorted(added)] + [f"-{p}" for p in sorted(dropped)]
        risks.append(
            Risk(
                code="principals-change",
                severity=Severity.HIGH if added else Severity.MEDIUM,
                message=f"excluded principals (publisher authorizations) change: {' '.join(parts)}",
            )
        )
    return tuple(risks)


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
        return snapshot.definitions.get(_key(app.definition_id))
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
    target_expected = expected_deny(target.definition)
    assert target_expected is not None
    deny = app.deny_assignment
    if deny is None and app.deny_assignment_problem:
        # Without knowing which deny assignment is the app's, neither a diff nor a verification means
        # anything; re-applying would not tell them apart either.
        return _Outcome(
            Decision.DRIFTED,
            f"its system deny assignment cannot be told apart: {app.deny_assignment_problem}",
        )
    current = _current_definition(app, target, snapshot)

    if _on_target(app, target):
        change = _change(deny, target_expected)
        deviation = _deviation(deny, target.definition) if deny else None
        added, dropped = _principal_change(deny, target)
        if deny is not None and deviation is None and not (added or dropped):
            on = _to_text(app, target)
            return _Outcome(Decision.CURRENT, f"already on {on} with the expected exclusions")
        if deny is None:
            why = "no system deny assignment was found"
        elif deviation is not None:
            why = f"its deny assignment {deviation}"
        else:
            why = "its excluded principals differ from the target's authorizations"
        return _Outcome(
            Decision.UPDATE,
            f"already on {_to_text(app, target)} but {why}: re-apply",
            change,
            _risks(change, target, implied_lock_level(deny) if deny else None, app),
        )

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
    if current is not None:
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
    elif deny is None:
        return _Outcome(
            Decision.SKIP,
            "no system deny assignment found and the current plan version's lock level is unknown",
        )

    change = _change(deny, target_expected)
    reason = f"{_from_text(app)} → {_to_text(app, target)}: {_change_text(change)}"
    if current is None:
        reason += " (drift not checked: the current plan version's allowed actions are not in ARM)"
    return _Outcome(Decision.UPDATE, reason, change, _risks(change, target, lock_before, app))


# --- the plan ------------------------------------------------------------------------------------


def _counts(items: Sequence[PlanItem]) -> PlanCounts:
    decisions = Counter(i.decision for i in items)
    risks = Counter(code for i in items for code in {r.code for r in i.risks})
    return PlanCounts(
        apps=len(items),
        tenants=len({_key(i.tenant_id) for i in items}),
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
        for t in sorted(snapshot.tenants, key=lambda t: (_key(t.display_name), _key(t.tenant_id)))
        if t.error
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
    tenants: dict[str, TenantInventory] = {_key(t.tenant_id): t for t in snapshot.tenants}
    ring_overrides = {_key(k): v for k, v in rings.items()}

    def tenant_name(app: App) -> str:
        tenant = tenants.get(_key(app.tenant_id))
        return tenant.display_name if tenant and tenant.display_name else app.tenant_id

    def ring(app: App) -> str:
        tenant = tenants.get(_key(app.tenant_id))
        return ring_overrides.get(_key(app.tenant_id), tenant.ring if tenant else "")

    unique: dict[str, App] = {}
    for app in snapshot.apps:
        unique.setdefault(_key(app.id), app)
    apps = sorted(
        unique.values(),
        key=lambda a: (
            _key(tenant_name(a)),
            _key(a.tenant_id),
            _key(a.subscription_id),
            _key(a.resource_group),
            _key(a.name),
            _key(a.id),
        ),
    )

    items: list[PlanItem] = []
    for app in apps:
        outcome = _decide(app, target, snapshot)
        is_update = outcome.decision == Decision.UPDATE
        expected = expected_deny(target.definition) if is_update else None
        as_read = summarize(app)
        items.append(
            PlanItem(
                app_id=app.id,
                app_name=app.name,
                tenant_id=app.tenant_id,
                tenant_name=tenant_name(app),
                subscription_id=app.subscription_id,
                resource_group=app.resource_group,
                kind=app.kind,
                decision=outcome.decision,
                reason=outcome.reason,
                from_definition_id=app.definition_id,
                from_plan=app.plan,
                to_definition_id=target.definition_id if is_update and not _is_marketplace(app) else None,
                to_plan=target.plan if is_update and _is_marketplace(app) else None,
                change=outcome.change,
                expected_not_actions=expected[0] if expected else (),
                expected_not_data_actions=expected[1] if expected else (),
                risks=outcome.risks,
                fingerprint=fingerprint_of(app.id, as_read),
                as_read=as_read,
                path=app.path,
            )
        )

    by_id = {_key(a.id): a for a in apps}
    waves = assign_waves(
        [
            WaveMember(i.app_id, ring(by_id[_key(i.app_id)]))
            for i in items
            if i.decision == Decision.UPDATE and i.path in _WRITING
        ],
        options.waves,
    )
    wave_of = {_key(app_id): w.index for w in waves for app_id in w.app_ids}
    items = [
        i.model_copy(update={"wave": wave_of[_key(i.app_id)]}) if _key(i.app_id) in wave_of else i
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
