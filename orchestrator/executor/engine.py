"""The rollout engine: waves, caps, failure tolerance, and each app's way through its states.

Per app: re-read → (stale? stop) → journal `submitted` (intent) → PUT → journal operation URL and
resume token → follow the operation → journal `verifying` → read the deny assignment back until it
carries the planned exclusions → `succeeded` (or `unverified` / `failed` with the reason).

The steps live beside it: `work` (what to move), `writing` (up to the operation's success, never a
write twice), `verification` (the deny assignment read back), `context` (reads and journaled
transitions they share).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Literal

import structlog

from orchestrator.errors import JournalError, JournalUnavailable
from orchestrator.executor.context import Clock, ProgressSink, RunContext, Sleep
from orchestrator.executor.settings import ExecutorSettings
from orchestrator.executor.verification import AlsoOnSuccess, Verification
from orchestrator.executor.work import WaveWork, WorkItem, plan_work
from orchestrator.executor.writing import Writing
from orchestrator.gateway import ArmGateway
from orchestrator.journal import AppRecord, Journal, NewApp, Transition
from orchestrator.models import TERMINAL_APP_STATES, App, AppState, Plan, RunState, RunView
from orchestrator.notifications.signals import RegistryWatch, Signals

log = structlog.get_logger("orchestrator.executor")

FAILURE_STATES = frozenset({AppState.FAILED, AppState.UNVERIFIED})


def rollback_digest(parent_run_id: str, app_ids: Sequence[str] | None) -> str:
    selection = ",".join(sorted(a.lower() for a in app_ids)) if app_ids else "*"
    return "rollback:" + hashlib.sha256(f"{parent_run_id}|{selection}".encode()).hexdigest()


def rollback_work(
    parent: Sequence[AppRecord], app_ids: Sequence[str] | None
) -> tuple[list[NewApp], WaveWork]:
    """Put every succeeded app of `parent` (or the chosen ones) back on what it had before."""
    wanted = {a.lower() for a in app_ids} if app_ids else None
    rows: list[NewApp] = []
    items: list[WorkItem] = []
    for rec in parent:
        if wanted is not None and rec.app_id.lower() not in wanted:
            continue
        if rec.state != AppState.SUCCEEDED or rec.before is None or rec.after_fingerprint is None:
            continue
        before = rec.before
        rows.append(NewApp.entering(rec, wave=0))
        items.append(
            WorkItem(
                app_id=rec.app_id,
                app_name=rec.app_name,
                tenant_id=rec.tenant_id,
                tenant_name=rec.tenant_name,
                subscription_id=rec.subscription_id,
                wave=0,
                fingerprint=rec.after_fingerprint,
                to_definition_id=before.definition_id,
                to_plan=before.plan,
                from_definition_id=None,
                from_plan=None,
                expected_not_actions=before.not_actions,
                expected_not_data_actions=before.not_data_actions,
                expect_deny_assignment=before.had_deny_assignment,
            )
        )
    return rows, WaveWork(0, "rollback", tuple(items))


class Engine(RunContext):
    """The loop: waves in order, a wave's apps at once within the pacer's caps, the failure tolerance.

    Each app is written by `Writing` and verified by `Verification`; both share this run's means."""

    # More journal rows an app's success changes, committed in the same transaction as it.
    also_on_success: AlsoOnSuccess | None = None
    # Notifications about the apps (the registry in the journal's file): wake verification early.
    signals: Signals | None = None
    waiting = False  # some app did not start because its maintenance window was closed

    @cached_property
    def writing(self) -> Writing:
        return Writing(self)

    @cached_property
    def verification(self) -> Verification:
        return Verification(self)

    async def run(self, waves: Sequence[WaveWork]) -> RunState:
        self.records = {r.app_id: r for r in self.journal.apps(self.run_id)}
        self.wave_names = {w.index: w.name for w in waves}
        self.journal.set_run_state(self.run_id, RunState.RUNNING, "started")
        selected = [w for w in waves if self.settings.only_wave is None or w.index == self.settings.only_wave]
        halted = False
        async with self.writer:
            for position, wave in enumerate(selected):
                outcome = await self._run_wave(wave)
                if outcome == "halted":
                    halted = True
                    break
                if self.waiting:
                    # A wave is done only when all of it is: later waves wait for its closed windows.
                    log.info("apps wait for their maintenance window; later waves wait too", wave=wave.name)
                    break
                last = position == len(selected) - 1
                if outcome == "worked" and not last and self.settings.bake_seconds > 0:
                    log.info("baking", run_id=self.run_id, wave=wave.name, seconds=self.settings.bake_seconds)
                    await self.sleep(self.settings.bake_seconds)
        states = [r.state for r in self.journal.apps(self.run_id)]
        if halted:
            final = RunState.HALTED
        elif all(s in TERMINAL_APP_STATES for s in states):
            final = RunState.COMPLETED
        elif self.waiting or all(s in TERMINAL_APP_STATES or s == AppState.AWAITING_CUSTOMER for s in states):
            # Customer-run apps are not ours to finish: the run waits for them (`orchestrator verify`).
            final = RunState.WAITING
        else:
            final = RunState.INTERRUPTED
        self.journal.set_run_state(self.run_id, final)
        log.info("run finished", run_id=self.run_id, state=final.value)
        return final

    async def _run_wave(self, wave: WaveWork) -> Literal["halted", "worked", "idle"]:
        size = len(wave.items)
        tolerance = self.settings.failure_tolerance
        failures = sum(1 for i in wave.items if self.records[i.app_id].state in FAILURE_STATES)
        todo = [i for i in wave.items if self.records[i.app_id].state not in TERMINAL_APP_STATES]
        log.info(
            "wave starting",
            run_id=self.run_id,
            wave=wave.name,
            apps=size,
            to_do=len(todo),
            failure_tolerance=str(tolerance),
        )
        if tolerance.exceeded(failures, size):
            log.warning("wave already over its failure tolerance", run_id=self.run_id, wave=wave.name)
            return "halted"
        if not todo:
            return "idle"
        stop = asyncio.Event()
        counter = {"failures": failures}

        async def one(item: WorkItem) -> None:
            state = await self._process(item, stop)
            if state in FAILURE_STATES:
                counter["failures"] += 1
                if tolerance.exceeded(counter["failures"], size) and not stop.is_set():
                    stop.set()
                    log.warning(
                        "failure tolerance exceeded; stopping the rollout",
                        run_id=self.run_id,
                        wave=wave.name,
                        failures=counter["failures"],
                        allowed=tolerance.allowed(size),
                    )

        try:
            async with asyncio.TaskGroup() as group:
                for item in todo:
                    group.create_task(one(item))
        except ExceptionGroup as group_error:
            # The journal failing stops the run (nothing may be written that cannot be recorded);
            # surface its one-line error rather than a group. Anything else is a bug: re-raise as is.
            journal_errors = group_error.subgroup((JournalError, JournalUnavailable))
            if journal_errors is not None:
                raise journal_errors.exceptions[0] from None
            raise
        return "halted" if stop.is_set() else "worked"

    async def _process(self, item: WorkItem, stop: asyncio.Event) -> AppState:
        structlog.contextvars.bind_contextvars(
            run_id=self.run_id,
            tenant=item.tenant_id,
            subscription=item.subscription_id,
            app=item.app_id,
            request_id=None,
        )
        record = self.records[item.app_id]
        try:
            return await self._drive(item, record, stop)
        except (JournalError, JournalUnavailable):
            raise
        except Exception as exc:  # the last resort: an app's failure never takes the run down
            return await self.fail(item, exc, "app failed")

    async def _drive(self, item: WorkItem, record: AppRecord, stop: asyncio.Event) -> AppState:
        state = record.state
        if state == AppState.VERIFYING:
            return await self._verify(item, None)
        fresh = state in (AppState.PENDING, AppState.HALTED)
        gate = self.settings.window_gate
        closed = gate(item.tenant_id) if gate is not None and fresh else None
        if closed is not None:
            self.waiting = True
            return await self.transition(
                item, AppState.PENDING, error_code="WindowClosed", error_message=closed, message="waiting"
            )
        # The caps bound operations in flight: the slot spans re-read, write and operation; the
        # read-back after it does not hold the slot (it is bounded by the read limit instead).
        async with self.pacer.slot(item.subscription_id):
            if not fresh:  # submitted: an operation may be in flight
                outcome = await self.writing.resume(item, record)
            elif stop.is_set():
                return state  # stays pending: the rollout stopped before this app's turn
            else:
                outcome = await self.writing.fresh(item, record.attempts)
        if isinstance(outcome, AppState):
            return outcome
        return await self._verify(item, outcome)

    async def _verify(self, item: WorkItem, app: App | None) -> AppState:
        return await self.verification.verify(
            item, app, signals=self.signals, also_on_success=self.also_on_success
        )


