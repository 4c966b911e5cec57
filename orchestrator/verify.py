"""`verify`: confirm the updates customers made from their kits, through whatever read access exists.

An app waiting for its customer becomes `succeeded` once ARM shows it on the plan's target definition
or plan version, provisioned, with its deny assignment carrying the planned exclusions; `failed` (with
the cause) when it is gone, failed to provision on the target, or its deny assignment does not match.
Not updated yet: it keeps waiting (and keeps the date its kit was made). `judge` is pure.

Azure's PUT notification for such an app verifies it at once: the receiver (`notifications serve
--confirm`, which has the identities) hands each new event to `AwaitingVerifier`, which runs this same
check for that app (`verify_notified`). The event alone decides nothing: ARM is read and the deny
assignment decides success; a PUT Failed event only supplies the cause when ARM shows the app Failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import structlog

from orchestrator.errors import ArmError, InputError, OrchestratorError
from orchestrator.executor.work import work_item
from orchestrator.gateway import ArmGateway
from orchestrator.inventory import read_apps_by_id
from orchestrator.journal import Journal, Transition
from orchestrator.models import (
    TERMINAL_APP_STATES,
    TERMINAL_SUCCESS,
    App,
    AppState,
    AppStatusView,
    Plan,
    PlanItem,
    RunState,
    RunView,
)
from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import Notification
from orchestrator.notifications.signals import Signal
from orchestrator.planning.checks import convergence_gap, on_target
from orchestrator.planning.planfile import read_plan

log = structlog.get_logger("orchestrator.notifications")

KIT_MADE = "KitMade"  # error_code of an app whose customer has a kit (error_message: when and where)
_VERIFY_CODES = frozenset({"VerifyProvisioningFailed", "VerifyDenyMismatch", "VerifyAppGone"})


@dataclass(frozen=True)
class Verdict:
    state: AppState | None  # None: unchanged (still waiting for the customer)
    code: str | None = None
    message: str | None = None


def judge(
    item: PlanItem,
    app: App | None,
    *,
    lock_level: str,
    read_error: str | None = None,
    notified: Signal | None = None,
) -> Verdict:
    """What ARM's current view of a customer-run app says about its update. `notified`: Azure's PUT
    event that prompted this read; a Failed one is the cause when ARM shows the app Failed too."""
    if read_error is not None:
        if "not found" in read_error:
            return Verdict(AppState.FAILED, "VerifyAppGone", "the application no longer exists")
        return Verdict(None, None, read_error)
    assert app is not None
    if notified is not None and notified.failed and app.provisioning_state.lower() == "failed":
        cause = f"Azure notified PUT Failed: {notified.error_message or 'no message'}"
        return Verdict(AppState.FAILED, notified.error_code or "Failed", cause)
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


def _waits(app: AppStatusView) -> bool:
    """Whether `verify` re-reads the app: it waits for its customer, or failed an earlier verify."""
    return app.state == AppState.AWAITING_CUSTOMER or (
        app.state == AppState.FAILED and app.error_code in _VERIFY_CODES
    )


def plan_of(view: RunView) -> Plan:
    """The plan file the run was made from (its digest checked), or InputError naming the problem."""
    if not view.plan_path:
        raise InputError(f"run {view.run_id}: no plan file recorded; cannot verify")
    plan = read_plan(Path(view.plan_path))
    if plan.digest != view.plan_digest:
        raise InputError(f"{view.plan_path}: not the plan run {view.run_id} was made from (digest differs)")
    return plan


async def verify_run(
    journal: Journal,
    run_id: str,
    plan: Plan,
    gateway: ArmGateway,
    *,
    only: Collection[str] | None = None,
    notified: Signal | None = None,
) -> VerifyResult:
    """Re-read every app of the run that waits for its customer (or failed an earlier verify).

    `only`: just these app ids (lower case); `notified`: the PUT event that prompted the read."""
    waiting = [
        a for a in journal.run_view(run_id).apps if _waits(a) and (only is None or a.app_id.lower() in only)
    ]
    by_tenant: dict[str, list[str]] = {}
    for a in waiting:
        by_tenant.setdefault(a.tenant_id, []).append(a.app_id)
    items = {i.app_id.lower(): i for i in plan.items}
    lock_level = plan.target.definition.lock_level
    known = _registry_ids(journal.path) if waiting else set()
    verdicts: dict[str, Verdict] = {}
    for tenant_id, app_ids in by_tenant.items():
        gateway.allow_app_reads(tenant_id, [a for a in app_ids if a.lower() in known])
        apps, misses = await read_apps_by_id(gateway, None, tenant_id, app_ids)
        found = {a.id.lower(): a for a in apps}
        error_of = {m.app_id.lower(): m.cause for m in misses}
        for app_id in app_ids:
            if (item := items.get(app_id.lower())) is not None:
                verdicts[app_id] = judge(
                    item,
                    found.get(app_id.lower()),
                    lock_level=lock_level,
                    read_error=error_of.get(app_id.lower()),
                    notified=notified,
                )
    return _record(journal, run_id, len(waiting), verdicts)


def _registry_ids(journal: Path) -> set[str]:
    """The app ids (lower case) the notification registry in the journal's file learned: the guard
    reads them by id like a customer's application list (a registry-only app may be in the plan)."""
    registry = Registry.existing(journal)
    if registry is None:
        return set()
    with registry:
        return {i.app_id.lower() for i in registry.instances()}


