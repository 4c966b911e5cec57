"""`orchestrator apply`, `resume` and `rollback`: execute a reviewed plan (or undo one) with a journal."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from orchestrator.cli import options
from orchestrator.cli._common import console, err_console
from orchestrator.config import FleetConfig
from orchestrator.errors import (
    EXIT_HALTED,
    EXIT_PARTIAL,
    InputError,
    JournalError,
    PlanFileError,
)
from orchestrator.executor import CrashPoint, ExecutorSettings, Tolerance, run_plan, run_rollback
from orchestrator.executor import Progress as AppProgress
from orchestrator.executor.engine import FAILURE_STATES, reopen_failed, rollback_digest
from orchestrator.executor.work import plan_work
from orchestrator.journal import Journal, resolve_path
from orchestrator.models import TERMINAL_APP_STATES, AppState, Decision, Plan, RunState, RunView

CRASH_ENV = "ORCHESTRATOR_TEST_CRASH_AT"  # test hook: kill the process at a point (crash/resume tests)
TIME_SCALE_ENV = "ORCHESTRATOR_TIME_SCALE"  # multiply the executor's own waits (emulator time scale)
PROBLEM_STATES = frozenset({AppState.FAILED, AppState.UNVERIFIED, AppState.STALE})
IN_FLIGHT_STATES = frozenset({AppState.SUBMITTED, AppState.VERIFYING})

# Shown under `apply`, `resume` and `rollback --help` (paragraphs: rich help joins single lines).
EXIT_CODES = (
    "Exit codes:\n\n0 done, or waiting for maintenance windows (nothing failed).\n\n"
    "1 an unexpected error.\n\n2 bad input (config, plan, journal, flag); nothing was written.\n\n"
    "3 some apps failed, were stale or unverified; the rest completed (see `orchestrator status`).\n\n"
    "4 halted: a wave went over its failure tolerance; fix the cause, then "
    "`orchestrator resume RUN --retry-failed`.\n\n"
    "130 interrupted (Ctrl-C); `orchestrator resume RUN` continues and re-attaches writes in flight."
)


def journal_option() -> Any:
    return typer.Option(
        None,
        "--journal",
        help="Journal file (SQLite). Default: $ORCHESTRATOR_JOURNAL, else .state/journal.db.",
        show_default=False,
    )


def _tolerance(text: str) -> Tolerance:
    try:
        return Tolerance.parse(text)
    except ValueError as exc:
        raise InputError(f"--failure-tolerance: {exc}") from None


def window_gate(fleet: FleetConfig, need_minutes: int) -> Callable[[str], str | None]:
    """tenant id → None when its maintenance window is open (for long enough) now, else why not."""
    from datetime import UTC, datetime, timedelta

    from orchestrator.planning.windows import is_open

    need = timedelta(minutes=need_minutes)
    tenants = {t.id.lower(): t for t in fleet.customer_list}

    def gate(tenant_id: str) -> str | None:
        tenant = tenants.get(tenant_id.lower())
        if tenant is None:
            return "tenant not in the fleet config"
        decision = is_open(fleet.maintenance_for(tenant), datetime.now(UTC), need=need)
        return None if decision.open else decision.reason

    return gate


def _settings(
    fleet: FleetConfig,
    *,
    concurrency: int | None,
    per_subscription: int | None,
    failure_tolerance: str,
    wave: int | None,
    bake: float,
    respect_windows: bool = False,
    need_minutes: int = 30,
) -> ExecutorSettings:
    for flag, value in (("--concurrency", concurrency), ("--per-subscription", per_subscription)):
        if value is not None and value < 1:
            raise InputError(f"{flag}: must be at least 1 (got {value})")
    if bake < 0:
        raise InputError(f"--bake: must not be negative (got {bake})")
    crash = os.environ.get(CRASH_ENV)
    try:
        crash_at = CrashPoint.parse(crash) if crash else None
    except ValueError as exc:
        raise InputError(f"${CRASH_ENV}: {exc}") from None
    settings = ExecutorSettings(
        concurrency=concurrency or fleet.concurrency.global_limit,
        per_subscription=per_subscription or fleet.concurrency.per_subscription,
        failure_tolerance=_tolerance(failure_tolerance),
        only_wave=wave,
        bake_seconds=bake,
        crash_at=crash_at,
        window_gate=window_gate(fleet, need_minutes) if respect_windows else None,
    )
    if need_minutes < 0:
        raise InputError(f"--need: must not be negative (got {need_minutes})")
    scale = os.environ.get(TIME_SCALE_ENV)
    if scale:
        try:
            factor = float(scale)
        except ValueError:
            raise InputError(f"${TIME_SCALE_ENV}: {scale!r} is not a number") from None
        if factor <= 0:
            raise InputError(f"${TIME_SCALE_ENV}: must be positive (got {scale})")
        settings = settings.scaled(factor)
    return settings


def resolve_wave(plan: Plan, text: str | None) -> int | None:
    """`--wave`: a wave's name ("canary", "wave-1") or its index in the plan."""
    if text is None:
        return None
    wanted = text.strip()
    for wave in plan.waves:
        if wave.name.casefold() == wanted.casefold() or str(wave.index) == wanted:
            return wave.index
    known = ", ".join(f"{w.name} ({w.index})" for w in plan.waves) or "none"
    raise InputError(f"--wave {text!r}: the plan has no such wave (waves: {known})")


