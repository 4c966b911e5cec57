"""The run service: which run a command continues, the plan-digest check, what a display starts from
(the preview), which apps a rollback takes, and the entry points that run the engine.

`apply`, `resume`, `rollback` and `handoff` ask these functions; the engine loop knows none of it. Each
rule lives here once, so the CLI's preview and the run it starts cannot disagree.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import structlog

from orchestrator.errors import InputError, JournalError, PlanFileError
from orchestrator.executor.context import Clock, ProgressSink, Sleep
from orchestrator.executor.engine import FAILURE_STATES, Engine
from orchestrator.executor.rollback_plan import rollback_candidates
from orchestrator.executor.settings import ExecutorSettings
from orchestrator.executor.work import WaveWork, WorkItem, plan_work
from orchestrator.gateway import ArmGateway
from orchestrator.journal import AppRecord, Journal, NewApp, RunSummary, Transition
from orchestrator.models import AppState, AppStatusView, Plan, RunState, RunView
from orchestrator.notifications.signals import RegistryWatch, Signals

log = structlog.get_logger("orchestrator.executor")


# --- plans and the runs made from them -----------------------------------------------------------


def intact_plan(plan_path: str | None, digest: str) -> Plan | None:
    """The plan file a run was made from, when it is still where it was and unchanged; else None."""
    from orchestrator.planning.planfile import read_plan

    if not plan_path:
        return None
    try:
        plan = read_plan(Path(plan_path))
    except InputError:
        return None  # moved, edited or unreadable
    return plan if plan.digest == digest else None


def check_same_plan(plan: Plan, run: RunSummary, plan_path: str | None) -> None:
    """A run continues only the plan it was started from (same digest), else one line naming the file."""
    if plan.digest != run.plan_digest:
        raise PlanFileError(
            f"{plan_path or 'the plan'}: digest {plan.digest} is not the plan run {run.run_id} "
            f"was started from ({run.plan_digest}); the file changed"
        )


def choose_apply_run(
    journal: Journal, plan: Plan, *, run_id: str | None = None, new_run: bool = False
) -> str | None:
    """The run applying `plan` continues: `run_id` (checked against the plan), else the plan's latest
    run unless `new_run`. None: a new run is to be made."""
    if run_id is not None:
        check_same_plan(plan, journal.run(run_id), None)
        return run_id
    return None if new_run else journal.latest_run_for(plan.digest)


def open_apply_run(
    journal: Journal,
    plan: Plan,
    *,
    plan_path: str | None,
    run_id: str | None = None,
    new_run: bool = False,
) -> tuple[str, bool]:
    """The run to apply `plan` in, made (with every app's starting state) when there is none; and
    whether it was made now."""
    chosen = choose_apply_run(journal, plan, run_id=run_id, new_run=new_run)
    if chosen is not None:
        return chosen, False
    rows, _ = plan_work(plan)
    made = journal.create_run(
        kind="apply",
        plan_digest=plan.digest,
        plan_path=plan_path,
        target_name=plan.target.name,
        apps=rows,
        wave_names=plan.wave_names(),
    )
    log.info("run created", run_id=made, apps=len(rows))
    return made, True


def resumed_plan(journal: Journal, run: RunSummary) -> Plan:
    """The plan an apply run applies, read from the file it names and checked to be unchanged."""
    from orchestrator.planning.planfile import read_plan

    if not run.plan_path:
        raise JournalError(f"{journal.path}: run {run.run_id} does not say which plan file it applies")
    plan = read_plan(Path(run.plan_path))
    check_same_plan(plan, run, run.plan_path)
    return plan


def chosen_run(journal: Journal, run_id: str | None) -> str:
    """The run a command was given, else the journal's latest."""
    chosen = run_id or journal.latest_run()
    if chosen is None:
        raise JournalError(f"{journal.path}: the journal has no runs yet")
    return chosen


def rollback_parent(journal: Journal, run: RunSummary) -> str:
    """The apply run a rollback run undoes."""
    if run.parent_run_id is None:
        raise JournalError(f"{journal.path}: rollback run {run.run_id} names no parent run")
    return run.parent_run_id


def apply_preview(journal: Journal, plan: Plan, run_id: str | None, plan_path: str) -> RunView:
    """What the display starts from: the run as journaled, or the plan as a fresh run would be."""
    if run_id is not None:
        return journal.run_view(run_id)
    now = datetime.now(UTC)
    return RunView(
        run_id="(new)",
        kind="apply",
        plan_digest=plan.digest,
        plan_path=plan_path,
        target_name=plan.target.name,
        state=RunState.RUNNING,
        started_at=now,
        updated_at=now,
        # The same rows a new run journals (plan_work decides each app's wave and starting state).
        apps=tuple(_row_view(row) for row in plan_work(plan)[0]),
        wave_names=plan.wave_names(),
    )


def _row_view(row: NewApp) -> AppStatusView:
    return AppStatusView(
        app_id=row.app_id,
        app_name=row.app_name,
        tenant_id=row.tenant_id,
        tenant_name=row.tenant_name,
        subscription_id=row.subscription_id,
        wave=row.wave,
        state=row.state,
        error_message=row.error_message,
    )


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


# --- rollback ------------------------------------------------------------------------------------


def rollback_digest(parent_run_id: str, app_ids: Sequence[str] | None) -> str:
    selection = ",".join(sorted(a.lower() for a in app_ids)) if app_ids else "*"
    return "rollback:" + hashlib.sha256(f"{parent_run_id}|{selection}".encode()).hexdigest()


def rollback_run(journal: Journal, parent_run_id: str, app_ids: Sequence[str] | None) -> str | None:
    """The rollback run of this choice of apps, if one was started already."""
    return journal.latest_run_for(rollback_digest(parent_run_id, app_ids), kind="rollback")


def rollback_work(
    parent: Sequence[AppRecord], app_ids: Sequence[str] | None
) -> tuple[list[NewApp], WaveWork]:
    """Put every succeeded app of `parent` (or the chosen ones) back on what it had before."""
    rows: list[NewApp] = []
    items: list[WorkItem] = []
    for rec in rollback_candidates(parent, app_ids):
        before = rec.before
        assert before is not None and rec.after_fingerprint is not None  # rollback_candidates
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


def rollback_preview(journal: Journal, parent: RunView, app_ids: Sequence[str] | None) -> RunView:
    """The apps a new rollback of `parent` takes (the same choice `rollback_work` makes), all pending."""
    chosen = {r.app_id for r in rollback_candidates(journal.apps(parent.run_id), app_ids)}
    apps = tuple(
        a.model_copy(update={"state": AppState.PENDING, "wave": 0}) for a in parent.apps if a.app_id in chosen
    )
    return parent.model_copy(update={"apps": apps})


def rollback_review(journal: Journal, parent: RunView, chosen: Sequence[str] | None) -> Plan | None:
    """The rollback as a sealed plan, when the run's plan file is still there and intact."""
    from orchestrator import __version__
    from orchestrator.executor.rollback_plan import rollback_plan
    from orchestrator.planning.planfile import seal

    if parent.kind != "apply":
        return None
    plan = intact_plan(parent.plan_path, parent.plan_digest)
    if plan is None:
        return None
    review = rollback_plan(
        plan,
        parent.run_id,
        journal.apps(parent.run_id),
        chosen,
        tool_version=__version__,
        now=datetime.now(UTC),
    )
    return seal(review)


# --- entry points --------------------------------------------------------------------------------


def _engine(
    run_id: str,
    gateway: ArmGateway,
    journal: Journal,
    settings: ExecutorSettings,
    clock: Clock,
    sleep: Sleep,
    progress: ProgressSink | None,
    signals: Signals | None,
) -> Engine:
    engine = Engine(
        run_id=run_id,
        gateway=gateway,
        journal=journal,
        settings=settings,
        clock=clock,
        sleep=sleep,
        progress=progress,
    )
    engine.signals = signals
    return engine


def _repair(journal: Journal) -> None:
    for repaired_run, repaired_app in journal.repair_rollbacks():
        log.warning("repaired the parent run of a rollback", run_id=repaired_run, app=repaired_app)


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
    _repair(journal)
    waves = plan_work(plan)[1]  # not the journal rows: kept alive, they cost ~11 MB at 10,000 apps
    run_id, made = open_apply_run(journal, plan, plan_path=plan_path, run_id=run_id, new_run=new_run)
    del plan  # journaled: the waves are all the run needs (a caller that hands it over frees it)
    if not made:
        log.info("resuming run", run_id=run_id)
    watch = signals if signals is not None else RegistryWatch.open(journal.path)
    try:
        await _engine(run_id, gateway, journal, settings, clock, sleep, progress, watch).run(waves)
    finally:
        if signals is None and watch is not None:
            await watch.close()
    return journal.run_view(run_id)


def _rollback_wave(
    journal: Journal, parent_run_id: str, app_ids: Sequence[str] | None, run_id: str | None
) -> tuple[str, WaveWork]:
    """The rollback run (made when new) and its wave of work, described by the parent's journal."""
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
    if run_id is None:
        run_id = rollback_run(journal, parent_run_id, app_ids)
    if run_id is None:
        rows, wave = rollback_work(parent_apps, app_ids)
        made = journal.create_run(
            kind="rollback",
            plan_digest=rollback_digest(parent_run_id, app_ids),
            plan_path=None,
            target_name=f"rollback of {parent_run_id}",
            apps=rows,
            wave_names={wave.index: wave.name},
            parent_run_id=parent_run_id,
        )
        return made, wave
    # Resuming: the apps of this rollback run, as they were before it marked them rolled back.
    mine = {r.app_id for r in journal.apps(run_id)}
    rolled = [
        r.model_copy(update={"state": AppState.SUCCEEDED}) if r.state == AppState.ROLLED_BACK else r
        for r in parent_apps
        if r.app_id in mine
    ]
    return run_id, rollback_work(rolled, None)[1]


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
    _repair(journal)
    run_id, wave = _rollback_wave(journal, parent_run_id, app_ids, run_id)
    engine = _engine(run_id, gateway, journal, settings, clock, sleep, progress, None)

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


def wave_names(view: RunView) -> dict[int, str]:
    """The plan's wave names ("canary", ...): as journaled; for a run journaled before names were, from
    its plan file when that is still where it was and intact."""
    if view.wave_names:
        return dict(view.wave_names)
    plan = intact_plan(view.plan_path, view.plan_digest)
    return {} if plan is None else plan.wave_names()
