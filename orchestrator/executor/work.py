"""The engine's work: what one app's update needs, built from a plan (apply) or a journal (rollback).

Pure: no I/O. `plan_work` also gives the journal rows a new run starts from.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config import WRITING_PATHS
from orchestrator.journal import BeforeState, NewApp
from orchestrator.models import (
    App,
    AppState,
    AppStateSummary,
    Decision,
    MarketplacePlan,
    Plan,
    PlanItem,
    Target,
)


@dataclass(frozen=True)
class WorkItem:
    """One app to move, in the engine's terms (built from a plan item or from a journal for rollback)."""

    app_id: str
    app_name: str
    tenant_id: str
    tenant_name: str
    subscription_id: str
    wave: int
    fingerprint: str  # the state the write may start from
    to_definition_id: str | None
    to_plan: MarketplacePlan | None
    from_definition_id: str | None
    from_plan: MarketplacePlan | None
    expected_not_actions: tuple[str, ...]
    expected_not_data_actions: tuple[str, ...]
    expect_deny_assignment: bool = True
    as_read: AppStateSummary | None = None  # what the fingerprint covered, to say what changed
    # Service catalog: the plan's target, whose product lineage the app must still be in when it is
    # written (re-checked per app; a plan made before lineage existed gets the default rule).
    product: Target | None = None


@dataclass(frozen=True)
class WaveWork:
    index: int
    name: str
    items: tuple[WorkItem, ...]


# The journal state of an app the plan does not update: status keeps current, drifted and skip apart.
_NOT_UPDATED = {
    Decision.CURRENT: AppState.CURRENT,
    Decision.DRIFTED: AppState.DRIFTED,
    Decision.SKIP: AppState.SKIPPED,
}


def _ours(item: PlanItem) -> bool:
    """An update the engine writes (not one for a customer kit)."""
    return item.decision == Decision.UPDATE and item.path in WRITING_PATHS


def _new_app(item: PlanItem) -> NewApp:
    """The journal row `item` starts a run with."""
    state = _NOT_UPDATED.get(item.decision, AppState.PENDING)
    message = None if item.decision == Decision.UPDATE else f"{item.decision.value}: {item.reason}"
    if item.decision == Decision.UPDATE and not _ours(item):
        # Publisher and customer-run updates are the customer's to make (a kit), not ours.
        state = AppState.AWAITING_CUSTOMER
        message = f"{item.path}: the customer runs this update from its kit (orchestrator handoff)"
    return NewApp(
        app_id=item.app_id,
        app_name=item.app_name,
        tenant_id=item.tenant_id,
        tenant_name=item.tenant_name,
        subscription_id=item.subscription_id,
        wave=item.wave if state == AppState.PENDING else None,
        state=state,
        error_message=message,
    )


def plan_work(plan: Plan) -> tuple[list[NewApp], list[WaveWork]]:
    """The journal rows for a new run of `plan`, and the waves of work in plan order."""
    lock_level = plan.target.definition.lock_level
    by_id = {item.app_id: item for item in plan.items}
    waves: list[WaveWork] = []
    for wave in sorted(plan.waves, key=lambda w: w.index):
        items = []
        for app_id in wave.app_ids:
            found = by_id.get(app_id)
            if found is None or not _ours(found):
                continue
            product = plan.target if found.to_definition_id is not None else None
            items.append(work_item(found, wave=wave.index, lock_level=lock_level, product=product))
        waves.append(WaveWork(wave.index, wave.name, tuple(items)))
    return [_new_app(item) for item in plan.items], waves


def work_item(item: PlanItem, *, wave: int, lock_level: str, product: Target | None = None) -> WorkItem:
    """What the engine (and `verify`) needs of one planned update."""
    return WorkItem(
        app_id=item.app_id,
        app_name=item.app_name,
        tenant_id=item.tenant_id,
        tenant_name=item.tenant_name,
        subscription_id=item.subscription_id,
        wave=wave,
        fingerprint=item.fingerprint,
        to_definition_id=item.to_definition_id,
        to_plan=item.to_plan,
        from_definition_id=item.from_definition_id,
        from_plan=item.from_plan,
        expected_not_actions=item.expected_not_actions,
        expected_not_data_actions=item.expected_not_data_actions,
        expect_deny_assignment=lock_level != "None",
        as_read=item.as_read,
        product=product,
    )


def before_state(app: App) -> BeforeState:
    """What `app` is on before a write: what a rollback of that write puts back."""
    da = app.deny_assignment
    return BeforeState(
        definition_id=app.definition_id,
        plan=app.plan,
        not_actions=da.not_actions if da else (),
        not_data_actions=da.not_data_actions if da else (),
        had_deny_assignment=da is not None,
    )