def _rg_name(app_id: str) -> str:
    """`resourceGroup/name` of an ARM resource id (what an operator sees in the portal)."""
    parts = app_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    group = parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered[:-1] else "?"
    return f"{group}/{parts[-1]}"


def resolve_apps(view: RunView, names: list[str] | None) -> list[str] | None:
    """`--app`: each the app's short name, `resourceGroup/name`, or full ARM id → full ids."""
    if not names:
        return None
    chosen: list[str] = []
    for name in names:
        wanted = name.strip().strip("/").casefold()
        hits = [
            a.app_id
            for a in view.apps
            if wanted
            in (a.app_id.strip("/").casefold(), _rg_name(a.app_id).casefold(), a.app_name.casefold())
        ]
        if not hits:
            raise InputError(f"--app {name!r}: run {view.run_id} has no such app (name, group/name or id)")
        if len(hits) > 1:
            choices = ", ".join(sorted(_rg_name(h) for h in hits)[:5])
            raise InputError(f"--app {name!r}: {len(hits)} apps have that name; give group/name: {choices}")
        chosen.append(hits[0])
    return chosen


def _where(fleet: FleetConfig) -> str:
    """Which Azure a prompt is about: the cloud's name and its ARM endpoint."""
    cloud = fleet.cloud
    return f"{cloud.name} cloud at {cloud.arm}"


def _warn_windowless(fleet: FleetConfig, respect_windows: bool) -> None:
    if not respect_windows:
        return
    open_always = [t.name or t.id for t in fleet.tenants if not fleet.maintenance_for(t).windows]
    if open_always:
        err_console.print(
            Text(
                f"warning: --respect-windows: {len(open_always)} tenant(s) have no maintenance window "
                f"configured and count as always open: {', '.join(open_always[:5])}"
                + (" …" if len(open_always) > 5 else ""),
                style="yellow",
            ),
            soft_wrap=True,
        )


def _read_plan(path: Path) -> Plan:
    from orchestrator.planning.planfile import read_plan

    return read_plan(path)


def _check_plan_against_config(plan: Plan, plan_path: Path | str, fleet: FleetConfig, config: Path) -> None:
    known = {t.id.lower() for t in fleet.customer_list}
    missing = sorted(
        {
            i.tenant_id
            for i in plan.items
            if i.decision == Decision.UPDATE and i.tenant_id.lower() not in known
        }
    )
    if missing:
        raise PlanFileError(
            f"{plan_path}: tenant {missing[0]} is not in {config}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; refusing to apply a plan made for another fleet"
        )