# --- entry points --------------------------------------------------------------------------------


def reopen_failed(journal: Journal, run_id: str) -> list[str]:
    """`resume --retry-failed`: put the run's failed and unverified apps back in play; their app ids.

    An app never written goes back to `pending` (re-read, fingerprint check, write). One whose write
    was sent goes back to `submitted` without an operation: the engine re-reads it first and verifies
    it when that write landed, so nothing is written twice. The wave's failure count starts again from
    the apps that stay failed, so the run's tolerance applies to the retry as to the first attempt.
    """
    transitions = [
        Transition(
            run_id=run_id,
            app_id=rec.app_id,
            state=AppState.SUBMITTED if rec.attempts else AppState.PENDING,
            clear_operation=True,
            message=f"retry requested (was {rec.state.value}: {rec.error_code or ''})",
        )
        for rec in journal.apps(run_id)
        if rec.state in FAILURE_STATES and rec.wave is not None
    ]
    journal.record_many(transitions)
    return [t.app_id for t in transitions]


async def run_plan(
    plan: Plan,
    gateway: ArmGateway,
    journal: Journal,
    settings: ExecutorSettings,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    progress: ProgressSink | None = None,
    plan_path: str | None = None,
    run_id: str | None = None,
    new_run: bool = False,
    signals: Signals | None = None,
) -> RunView:
    """Apply a (digest-checked) plan. Continues the latest run of the same plan unless `new_run`.

    `signals` defaults to the notification registry in the journal's file, when it holds one.
    """
    for repaired_run, repaired_app in journal.repair_rollbacks():
        log.warning("repaired the parent run of a rollback", run_id=repaired_run, app=repaired_app)
    rows, waves = plan_work(plan)
    if run_id is None and not new_run:
        run_id = journal.latest_run_for(plan.digest)
    if run_id is None:
        run_id = journal.create_run(
            kind="apply",
            plan_digest=plan.digest,
            plan_path=plan_path,
            target_name=plan.target.name,
            apps=rows,
        )
        log.info("run created", run_id=run_id, apps=len(rows))
    else:
        summary = journal.run(run_id)
        if summary.plan_digest != plan.digest:
            raise JournalError(
                f"{journal.path}: run {run_id} was made from another plan ({summary.plan_digest})"
            )
        log.info("resuming run", run_id=run_id)
    engine = Engine(
        run_id=run_id,
        gateway=gateway,
        journal=journal,
        settings=settings,
        clock=clock,
        sleep=sleep,
        progress=progress,
    )
    owned = signals is None
    engine.signals = signals if signals is not None else RegistryWatch.open(journal.path)
    try:
        await engine.run(waves)
    finally:
        if owned and engine.signals is not None:
            await engine.signals.close()
    return journal.run_view(run_id)


