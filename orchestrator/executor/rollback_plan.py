"""A rollback, written as a plan a reviewer reads like an upgrade's (`rollback RUN --plan-out FILE`).

Each app the rollback would touch becomes an `update` item from what the run put on it to what it had
before; the exclusions the rollback takes away are flagged `tightens`: those actions become denied
again, and workloads that came to rely on them fail with AuthorizationFailed (the incident returns).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from orchestrator.journal import AppRecord
from orchestrator.models import (
    ActionChange,
    AppState,
    Decision,
    Definition,
    Plan,
    PlanItem,
    PlanOptions,
    Risk,
    Severity,
    Target,
    Wave,
)
from orchestrator.planning.actions import diff

ROLLBACK_WAVE = "rollback"


def _ticks(patterns: Sequence[str]) -> str:
    return ", ".join(f"`{p}`" for p in patterns)


def _risks(change: ActionChange) -> tuple[Risk, ...]:
    risks: list[Risk] = []
    again = [*change.actions_removed, *(f"{a} (data)" for a in change.data_actions_removed)]
    if again:
        risks.append(
            Risk(
                code="tightens",
                severity=Severity.HIGH,
                message=(
                    f"denied again: {_ticks(again)}; workloads relying on it since the upgrade fail "
                    "with AuthorizationFailed"
                ),
            )
        )
    allowed = [*change.actions_added, *(f"{a} (data)" for a in change.data_actions_added)]
    if allowed:
        risks.append(
            Risk(
                code="widens-back",
                severity=Severity.MEDIUM,
                message=f"excluded from the deny again, as before the upgrade: {_ticks(allowed)}",
            )
        )
    return tuple(risks)


def rollback_candidates(records: Sequence[AppRecord], chosen: Sequence[str] | None) -> list[AppRecord]:
    """The apps a rollback takes: each succeeded app of the run (or of the `chosen` ids) whose journal
    says what it had before and what the run put on it. The review, the preview and the run use this."""
    wanted = {a.lower() for a in chosen} if chosen else None
    return [
        rec
        for rec in records
        if (wanted is None or rec.app_id.lower() in wanted)
        and rec.state == AppState.SUCCEEDED
        and rec.before is not None
        and rec.after_fingerprint is not None
    ]


def _item(rec: AppRecord, planned: PlanItem | None) -> PlanItem:
    """One app's rollback as a plan item: from what the run put on it back to what it had."""
    before = rec.before
    assert before is not None and rec.after_fingerprint is not None  # rollback_candidates
    now_actions = planned.expected_not_actions if planned else ()
    now_data = planned.expected_not_data_actions if planned else ()
    added, removed = diff(now_actions, before.not_actions)
    data_added, data_removed = diff(now_data, before.not_data_actions)
    change = ActionChange(
        actions_added=added,
        actions_removed=removed,
        data_actions_added=data_added,
        data_actions_removed=data_removed,
    )
    back_to = (
        f"plan {before.plan.name} version {before.plan.version}"
        if before.plan is not None
        else f"definition {before.definition_id}"
    )
    return PlanItem(
        app_id=rec.app_id,
        app_name=rec.app_name,
        tenant_id=rec.tenant_id,
        tenant_name=rec.tenant_name,
        subscription_id=rec.subscription_id,
        resource_group=planned.resource_group if planned else "",
        kind=planned.kind if planned else "",
        decision=Decision.UPDATE,
        reason=f"roll back to {back_to}",
        wave=0,
        from_definition_id=planned.to_definition_id if planned else None,
        from_plan=planned.to_plan if planned else None,
        to_definition_id=before.definition_id if before.plan is None else None,
        to_plan=before.plan,
        change=change,
        expected_not_actions=before.not_actions,
        expected_not_data_actions=before.not_data_actions,
        risks=_risks(change),
        fingerprint=rec.after_fingerprint,
    )


def rollback_plan(
    parent: Plan,
    parent_run_id: str,
    records: Sequence[AppRecord],
    chosen: Sequence[str] | None,
    *,
    tool_version: str,
    now: datetime,
) -> Plan:
    """The review of rolling back `chosen` (default every succeeded app) of run `parent_run_id`."""
    by_id = {i.app_id.lower(): i for i in parent.items}
    items: list[PlanItem] = []
    definitions: set[str] = set()
    for rec in rollback_candidates(records, chosen):
        assert rec.before is not None
        if rec.before.definition_id:
            definitions.add(rec.before.definition_id)
        items.append(_item(rec, by_id.get(rec.app_id.lower())))
    notes = [f"rollback of run {parent_run_id} (plan {parent.digest}): each app goes back to what it had"]
    if len(definitions) > 1:
        notes.append(f"apps go back to {len(definitions)} different definitions; each app names its own")
    target = Target(
        name=f"rollback of {parent_run_id}",
        definition_id=next(iter(definitions)) if len(definitions) == 1 else None,
        definition=Definition(lock_level=parent.target.definition.lock_level),
    )
    return Plan(
        tool_version=tool_version,
        created_at=now,
        target=target,
        options=PlanOptions(),
        items=tuple(items),
        waves=(Wave(index=0, name=ROLLBACK_WAVE, app_ids=tuple(i.app_id for i in items)),),
        notes=tuple(notes),
        rollback_of=parent_run_id,
    )


def denied_again(plan: Plan) -> list[tuple[str, int, int]]:
    """(action, apps, tenants) that a rollback plan makes denied again, most apps first."""
    apps: dict[str, set[str]] = {}
    tenants: dict[str, set[str]] = {}
    for item in plan.items:
        c = item.change
        for action in (*c.actions_removed, *(f"{a} (data)" for a in c.data_actions_removed)):
            apps.setdefault(action, set()).add(item.app_id)
            tenants.setdefault(action, set()).add(item.tenant_id)
    return sorted(((a, len(apps[a]), len(tenants[a])) for a in apps), key=lambda r: (-r[1], r[0]))
