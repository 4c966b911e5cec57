"""Who denies an action right now? Pure: (snapshot, action) → the apps whose deny assignment blocks it.

An app denies an operation when one of its deny assignment's actions names it and none of its
notActions excludes it (data operations: dataActions / notDataActions). Action strings are
case-insensitive and may hold `*`. When the question itself holds a wildcard, an app is listed when it
denies some operation the pattern names: its actions overlap the pattern and its exclusions do not
cover all of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.models import App, DenyAssignment, Frozen, Snapshot
from orchestrator.planning import actions
from orchestrator.planning.actions import closest, shape_problem


class Denial(Frozen):
    app_id: str
    app_name: str
    subscription_id: str
    resource_group: str
    kind: str
    definition_id: str | None = None
    plan_version: str | None = None
    denied_by: tuple[str, ...]  # the deny assignment's patterns that name the action


class TenantDenials(Frozen):
    tenant_id: str
    tenant_name: str
    apps_total: int  # apps read in this tenant
    denying: tuple[Denial, ...]
    error: str | None = None  # the tenant was not (fully) read: the answer for it may be incomplete


class WhoDenies(Frozen):
    action: str
    data: bool
    tenants: tuple[TenantDenials, ...]  # only tenants with a denying app or a read error

    @property
    def denying_count(self) -> int:
        return sum(len(t.denying) for t in self.tenants)

    @property
    def incomplete(self) -> bool:
        return any(t.error for t in self.tenants)


def denying_patterns(deny: DenyAssignment, action: str, *, data: bool) -> tuple[str, ...]:
    """The patterns in `deny` that deny `action`, or () when it is not denied."""
    denied, excluded = (
        (deny.data_actions, deny.not_data_actions) if data else (deny.actions, deny.not_actions)
    )
    if actions.WILDCARD in action:
        hits = tuple(p for p in denied if actions.intersects(p, action))
    else:
        hits = tuple(p for p in denied if actions.matches(p, action))
    if not hits or actions.excluded(action, excluded):
        return ()
    return hits


def who_denies(snapshot: Snapshot, action: str, *, data: bool = False) -> WhoDenies:
    by_tenant: dict[str, list[App]] = {}
    for app in snapshot.apps:
        by_tenant.setdefault(app.tenant_id.lower(), []).append(app)
    groups: list[TenantDenials] = []
    for tenant in snapshot.tenants:
        tenant_apps = by_tenant.get(tenant.tenant_id.lower(), [])
        denying = _denials(tenant_apps, action, data=data)
        if denying or tenant.error:
            groups.append(
                TenantDenials(
                    tenant_id=tenant.tenant_id,
                    tenant_name=tenant.display_name,
                    apps_total=len(tenant_apps),
                    denying=denying,
                    error=tenant.error,
                )
            )
    return WhoDenies(action=action, data=data, tenants=tuple(groups))


def _denials(apps: Sequence[App], action: str, *, data: bool) -> tuple[Denial, ...]:
    found: list[Denial] = []
    for app in apps:
        if app.deny_assignment is None:
            continue
        hits = denying_patterns(app.deny_assignment, action, data=data)
        if hits:
            found.append(
                Denial(
                    app_id=app.id,
                    app_name=app.name,
                    subscription_id=app.subscription_id,
                    resource_group=app.resource_group,
                    kind=app.kind,
                    definition_id=app.definition_id,
                    plan_version=app.plan.version if app.plan else None,
                    denied_by=hits,
                )
            )
    found.sort(key=lambda d: (d.subscription_id.lower(), d.app_id.lower()))
    return tuple(found)


def action_warning(
    snapshot: Snapshot, action: str, *, data: bool = False, also_known: Sequence[str] = ()
) -> str | None:
    """Why `action` may not be what the operator meant, or None.

    Not shaped like an operation (no provider namespace, no verb); or spelled almost like an operation
    the fleet's definitions and deny assignments (or `also_known`, e.g. a plan's target) name: a typo.
    Apps whose deny covers `*` "deny" any string at all, so the count alone would mislead.
    """
    known: set[str] = set(also_known)
    for app in snapshot.apps:
        da = app.deny_assignment
        if da is not None:
            known.update(da.not_data_actions if data else da.not_actions)
    for definition in snapshot.definitions.values():
        known.update(definition.allowed_data_actions if data else definition.allowed_actions)
    if any(k.strip().casefold() == action.strip().casefold() for k in known):
        return None
    near = closest(action, known)
    hint = f"; did you mean {near}?" if near is not None else ""
    problem = shape_problem(action)
    if problem is not None:
        return f"--action {action!r} is not an operation name: {problem}{hint}"
    if near is not None:
        return f"--action {action!r} is not an operation this fleet names{hint}"
    return None