def _record(journal: Journal, run_id: str, checked: int, verdicts: dict[str, Verdict]) -> VerifyResult:
    """Journal the verdicts that changed an app; the run completes once every app is terminal."""
    changed = {app_id: v.state for app_id, v in verdicts.items() if v.state is not None}
    unreadable = {app_id: v.message for app_id, v in verdicts.items() if v.state is None and v.message}
    transitions = [
        Transition(
            run_id=run_id,
            app_id=app_id,
            state=v.state,
            error_code=v.code,
            error_message=v.message,
            message="verified: the customer's update" if v.state == AppState.SUCCEEDED else "verify",
        )
        for app_id, v in verdicts.items()
        if v.state is not None
    ]
    if transitions:
        journal.record_many(transitions)
    after = journal.run_view(run_id)
    state = after.state
    if all(a.state in TERMINAL_APP_STATES for a in after.apps) and state != RunState.COMPLETED:
        state = RunState.COMPLETED
        journal.set_run_state(run_id, state, "verified: every customer-run update is done")
    counts: Counter[str] = Counter(a.state.value for a in after.apps)
    return VerifyResult(checked, changed, unreadable, counts, state)


async def verify_notified(journal: Journal, gateway: ArmGateway, signal: Signal) -> dict[str, VerifyResult]:
    """Azure notified a PUT Succeeded/Failed for `signal.app_id`: verify it now in every run that waits
    for it (run id -> result; empty when none does). The caller holds the journal's writer lock."""
    key = signal.app_id.lower()
    results: dict[str, VerifyResult] = {}
    for summary in journal.runs():
        if not (
            summary.counts.get(AppState.AWAITING_CUSTOMER.value) or summary.counts.get(AppState.FAILED.value)
        ):
            continue
        view = journal.run_view(summary.run_id)
        if any(a.app_id.lower() == key and _waits(a) for a in view.apps):
            plan = plan_of(view)
            results[view.run_id] = await verify_run(
                journal, view.run_id, plan, gateway, only={key}, notified=signal
            )
    return results


class AwaitingVerifier:
    """Called with each newly stored event; verifies the apps that wait for their customers.

    It takes the journal's writer lock as `verify` does; while an apply, resume or rollback holds it,
    it waits (polling every `busy_poll` seconds, at most `busy_limit`), then says to run `verify`.
    """

    def __init__(
        self, journal: Path, gateway: ArmGateway, *, busy_poll: float = 1.0, busy_limit: float = 600.0
    ) -> None:
        self._path = journal
        self._gateway = gateway
        self._busy_poll = busy_poll
        self._busy_limit = busy_limit
        self._one = asyncio.Lock()  # one verification at a time in this process
        self._journal: Journal | None = None  # opened at the first PUT event, kept (one check of the file)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    async def __call__(self, event: Notification) -> None:
        signal = Signal.of(event)
        if signal is None:
            return
        async with self._one:
            try:
                results = await self._verify(signal)
            except (OrchestratorError, ArmError) as exc:
                log.error("cannot verify a notified app", app=signal.app_id, cause=str(exc))
                return
        if results is None:
            log.warning(
                "journal busy: the notified app was not verified; run `orchestrator verify`",
                app=signal.app_id,
            )
        for run_id, result in (results or {}).items():
            for app_id, state in result.changed.items():
                log.info("verified on notification", run=run_id, app=app_id, state=state.value)
            for app_id, why in result.unreadable.items():
                log.warning("notified app not verified", run=run_id, app=app_id, cause=why)

    async def _verify(self, signal: Signal) -> dict[str, VerifyResult] | None:
        """The results per run, or None when the writer lock stayed busy past `busy_limit`."""
        if self._journal is None:
            self._journal = await asyncio.to_thread(Journal, self._path, create=False)
        journal, waited = self._journal, 0.0
        while True:
            with contextlib.ExitStack() as held:
                try:
                    held.enter_context(journal.exclusive())
                except OrchestratorError:
                    if not journal.writer_active():
                        raise  # not busy: the lock file itself is the problem
                else:
                    return await verify_notified(journal, self._gateway, signal)
            if waited >= self._busy_limit:
                return None
            await asyncio.sleep(self._busy_poll)
            waited += self._busy_poll