def _summary_table(plan: Plan, resumed: RunView | None) -> Table:
    waves = {w.index: w.name for w in plan.waves}
    counts: Counter[tuple[int | None, str]] = Counter()
    done: Counter[tuple[int | None, str]] = Counter()
    state = {a.app_id: a.state for a in resumed.apps} if resumed else {}
    for item in plan.items:
        if item.decision != Decision.UPDATE or item.wave is None:
            continue
        key = (item.wave, item.tenant_name or item.tenant_id)
        counts[key] += 1
        if state.get(item.app_id) in TERMINAL_APP_STATES:
            done[key] += 1
    table = Table()
    table.add_column("wave")
    table.add_column("tenant")
    table.add_column("apps to update", justify="right")
    if resumed:
        table.add_column("already done", justify="right")
    for wave, tenant in sorted(counts, key=lambda k: (k[0] or 0, k[1])):
        row = [waves.get(wave or 0, str(wave)), tenant, str(counts[wave, tenant])]
        if resumed:
            row.append(str(done[wave, tenant]))
        table.add_row(*row)
    return table


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError("no terminal to confirm on: pass --yes to run without asking")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


class _LiveDisplay:
    """A rich progress bar per (wave, tenant) on a terminal; nothing otherwise (the logs tell the story)."""

    def __init__(self, view: RunView, wave_names: dict[int, str]) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        self.tasks: dict[tuple[int | None, str], TaskID] = {}
        self.states: dict[str, AppState] = {}
        self.key_of: dict[str, tuple[int | None, str]] = {}
        groups: dict[tuple[int | None, str], list[str]] = {}
        for app in view.apps:
            if app.wave is None:
                continue
            group: tuple[int | None, str] = (app.wave, app.tenant_name or app.tenant_id)
            groups.setdefault(group, []).append(app.app_id)
            self.states[app.app_id] = app.state
            self.key_of[app.app_id] = group
        for key in sorted(groups, key=lambda k: (k[0] or 0, k[1])):
            wave, tenant = key[0], key[1]
            label = f"{wave_names.get(wave or 0, str(wave))} · {tenant}"
            self.tasks[key] = self.progress.add_task(label, total=len(groups[key]), detail="")
            self._refresh(key)

    def _refresh(self, key: tuple[int | None, str]) -> None:
        apps = [a for a, k in self.key_of.items() if k == key]
        counts = Counter(self.states[a] for a in apps)
        finished = sum(n for s, n in counts.items() if s in TERMINAL_APP_STATES)
        detail = " ".join(f"{s.value}={n}" for s, n in sorted(counts.items()) if n and s != AppState.PENDING)
        self.progress.update(self.tasks[key], completed=finished, detail=detail)

    def __call__(self, event: AppProgress) -> None:
        if event.app_id not in self.key_of:
            return
        self.states[event.app_id] = event.state
        self._refresh(self.key_of[event.app_id])

    @contextmanager
    def shown(self) -> Iterator[None]:
        with self.progress:
            yield


def _exit_code(view: RunView) -> int:
    if view.state == RunState.HALTED:
        return EXIT_HALTED
    if any(a.state in PROBLEM_STATES for a in view.apps):
        return EXIT_PARTIAL
    return 0


def next_step(view: RunView) -> str | None:
    """What the operator runs next for this run, in words with the command; None when nothing is left."""
    run = view.run_id
    counts = Counter(a.state for a in view.apps)
    failed = counts[AppState.FAILED] + counts[AppState.UNVERIFIED]
    to_go = sum(1 for a in view.apps if a.state not in TERMINAL_APP_STATES)
    retry = f"`orchestrator resume {run} --retry-failed`"
    if view.state == RunState.HALTED:
        return (
            f"halted: a wave went over its failure tolerance ({failed} failed); {to_go} app(s) stay pending. "
            f"Fix the cause (see the failures above), then {retry} retries the failed apps and goes on "
            "within the same tolerance (a higher --failure-tolerance accepts more failures)."
        )
    if view.state == RunState.WAITING:
        return (
            f"waiting: {to_go} app(s) wait for their maintenance window; run the same command again later "
            f"(or `orchestrator resume {run} --respect-windows`)."
        )
    if to_go:
        return f"{to_go} app(s) still to go: `orchestrator resume {run}` continues the run."
    parts = []
    if failed:
        parts.append(f"{failed} app(s) failed: fix the cause, then {retry}")
    if counts[AppState.STALE]:
        parts.append(
            f"{counts[AppState.STALE]} app(s) changed since planning (stale): make a new plan for them"
        )
    return "; ".join(parts) + "." if parts else None