async def run_rollback(
    parent_run_id: str,
    gateway: ArmGateway,
    journal: Journal,
    settings: ExecutorSettings,
    *,
    app_ids: Sequence[str] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    progress: ProgressSink | None = None,
    run_id: str | None = None,
) -> RunView:
    """Put the succeeded apps of an apply run back on what they had; its own run of kind rollback.

    Each app's rollback success and its `rolled_back` mark in the parent run are one transaction, so
    no crash leaves the parent claiming an app is upgraded. Parents left so by an older version (which
    committed the two separately) are repaired first.
    """
    for repaired_run, repaired_app in journal.repair_rollbacks():
        log.warning("repaired the parent run of a rollback", run_id=repaired_run, app=repaired_app)
    parent = journal.run(parent_run_id)
    if parent.kind != "apply":
        raise JournalError(
            f"{journal.path}: run {parent_run_id} is a {parent.kind} run; roll back an apply run"
        )
    parent_apps = journal.apps(parent_run_id)
    if app_ids:
        known = {a.app_id.lower() for a in parent_apps}
        unknown = [a for a in app_ids if a.lower() not in known]
        if unknown:
            raise JournalError(f"{journal.path}: run {parent_run_id} has no app {unknown[0]}")
    digest = rollback_digest(parent_run_id, app_ids)
    if run_id is None:
        run_id = journal.latest_run_for(digest, kind="rollback")
    if run_id is None:
        rows, wave = rollback_work(parent_apps, app_ids)
        run_id = journal.create_run(
            kind="rollback",
            plan_digest=digest,
            plan_path=None,
            target_name=f"rollback of {parent_run_id}",
            apps=rows,
            parent_run_id=parent_run_id,
        )
    else:
        # Resuming: the apps of this rollback run, described by the parent's journal.
        mine = {r.app_id for r in journal.apps(run_id)}
        rolled = [r for r in parent_apps if r.app_id in mine]
        rolled = [
            r.model_copy(update={"state": AppState.SUCCEEDED}) if r.state == AppState.ROLLED_BACK else r
            for r in rolled
        ]
        _, wave = rollback_work(rolled, None)
    engine = Engine(
        run_id=run_id,
        gateway=gateway,
        journal=journal,
        settings=settings,
        clock=clock,
        sleep=sleep,
        progress=progress,
    )

    def mark_parent(item: WorkItem) -> Sequence[Transition]:
        return (
            Transition(
                run_id=parent_run_id,
                app_id=item.app_id,
                state=AppState.ROLLED_BACK,
                message=f"rolled back by run {run_id}",
            ),
        )

    engine.also_on_success = mark_parent
    await engine.run([wave])
    return journal.run_view(run_id)
