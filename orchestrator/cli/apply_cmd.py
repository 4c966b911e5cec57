"""`orchestrator apply`, `resume` and `rollback`: execute a reviewed plan (or undo one) with a journal.

These commands parse their flags, ask `executor.runs` which run and which apps, confirm, and hand the
run to `cli._run.execute` (display, Ctrl-C, report). Registered in `cli.commands`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated

import structlog
import typer
from rich.text import Text

from orchestrator.cli import _run, options
from orchestrator.cli._common import console, err_console
from orchestrator.config import FleetConfig
from orchestrator.errors import InputError, PlanFileError
from orchestrator.executor import ExecutorSettings, run_plan, run_rollback, runs
from orchestrator.executor.context import ProgressSink
from orchestrator.executor.engine import FAILURE_STATES
from orchestrator.gateway import ArmGateway
from orchestrator.journal import Journal, RunSummary
from orchestrator.models import TERMINAL_APP_STATES, Decision, Plan, RunView
from orchestrator.planning.planfile import read_plan
from orchestrator.render.status import next_step

RetryFailed = Annotated[
    bool,
    typer.Option(
        "--retry-failed",
        help="Retry the run's failed and unverified apps (after fixing the cause); the failure "
        "tolerance applies to the retry as to the first attempt. A write that landed is verified, "
        "never sent again.",
    ),
]

WaveName = Annotated[
    str | None,
    typer.Option("--wave", help="Run only this wave: its name (canary, wave-1, ...) or index in the plan."),
]
NewRun = Annotated[
    bool,
    typer.Option(
        "--new-run",
        help="Start a new run even if this plan has one (apps already on the target count as current).",
    ),
]
AllowIncomplete = Annotated[
    bool,
    typer.Option(
        "--allow-incomplete",
        help="Apply a plan made while some tenants could not be read (their apps are not in it).",
    ),
]
AppChoice = Annotated[
    list[str] | None,
    typer.Option(
        "--app", help="Only this app (repeatable): its name, resourceGroup/name, or full resource id."
    ),
]
PlanOut = Annotated[
    Path | None,
    typer.Option(
        "--plan-out", help="Write the rollback as a plan file to review (`orchestrator show FILE`) and stop."
    ),
]


def _run_arg(text: str) -> object:
    return typer.Argument(metavar="RUN", help=text, callback=options.check_run_id)


def _check_applicable(plan: Plan, plan_path: Path, allow_incomplete: bool) -> None:
    """`apply` takes an upgrade plan made while every tenant could be read (or --allow-incomplete)."""
    if plan.rollback_of is not None:
        raise PlanFileError(
            f"{plan_path}: this is the review of a rollback of run {plan.rollback_of}; run it with "
            f"`orchestrator rollback {plan.rollback_of}` (with the same --app choices)"
        )
    if plan.incomplete_tenants and not allow_incomplete:
        raise PlanFileError(
            f"{plan_path}: incomplete: {len(plan.incomplete_tenants)} tenant(s) could not be read "
            f"when it was made ({', '.join(plan.incomplete_tenants[:3])}); fix access and plan again, "
            "or pass --allow-incomplete to apply it to the tenants it covers"
        )


def _show_apply(plan: Plan, resumed: RunView | None) -> None:
    console.print(Text(f"Apply plan {plan.digest} → {plan.target.name}"), soft_wrap=True)
    console.print(_run.summary_table(plan, resumed))
    if resumed is not None:
        console.print(
            Text(f"Continuing run {resumed.run_id} ({resumed.state.value}).")
            + Text(" (--new-run starts a new one.)", style="dim"),
            soft_wrap=True,
        )
    if not any(i.decision == Decision.UPDATE for i in plan.items):
        console.print("Nothing to update in this plan.")


def apply(
    plan_path: Annotated[Path, typer.Argument(metavar="PLAN", help="The reviewed plan file.")],
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
    concurrency: options.Concurrency = None,
    per_subscription: options.PerSubscription = None,
    failure_tolerance: options.FailureTolerance = "0",
    wave: WaveName = None,
    bake: options.Bake = 0.0,
    yes: options.Yes = False,
    new_run: NewRun = False,
    respect_windows: options.RespectWindows = False,
    need_minutes: options.Need = 30,
    allow_incomplete: AllowIncomplete = False,
    time_scale: options.TimeScale = 1.0,
    log_format: options.LogFormat = "console",
    log_level: options.LogLevel = "warning",
) -> None:
    """Apply a reviewed plan: upgrade each app in waves, verify it, journal everything.

    Running it again on the same plan continues the same run (resume); a run that is over says so.
    """
    options.setup_logging(log_format, log_level)
    plan = read_plan(plan_path)
    fleet = options.load_fleet(config)
    _run.check_plan_against_config(plan, plan_path, fleet, config)
    _check_applicable(plan, plan_path, allow_incomplete)
    settings = _run.executor_settings(
        fleet,
        concurrency,
        per_subscription,
        failure_tolerance,
        wave=_run.resolve_wave(plan, wave),
        bake=bake,
        respect_windows=respect_windows,
        need_minutes=need_minutes,
        time_scale=time_scale,
    )
    _run.warn_windowless(fleet, respect_windows)
    with Journal(journal_path) as journal, journal.exclusive():
        existing = runs.choose_apply_run(journal, plan, new_run=new_run)
        if existing is not None:
            finished = _run.finished_run(journal, existing, plan_path)
            if finished is not None:
                raise typer.Exit(finished)
        _show_apply(plan, journal.run_view(existing) if existing else None)
        _run.confirm(f"Apply this plan to the {_run.where(fleet)}?", yes)
        digest, wave_names = plan.digest, plan.wave_names()
        # run_plan takes the plan over and lets it go once the run is journaled: nothing here keeps
        # a 10,000-app plan (~60 MB) alive through the run.
        handed = [plan]
        del plan
        view = _run.execute(
            fleet=fleet,
            config=config,
            journal=journal,
            preview=runs.apply_preview(journal, handed[0], existing, str(plan_path)),
            wave_names=wave_names,
            work=lambda gateway, display: run_plan(
                handed.pop(),
                gateway,
                journal,
                settings,
                progress=display,
                plan_path=str(plan_path),
                run_id=existing,
                new_run=new_run,
            ),
            run_id=lambda: existing or journal.latest_run_for(digest),
        )
    raise typer.Exit(_run.exit_code(view))


def _resume_summary(view: RunView, kind: str, retry_failed: bool) -> bool:
    """Say where the run stands; False when there is nothing to continue."""
    failed = sum(1 for a in view.apps if a.state in FAILURE_STATES and a.wave is not None)
    remaining = sum(1 for a in view.apps if a.state not in TERMINAL_APP_STATES)
    console.print(
        Text(
            f"Run {view.run_id} ({kind}, {view.state.value}): {remaining} of {len(view.apps)} "
            f"apps to go" + (f", {failed} to retry." if retry_failed else f", {failed} failed.")
        ),
        soft_wrap=True,
    )
    if remaining or (retry_failed and failed):
        return True
    console.print(Text("Nothing to continue."))
    step = next_step(view)
    if step:
        err_console.print(Text(step, style="yellow"), soft_wrap=True)
    return False


def _resumed_work(
    journal: Journal, summary: RunSummary, settings: ExecutorSettings, fleet: FleetConfig, config: Path
) -> tuple[_run.Work, str, dict[int, str]]:
    """What continuing the run does (apply or rollback), the question to confirm, the wave names."""
    run_id = summary.run_id
    if summary.kind == "rollback":
        parent = runs.rollback_parent(journal, summary)

        def rollback_work(gateway: ArmGateway, display: ProgressSink | None) -> Awaitable[RunView]:
            return run_rollback(parent, gateway, journal, settings, progress=display, run_id=run_id)

        return rollback_work, "Continue this rollback", {0: "rollback"}
    plan = runs.resumed_plan(journal, summary)
    plan_path = summary.plan_path or ""
    _run.check_plan_against_config(plan, plan_path, fleet, config)

    def apply_work(gateway: ArmGateway, display: ProgressSink | None) -> Awaitable[RunView]:
        return run_plan(
            plan, gateway, journal, settings, progress=display, plan_path=plan_path, run_id=run_id
        )

    return apply_work, "Continue applying this plan", plan.wave_names()


def resume(
    run_id: Annotated[str, _run_arg("The run to continue (its full id, from `orchestrator runs`).")],
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
    retry_failed: RetryFailed = False,
    concurrency: options.Concurrency = None,
    per_subscription: options.PerSubscription = None,
    failure_tolerance: options.FailureTolerance = "0",
    bake: options.Bake = 0.0,
    respect_windows: options.RespectWindows = False,
    need_minutes: options.Need = 30,
    yes: options.Yes = False,
    time_scale: options.TimeScale = 1.0,
    log_format: options.LogFormat = "console",
    log_level: options.LogLevel = "warning",
) -> None:
    """Continue a run: succeeded apps are left alone, in-flight operations are re-attached."""
    options.setup_logging(log_format, log_level)
    fleet = options.load_fleet(config)
    settings = _run.executor_settings(
        fleet,
        concurrency,
        per_subscription,
        failure_tolerance,
        bake=bake,
        respect_windows=respect_windows,
        need_minutes=need_minutes,
        time_scale=time_scale,
    )
    _run.warn_windowless(fleet, respect_windows)
    with Journal(journal_path, create=False) as journal, journal.exclusive():
        summary = journal.run(run_id)
        view = journal.run_view(run_id)
        if not _resume_summary(view, summary.kind, retry_failed):
            raise typer.Exit(_run.exit_code(view))
        work, question, waves = _resumed_work(journal, summary, settings, fleet, config)
        _run.confirm(f"{question} in the {_run.where(fleet)}?", yes)
        if retry_failed:
            runs.reopen_failed(journal, run_id)
            view = journal.run_view(run_id)
        result = _run.execute(
            fleet=fleet,
            config=config,
            journal=journal,
            preview=view,
            wave_names=waves,
            work=work,
            run_id=lambda: run_id,
        )
    raise typer.Exit(_run.exit_code(result))


def _write_review(review: Plan | None, parent: RunView, plan_out: Path) -> None:
    """`rollback --plan-out`: the rollback as a plan file to review, instead of running it."""
    from orchestrator.planning.planfile import write_plan
    from orchestrator.render.plan_review import summary_line

    if review is None:
        raise InputError(
            f"--plan-out: run {parent.run_id}'s plan file ({parent.plan_path}) is missing or changed; "
            "cannot say what the rollback changes"
        )
    write_plan(review, plan_out)
    console.print(Text(summary_line(review)), soft_wrap=True)
    err_console.print(Text(f"rollback plan written to {plan_out} ({review.digest})"), soft_wrap=True)


def _show_rollback(preview: RunView, review: Plan | None) -> str:
    """Say what the rollback does (and which actions become denied again); the question to confirm."""
    from orchestrator.executor.rollback_plan import denied_again

    tenants = Counter(a.tenant_name or a.tenant_id for a in preview.apps)
    console.print(
        Text(
            f"Roll back {len(preview.apps)} app(s) of run {preview.run_id}: "
            + (", ".join(f"{t}: {n}" for t, n in sorted(tenants.items())) or "nothing to do")
        ),
        soft_wrap=True,
    )
    again = denied_again(review) if review is not None else []
    for action, apps, in_tenants in again:
        console.print(
            Text(f"denied again: {action} on {apps} app(s) in {in_tenants} tenant(s)", style="red"),
            soft_wrap=True,
        )
    return "Roll these apps back" + (" (the actions above become denied again)" if again else "")


def rollback(
    run_id: Annotated[str, _run_arg("The apply run to undo (its full id).")],
    app_ids: AppChoice = None,
    plan_out: PlanOut = None,
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
    concurrency: options.Concurrency = None,
    per_subscription: options.PerSubscription = None,
    failure_tolerance: options.FailureTolerance = "0",
    yes: options.Yes = False,
    time_scale: options.TimeScale = 1.0,
    log_format: options.LogFormat = "console",
    log_level: options.LogLevel = "warning",
) -> None:
    """Put each succeeded app of a run back on the definition or plan it had before (its own run).

    The exclusions the upgrade added are taken away again: those actions become denied again.
    """
    options.setup_logging(log_format, log_level)
    fleet = options.load_fleet(config)
    settings = _run.executor_settings(
        fleet,
        concurrency,
        per_subscription,
        failure_tolerance,
        time_scale=time_scale,
    )
    with Journal(journal_path, create=False) as journal, journal.exclusive():
        parent = journal.run_view(run_id)
        chosen = _run.resolve_apps(parent, app_ids)
        review = runs.rollback_review(journal, parent, chosen)
        if plan_out is not None:
            _write_review(review, parent, plan_out)
            raise typer.Exit(0)
        preview = runs.rollback_preview(journal, parent, chosen)
        question = _show_rollback(preview, review)
        _run.confirm(f"{question} in the {_run.where(fleet)}?", yes)
        view = _run.execute(
            fleet=fleet,
            config=config,
            journal=journal,
            preview=preview,
            wave_names={0: "rollback"},
            work=lambda gateway, display: run_rollback(
                run_id, gateway, journal, settings, app_ids=chosen, progress=display
            ),
            run_id=lambda: runs.rollback_run(journal, run_id, chosen),
        )
    structlog.contextvars.clear_contextvars()
    raise typer.Exit(_run.exit_code(view))
