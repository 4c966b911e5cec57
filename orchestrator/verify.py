"""`verify`: confirm the updates customers made from their kits, through whatever read access exists.

An app waiting for its customer becomes `succeeded` once ARM shows it on the plan's target definition
or plan version, provisioned, with its deny assignment carrying the planned exclusions; `failed` (with
the cause) when it is gone, failed to provision on the target, or its deny assignment does not match.
Not updated yet: it keeps waiting (and keeps the date its kit was made). `judge` is pure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from orchestrator.executor.engine import convergence_gap, on_target, work_item
from orchestrator.gateway import ArmGateway
from orchestrator.inventory import read_apps_by_id
from orchestrator.journal import Journal, Transition
from orchestrator.models import TERMINAL_APP_STATES, TERMINAL_SUCCESS, App, AppState, Plan, PlanItem, RunState

KIT_MADE = "KitMade"  # error_code of an app whose customer has a kit (error_message: when and where)
_VERIFY_CODES = frozenset({"VerifyProvisioningFailed", "VerifyDenyMismatch", "VerifyAppGone"})


@dataclass(frozen=True)
class Verdict:
    state: AppState | None  # None: unchanged (still waiting for the customer)
    code: str | None = None
    message: str | None = None


def judge(item: PlanItem, app: App | None, *, lock_level: str, read_error: str | None = None) -> Verdict:
    """What ARM's current view of a customer-run app says about its update."""
    if read_error is not None:
        if "not found" in read_error:
            return Verdict(AppState.FAILED, "VerifyAppGone", "the application no longer exists")
        return Verdict(None, None, read_error)
    assert app is not None
    work = work_item(item, wave=-1, lock_level=lock_level)
    if not on_target(app, work):
        return Verdict(None)  # the customer has not run its kit yet (or rolled back)
    if app.provisioning_state != TERMINAL_SUCCESS:
        if app.provisioning_state.lower() in ("failed", "canceled"):
            return Verdict(
                AppState.FAILED,
                "VerifyProvisioningFailed",
                f"on the target but provisioning state is {app.provisioning_state}",
            )
        return Verdict(None)  # still running
    gap = convergence_gap(app.deny_assignment, work)
    if gap is not None:
        return Verdict(
            AppState.FAILED, "VerifyDenyMismatch", f"on the target, but the deny assignment: {gap}"
        )
    return Verdict(AppState.SUCCEEDED)


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    changed: dict[str, AppState]  # app id -> new state
    unreadable: dict[str, str]  # app id -> why it could not be read
    counts: Counter[str]  # state -> apps in the run afterwards
    run_state: RunState


async def verify_run(journal: Journal, run_id: str, plan: Plan, gateway: ArmGateway) -> VerifyResult:
    """Re-read every app of the run that waits for its customer (or failed an earlier verify)."""
    view = journal.run_view(run_id)
    items = {i.app_id.lower(): i for i in plan.items}
    waiting = [
        a
        for a in view.apps
        if a.state == AppState.AWAITING_CUSTOMER
        or (a.state == AppState.FAILED and a.error_code in _VERIFY_CODES)
    ]
    by_tenant: dict[str, list[str]] = {}
    for a in waiting:
        by_tenant.setdefault(a.tenant_id, []).append(a.app_id)
    lock_level = plan.target.definition.lock_level
    changed: dict[str, AppState] = {}
    unreadable: dict[str, str] = {}
    transitions: list[Transition] = []
    for tenant_id, app_ids in by_tenant.items():
        apps, misses = await read_apps_by_id(gateway, None, tenant_id, app_ids)
        found = {a.id.lower(): a for a in apps}
        error_of = {m.app_id.lower(): m.cause for m in misses}
        for app_id in app_ids:
            item = items.get(app_id.lower())
            if item is None:
                continue
            verdict = judge(
                item,
                found.get(app_id.lower()),
                lock_level=lock_level,
                read_error=error_of.get(app_id.lower()),
            )
            if verdict.state is None:
                if verdict.message:
                    unreadable[app_id] = verdict.message
                continue
            changed[app_id] = verdict.state
            transitions.append(
                Transition(
                    run_id=run_id,
                    app_id=app_id,
                    state=verdict.state,
                    error_code=verdict.code,
                    error_message=verdict.message,
                    message="verified: the customer's update"
                    if verdict.state == AppState.SUCCEEDED
                    else "verify",
                )
            )
    if transitions:
        journal.record_many(transitions)
    after = journal.run_view(run_id)
    state = after.state
    if all(a.state in TERMINAL_APP_STATES for a in after.apps) and state != RunState.COMPLETED:
        state = RunState.COMPLETED
        journal.set_run_state(run_id, state, "verified: every customer-run update is done")
    counts: Counter[str] = Counter(a.state.value for a in after.apps)
    return VerifyResult(len(waiting), changed, unreadable, counts, state)