def _report(view: RunView) -> None:
    from orchestrator.cli.status_cmd import render_table

    render_table(view, by="tenant")
    step = next_step(view)
    if step is not None:
        style = "bold yellow" if view.state in (RunState.HALTED, RunState.INTERRUPTED) else "yellow"
        err_console.print(Text(step, style=style), soft_wrap=True)


def _interrupted(journal: Journal, run_id: str | None) -> None:
    """Ctrl-C: record the run as interrupted and say what was in flight and how to continue."""
    if run_id is None:
        err_console.print(
            Text("interrupted before the run started; nothing was written", style="bold yellow")
        )
        return
    if journal.run(run_id).state == RunState.RUNNING:
        journal.set_run_state(run_id, RunState.INTERRUPTED, "interrupted (Ctrl-C)")
    view = journal.run_view(run_id)
    in_flight = sum(1 for a in view.apps if a.state in IN_FLIGHT_STATES)
    to_go = sum(1 for a in view.apps if a.state not in TERMINAL_APP_STATES) - in_flight
    err_console.print(
        Text(
            f"interrupted: run {run_id} stopped with {in_flight} write(s) in flight at ARM (they carry on "
            f"there) and {to_go} app(s) not started. `orchestrator resume {run_id}` re-attaches to the "
            "operations in flight (nothing is written twice) and continues.",
            style="bold yellow",
        ),
        soft_wrap=True,
    )


class _WaveLines:
    """Without a terminal: one line per wave as it finishes (the logs say more at --log-level info)."""

    def __init__(self, view: RunView, wave_names: dict[int, str]) -> None:
        self.wave_names = wave_names
        self.states = {a.app_id: a.state for a in view.apps if a.wave is not None}
        self.wave_of = {a.app_id: a.wave for a in view.apps if a.wave is not None}
        self.done: set[int | None] = {w for w in set(self.wave_of.values()) if self._finished(w)}

    def _finished(self, wave: int | None) -> bool:
        return all(self.states[a] in TERMINAL_APP_STATES for a, w in self.wave_of.items() if w == wave)

    def __call__(self, event: AppProgress) -> None:
        if event.app_id not in self.wave_of:
            return
        self.states[event.app_id] = event.state
        wave = self.wave_of[event.app_id]
        if wave in self.done or not self._finished(wave):
            return
        self.done.add(wave)
        counts = Counter(s for a, s in self.states.items() if self.wave_of[a] == wave)
        detail = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items()))
        err_console.print(
            Text(f"wave {self.wave_names.get(wave or 0, str(wave))}: done ({detail})"), soft_wrap=True
        )


def _execute(
    *,
    fleet: FleetConfig,
    config: Path,
    journal: Journal,
    settings: ExecutorSettings,
    preview: RunView | None,
    wave_names: dict[int, str],
    work: Any,
    run_id: Callable[[], str | None],
) -> RunView:
    """Run `work(gateway, progress)` with a gateway and, on a terminal, a live display.

    Ctrl-C: the run is journaled as interrupted, the message names `resume`, and the exit code is 130.
    """
    del settings  # already bound into `work`; named here so call sites read clearly
    gateway = options.open_gateway(fleet, config)
    display: Any = None
    if preview is not None:
        display = (
            _LiveDisplay(preview, wave_names) if err_console.is_terminal else _WaveLines(preview, wave_names)
        )

    async def main() -> RunView:
        try:
            result: RunView = await work(gateway, display)
            return result
        finally:
            await gateway.close()

    try:
        if not isinstance(display, _LiveDisplay):
            return options.run_async(main())
        with display.shown():
            return options.run_async(main())
    except KeyboardInterrupt:
        _interrupted(journal, run_id())
        raise typer.Exit(130) from None


def _preview_view(journal: Journal, plan: Plan, run_id: str | None, plan_path: str) -> RunView:
    """What the display starts from: the run as journaled, or the plan as a fresh run would be."""
    if run_id is not None:
        return journal.run_view(run_id)
    from datetime import UTC, datetime

    from orchestrator.models import AppStatusView

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
        apps=tuple(
            AppStatusView(
                app_id=row.app_id,
                app_name=row.app_name,
                tenant_id=row.tenant_id,
                tenant_name=row.tenant_name,
                subscription_id=row.subscription_id,
                wave=row.wave,
                state=row.state,
                error_message=row.error_message,
            )
            for row in plan_work(plan)[0]
        ),
    )


def _finished_run(journal: Journal, run_id: str, plan_path: Path) -> int | None:
    """A plan whose run is over: say what happened and what to do; the exit code. None: continue it."""
    view = journal.run_view(run_id)
    if view.state != RunState.COMPLETED:
        return None
    counts = Counter(a.state for a in view.apps)
    rolled = counts[AppState.ROLLED_BACK]
    if rolled:
        raise InputError(
            f"{plan_path}: its run {run_id} is over and {rolled} of its apps were rolled back since; "
            f"nothing applied. To apply this plan again: `orchestrator apply {plan_path} --new-run` "
            "(apps still on the target count as current), or make a new plan first if the fleet changed"
        )
    done = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items()))
    console.print(Text(f"Run {run_id} of this plan already completed ({done}); nothing to do."))
    step = next_step(view) or (
        f"To apply the plan again from the start: `orchestrator apply {plan_path} --new-run`."
    )
    err_console.print(Text(step, style="yellow"), soft_wrap=True)
    return _exit_code(view)


def _tolerance_option() -> Any:
    return typer.Option(
        "0",
        "--failure-tolerance",
        help="Failures (failed or unverified apps) a wave may have before the rollout stops: N or P%.",
    )


def _concurrency_option() -> Any:
    return typer.Option(
        None,
        "--concurrency",
        help="Safety limit on apps in progress at once, all tenants together (default: the config's, "
        "else none: ARM paces).",
    )


def _per_subscription_option() -> Any:
    return typer.Option(
        None,
        "--per-subscription",
        help="Safety limit on apps in progress in one subscription (ARM throttles writes per "
        "subscription; default: the config's, else none).",
    )


def _yes_option() -> Any:
    return typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (needed without a terminal).")


def _bake_option() -> Any:
    return typer.Option(0.0, "--bake", help="Seconds to wait after a wave before starting the next.")


def _windows_option() -> Any:
    return typer.Option(
        False,
        "--respect-windows",
        help="Start an app only while its tenant's maintenance window is open; the others wait "
        "(run the same command again later).",
    )


def _need_option() -> Any:
    return typer.Option(
        30, "--need", help="With --respect-windows: minutes the window must stay open for an app to start."
    )


def register(app: typer.Typer) -> None:
    @app.command(epilog=EXIT_CODES)
    def apply(
        plan_path: Path = typer.Argument(..., metavar="PLAN", help="The reviewed plan file."),
        config: Path = options.config_option(),
        journal_path: Path | None = journal_option(),
        concurrency: int | None = _concurrency_option(),
        per_subscription: int | None = _per_subscription_option(),
        failure_tolerance: str = _tolerance_option(),
        wave: str | None = typer.Option(
            None, "--wave", help="Run only this wave: its name (canary, wave-1, ...) or index in the plan."
        ),
        bake: float = _bake_option(),
        yes: bool = _yes_option(),
        new_run: bool = typer.Option(
            False,
            "--new-run",
            help="Start a new run even if this plan has one (apps already on the target count as current).",
        ),
        respect_windows: bool = _windows_option(),
        need_minutes: int = _need_option(),
        allow_incomplete: bool = typer.Option(
            False,
            "--allow-incomplete",
            help="Apply a plan made while some tenants could not be read (their apps are not in it).",
        ),
        log_format: options.LogFormatChoice = options.log_format_option(),
        log_level: options.LogLevelChoice = options.log_level_option(),
    ) -> None:
        """Apply a reviewed plan: upgrade each app in waves, verify it, journal everything.

        Running it again on the same plan continues the same run (resume); a run that is over says so.
        """
        options.setup_logging(log_format, log_level)
        plan = _read_plan(plan_path)
        fleet = options.load_fleet(config)
        _check_plan_against_config(plan, plan_path, fleet, config)
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
        wave_index = resolve_wave(plan, wave)
        settings = _settings(
            fleet,
            concurrency=concurrency,
            per_subscription=per_subscription,
            failure_tolerance=failure_tolerance,
            wave=wave_index,
            bake=bake,
            respect_windows=respect_windows,
            need_minutes=need_minutes,
        )
        _warn_windowless(fleet, respect_windows)
        with Journal(resolve_path(journal_path)) as journal, journal.exclusive():
            existing = None if new_run else journal.latest_run_for(plan.digest)
            if existing is not None:
                finished = _finished_run(journal, existing, plan_path)
                if finished is not None:
                    raise typer.Exit(finished)
            resumed = journal.run_view(existing) if existing else None
            console.print(Text(f"Apply plan {plan.digest} → {plan.target.name}"), soft_wrap=True)
            console.print(_summary_table(plan, resumed))
            if resumed is not None:
                console.print(
                    Text(f"Continuing run {resumed.run_id} ({resumed.state.value}).")
                    + Text(" (--new-run starts a new one.)", style="dim"),
                    soft_wrap=True,
                )
            if not any(i.decision == Decision.UPDATE for i in plan.items):
                console.print("Nothing to update in this plan.")
            _confirm(f"Apply this plan to the {_where(fleet)}?", yes)
            preview = _preview_view(journal, plan, existing, str(plan_path))
            wave_names = {w.index: w.name for w in plan.waves}

            async def work(gateway: Any, display: Any) -> RunView:
                return await run_plan(
                    plan,
                    gateway,
                    journal,
                    settings,
                    progress=display,
                    plan_path=str(plan_path),
                    run_id=existing,
                    new_run=new_run,
                )

            def current_run() -> str | None:
                return existing or journal.latest_run_for(plan.digest)

            view = _execute(
                fleet=fleet,
                config=config,
                journal=journal,
                settings=settings,
                preview=preview,
                wave_names=wave_names,
                work=work,
                run_id=current_run,
            )
            _report(view)
        raise typer.Exit(_exit_code(view))

    @app.command(epilog=EXIT_CODES)
    def resume(
        run_id: str = typer.Argument(
            ...,
            metavar="RUN",
            help="The run to continue (its full id, from `orchestrator runs`).",
            callback=options.check_run_id,
        ),
        config: Path = options.config_option(),
        journal_path: Path | None = journal_option(),
        retry_failed: bool = typer.Option(
            False,
            "--retry-failed",
            help="Retry the run's failed and unverified apps (after fixing the cause); the failure "
            "tolerance applies to the retry as to the first attempt. A write that landed is verified, "
            "never sent again.",
        ),
        concurrency: int | None = _concurrency_option(),
        per_subscription: int | None = _per_subscription_option(),
        failure_tolerance: str = _tolerance_option(),
        bake: float = _bake_option(),
        respect_windows: bool = _windows_option(),
        need_minutes: int = _need_option(),
        yes: bool = _yes_option(),
        log_format: options.LogFormatChoice = options.log_format_option(),
        log_level: options.LogLevelChoice = options.log_level_option(),
    ) -> None:
        """Continue a run: succeeded apps are left alone, in-flight operations are re-attached."""
        options.setup_logging(log_format, log_level)
        fleet = options.load_fleet(config)
        settings = _settings(
            fleet,
            concurrency=concurrency,
            per_subscription=per_subscription,
            failure_tolerance=failure_tolerance,
            wave=None,
            bake=bake,
            respect_windows=respect_windows,
            need_minutes=need_minutes,
        )
        _warn_windowless(fleet, respect_windows)
        with Journal(resolve_path(journal_path), create=False) as journal, journal.exclusive():
            summary = journal.run(run_id)
            view = journal.run_view(run_id)
            failed = sum(1 for a in view.apps if a.state in FAILURE_STATES and a.wave is not None)
            remaining = sum(1 for a in view.apps if a.state not in TERMINAL_APP_STATES)
            console.print(
                Text(
                    f"Run {run_id} ({summary.kind}, {summary.state.value}): {remaining} of {len(view.apps)} "
                    f"apps to go" + (f", {failed} to retry." if retry_failed else f", {failed} failed.")
                ),
                soft_wrap=True,
            )
            if not remaining and not (retry_failed and failed):
                console.print(Text("Nothing to continue."))
                step = next_step(view)
                if step:
                    err_console.print(Text(step, style="yellow"), soft_wrap=True)
                raise typer.Exit(_exit_code(view))
            if summary.kind == "rollback":
                parent = summary.parent_run_id
                if parent is None:
                    raise JournalError(f"{journal.path}: rollback run {run_id} names no parent run")
                _confirm(f"Continue this rollback in the {_where(fleet)}?", yes)
                if retry_failed:
                    reopen_failed(journal, run_id)
                    view = journal.run_view(run_id)

                async def rollback_work(gateway: Any, display: Any) -> RunView:
                    return await run_rollback(
                        parent, gateway, journal, settings, progress=display, run_id=run_id
                    )

                result = _execute(
                    fleet=fleet,
                    config=config,
                    journal=journal,
                    settings=settings,
                    preview=view,
                    wave_names={0: "rollback"},
                    work=rollback_work,
                    run_id=lambda: run_id,
                )
            else:
                if not summary.plan_path:
                    raise JournalError(
                        f"{journal.path}: run {run_id} does not say which plan file it applies"
                    )
                plan = _read_plan(Path(summary.plan_path))
                if plan.digest != summary.plan_digest:
                    raise PlanFileError(
                        f"{summary.plan_path}: digest {plan.digest} is not the plan run {run_id} "
                        f"was started from ({summary.plan_digest}); the file changed"
                    )
                _check_plan_against_config(plan, summary.plan_path, fleet, config)
                _confirm(f"Continue applying this plan in the {_where(fleet)}?", yes)
                if retry_failed:
                    reopen_failed(journal, run_id)
                    view = journal.run_view(run_id)

                async def apply_work(gateway: Any, display: Any) -> RunView:
                    return await run_plan(
                        plan,
                        gateway,
                        journal,
                        settings,
                        progress=display,
                        plan_path=summary.plan_path,
                        run_id=run_id,
                    )

                result = _execute(
                    fleet=fleet,
                    config=config,
                    journal=journal,
                    settings=settings,
                    preview=view,
                    wave_names={w.index: w.name for w in plan.waves},
                    work=apply_work,
                    run_id=lambda: run_id,
                )
            _report(result)
        raise typer.Exit(_exit_code(result))

    @app.command(epilog=EXIT_CODES)
    def rollback(
        run_id: str = typer.Argument(
            ..., metavar="RUN", help="The apply run to undo (its full id).", callback=options.check_run_id
        ),
        app_ids: list[str] | None = typer.Option(
            None,
            "--app",
            help="Only this app (repeatable): its name, resourceGroup/name, or full resource id.",
        ),
        plan_out: Path | None = typer.Option(
            None,
            "--plan-out",
            help="Write the rollback as a plan file to review (`orchestrator show FILE`) and stop.",
        ),
        config: Path = options.config_option(),
        journal_path: Path | None = journal_option(),
        concurrency: int | None = _concurrency_option(),
        per_subscription: int | None = _per_subscription_option(),
        failure_tolerance: str = _tolerance_option(),
        yes: bool = _yes_option(),
        log_format: options.LogFormatChoice = options.log_format_option(),
        log_level: options.LogLevelChoice = options.log_level_option(),
    ) -> None:
        """Put each succeeded app of a run back on the definition or plan it had before (its own run).

        The exclusions the upgrade added are taken away again: those actions become denied again.
        """
        options.setup_logging(log_format, log_level)
        fleet = options.load_fleet(config)
        settings = _settings(
            fleet,
            concurrency=concurrency,
            per_subscription=per_subscription,
            failure_tolerance=failure_tolerance,
            wave=None,
            bake=0.0,
        )
        with Journal(resolve_path(journal_path), create=False) as journal, journal.exclusive():
            parent = journal.run_view(run_id)
            chosen_ids = resolve_apps(parent, app_ids)
            review = _rollback_review(journal, parent, chosen_ids)
            if plan_out is not None:
                if review is None:
                    raise InputError(
                        f"--plan-out: run {run_id}'s plan file ({parent.plan_path}) is missing or changed; "
                        "cannot say what the rollback changes"
                    )
                from orchestrator.planning.planfile import write_plan

                write_plan(review, plan_out)
                from orchestrator.render.plan_review import summary_line

                console.print(Text(summary_line(review)), soft_wrap=True)
                err_console.print(
                    Text(f"rollback plan written to {plan_out} ({review.digest})"), soft_wrap=True
                )
                raise typer.Exit(0)
            wanted = {a.lower() for a in chosen_ids} if chosen_ids else None
            chosen = [
                a
                for a in parent.apps
                if a.state == AppState.SUCCEEDED and (wanted is None or a.app_id.lower() in wanted)
            ]
            tenants = Counter(a.tenant_name or a.tenant_id for a in chosen)
            console.print(
                Text(
                    f"Roll back {len(chosen)} app(s) of run {run_id}: "
                    + (", ".join(f"{t}: {n}" for t, n in sorted(tenants.items())) or "nothing to do")
                ),
                soft_wrap=True,
            )
            if review is not None:
                from orchestrator.executor.rollback_plan import denied_again

                for action, apps, in_tenants in denied_again(review):
                    console.print(
                        Text(
                            f"denied again: {action} on {apps} app(s) in {in_tenants} tenant(s)", style="red"
                        ),
                        soft_wrap=True,
                    )
            question = "Roll these apps back"
            if review is not None and denied_again(review):
                question += " (the actions above become denied again)"
            _confirm(f"{question} in the {_where(fleet)}?", yes)
            preview = parent.model_copy(
                update={
                    "apps": tuple(a.model_copy(update={"state": AppState.PENDING, "wave": 0}) for a in chosen)
                }
            )

            async def work(gateway: Any, display: Any) -> RunView:
                return await run_rollback(
                    run_id, gateway, journal, settings, app_ids=chosen_ids, progress=display
                )

            view = _execute(
                fleet=fleet,
                config=config,
                journal=journal,
                settings=settings,
                preview=preview,
                wave_names={0: "rollback"},
                work=work,
                run_id=lambda: journal.latest_run_for(rollback_digest(run_id, chosen_ids), kind="rollback"),
            )
            _report(view)
        structlog.contextvars.clear_contextvars()
        raise typer.Exit(_exit_code(view))


def _rollback_review(journal: Journal, parent: RunView, chosen: list[str] | None) -> Plan | None:
    """The rollback as a sealed plan, when the run's plan file is still there and intact."""
    from datetime import UTC, datetime

    from orchestrator import __version__
    from orchestrator.executor.rollback_plan import rollback_plan
    from orchestrator.planning.planfile import seal

    if parent.kind != "apply" or not parent.plan_path:
        return None
    try:
        plan = _read_plan(Path(parent.plan_path))
    except InputError:
        return None
    if plan.digest != parent.plan_digest:
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
