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

from orchestrator.cli import options
from orchestrator.cli._common import console, err_console
from orchestrator.config import FleetConfig
from orchestrator.errors import EXIT_HALTED, EXIT_PARTIAL, InputError, JournalError, PlanFileError
from orchestrator.executor import CrashPoint, ExecutorSettings, Tolerance, run_plan, run_rollback
from orchestrator.executor import Progress as AppProgress
from orchestrator.executor.engine import plan_work
from orchestrator.journal import Journal, resolve_path
from orchestrator.models import TERMINAL_APP_STATES, AppState, Decision, Plan, RunState, RunView

CRASH_ENV = "ORCHESTRATOR_TEST_CRASH_AT"  # test hook: kill the process at a point (crash/resume tests)
TIME_SCALE_ENV = "ORCHESTRATOR_TIME_SCALE"  # multiply the executor's own waits (emulator time scale)
PROBLEM_STATES = frozenset({AppState.FAILED, AppState.UNVERIFIED, AppState.STALE})


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

    from orchestrator.windows import is_open

    need = timedelta(minutes=need_minutes)
    tenants = {t.id.lower(): t for t in fleet.tenants}

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


def _read_plan(path: Path) -> Plan:
    from orchestrator.planfile import read_plan

    return read_plan(path)


def _check_plan_against_config(plan: Plan, plan_path: Path | str, fleet: FleetConfig, config: Path) -> None:
    known = {t.id.lower() for t in fleet.tenants}
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
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
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


def _report(view: RunView) -> None:
    from orchestrator.cli.status_cmd import render_table

    render_table(view, by="tenant")
    if view.state == RunState.HALTED:
        err_console.print(
            "[bold yellow]halted:[/] a wave went over its failure tolerance; the remaining apps stay "
            f"pending. Fix the cause, then `orchestrator resume {view.run_id}` (a higher "
            "--failure-tolerance lets it go on).",
            highlight=False,
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
) -> RunView:
    """Run `work(gateway, progress)` with a gateway and, on a terminal, a live display."""
    del journal, settings  # already bound into `work`; named here so call sites read clearly
    gateway = options.open_gateway(fleet, config)
    display = _LiveDisplay(preview, wave_names) if preview is not None and err_console.is_terminal else None

    async def main() -> RunView:
        try:
            result: RunView = await work(gateway, display)
            return result
        finally:
            await gateway.close()

    if display is None:
        return options.run_async(main())
    with display.shown():
        return options.run_async(main())


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


def register(app: typer.Typer) -> None:
    @app.command()
    def apply(
        plan_path: Path = typer.Argument(..., metavar="PLAN", help="The reviewed plan file."),
        config: Path = options.config_option(),
        journal_path: Path | None = journal_option(),
        concurrency: int | None = typer.Option(
            None, "--concurrency", help="Safety limit on apps in progress at once (default: none, ARM paces)."
        ),
        per_subscription: int | None = typer.Option(
            None,
            "--per-subscription",
            help="Safety limit on apps in progress per subscription (default: none).",
        ),
        failure_tolerance: str = typer.Option(
            "0", "--failure-tolerance", help="Failures a wave may have before the rollout stops: N or P%."
        ),
        wave: int | None = typer.Option(None, "--wave", help="Run only this wave (its index in the plan)."),
        bake: float = typer.Option(0.0, "--bake", help="Seconds to wait between waves."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
        new_run: bool = typer.Option(False, "--new-run", help="Start a new run even if this plan has one."),
        respect_windows: bool = typer.Option(
            False,
            "--respect-windows",
            help="Start an app only while its tenant's maintenance window is open.",
        ),
        need_minutes: int = typer.Option(
            30,
            "--need",
            help="With --respect-windows: minutes the window must stay open for an app to start.",
        ),
        log_format: options.LogFormatChoice = options.log_format_option(),
        log_level: options.LogLevelChoice = options.log_level_option(),
    ) -> None:
        """Apply a reviewed plan: upgrade each app in waves, verify it, journal everything.

        Running it again on the same plan continues the same run (resume).
        """
        options.setup_logging(log_format, log_level)
        plan = _read_plan(plan_path)
        fleet = options.load_fleet(config)
        _check_plan_against_config(plan, plan_path, fleet, config)
        settings = _settings(
            fleet,
            concurrency=concurrency,
            per_subscription=per_subscription,
            failure_tolerance=failure_tolerance,
            wave=wave,
            bake=bake,
            respect_windows=respect_windows,
            need_minutes=need_minutes,
        )
        if wave is not None and wave not in {w.index for w in plan.waves}:
            raise InputError(
                f"--wave: the plan has no wave {wave} (waves: {', '.join(str(w.index) for w in plan.waves)})"
            )
        with Journal(resolve_path(journal_path)) as journal, journal.exclusive():
            existing = None if new_run else journal.latest_run_for(plan.digest)
            resumed = journal.run_view(existing) if existing else None
            console.print(f"Apply plan {plan.digest[:19]} → {plan.target.name}", highlight=False)
            console.print(_summary_table(plan, resumed))
            if resumed is not None:
                console.print(f"Continuing run {resumed.run_id} ({resumed.state.value}).", highlight=False)
            if not any(i.decision == Decision.UPDATE for i in plan.items):
                console.print("Nothing to update in this plan.")
            _confirm("Apply this plan to production?", yes)
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

            view = _execute(
                fleet=fleet,
                config=config,
                journal=journal,
                settings=settings,
                preview=preview,
                wave_names=wave_names,
                work=work,
            )
            _report(view)
        raise typer.Exit(_exit_code(view))

    @app.command()
    def resume(
        run_id: str = typer.Argument(
            ..., metavar="RUN", help="The run to continue (see `orchestrator runs`)."
        ),
        config: Path = options.config_option(),
        journal_path: Path | None = journal_option(),
        concurrency: int | None = typer.Option(None, "--concurrency"),
        per_subscription: int | None = typer.Option(None, "--per-subscription"),
        failure_tolerance: str = typer.Option("0", "--failure-tolerance"),
        bake: float = typer.Option(0.0, "--bake"),
        respect_windows: bool = typer.Option(False, "--respect-windows"),
        need_minutes: int = typer.Option(30, "--need"),
        yes: bool = typer.Option(False, "--yes", "-y"),
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
        with Journal(resolve_path(journal_path)) as journal, journal.exclusive():
            summary = journal.run(run_id)
            view = journal.run_view(run_id)
            remaining = sum(1 for a in view.apps if a.state not in TERMINAL_APP_STATES)
            console.print(
                f"Run {run_id} ({summary.kind}, {summary.state.value}): "
                f"{remaining} of {len(view.apps)} apps to go.",
                highlight=False,
            )
            if summary.kind == "rollback":
                parent = summary.parent_run_id
                if parent is None:
                    raise JournalError(f"{journal.path}: rollback run {run_id} names no parent run")
                _confirm("Continue this rollback?", yes)

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
                )
            else:
                if not summary.plan_path:
                    raise JournalError(
                        f"{journal.path}: run {run_id} does not say which plan file it applies"
                    )
                plan = _read_plan(Path(summary.plan_path))
                if plan.digest != summary.plan_digest:
                    raise PlanFileError(
                        f"{summary.plan_path}: digest {plan.digest[:19]} is not the plan run {run_id} "
                        f"was started from ({summary.plan_digest[:19]}); the file changed"
                    )
                _check_plan_against_config(plan, summary.plan_path, fleet, config)
                _confirm("Continue applying this plan to production?", yes)

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
                )
            _report(result)
        raise typer.Exit(_exit_code(result))

    @app.command()
    def rollback(
        run_id: str = typer.Argument(..., metavar="RUN", help="The apply run to undo."),
        app_ids: list[str] | None = typer.Option(None, "--app", help="Only this app (repeatable)."),
        config: Path = options.config_option(),
        journal_path: Path | None = journal_option(),
        concurrency: int | None = typer.Option(None, "--concurrency"),
        per_subscription: int | None = typer.Option(None, "--per-subscription"),
        failure_tolerance: str = typer.Option("0", "--failure-tolerance"),
        yes: bool = typer.Option(False, "--yes", "-y"),
        log_format: options.LogFormatChoice = options.log_format_option(),
        log_level: options.LogLevelChoice = options.log_level_option(),
    ) -> None:
        """Put each succeeded app of a run back on the definition or plan it had before (its own run)."""
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
        with Journal(resolve_path(journal_path)) as journal, journal.exclusive():
            parent = journal.run_view(run_id)
            wanted = {a.lower() for a in app_ids} if app_ids else None
            chosen = [
                a
                for a in parent.apps
                if a.state == AppState.SUCCEEDED and (wanted is None or a.app_id.lower() in wanted)
            ]
            tenants = Counter(a.tenant_name or a.tenant_id for a in chosen)
            console.print(
                f"Roll back {len(chosen)} app(s) of run {run_id}: "
                + (", ".join(f"{t}: {n}" for t, n in sorted(tenants.items())) or "nothing to do"),
                highlight=False,
            )
            _confirm("Roll these apps back in production?", yes)
            preview = parent.model_copy(
                update={
                    "apps": tuple(a.model_copy(update={"state": AppState.PENDING, "wave": 0}) for a in chosen)
                }
            )

            async def work(gateway: Any, display: Any) -> RunView:
                return await run_rollback(
                    run_id, gateway, journal, settings, app_ids=app_ids, progress=display
                )

            view = _execute(
                fleet=fleet,
                config=config,
                journal=journal,
                settings=settings,
                preview=preview,
                wave_names={0: "rollback"},
                work=work,
            )
            _report(view)
        structlog.contextvars.clear_contextvars()
        raise typer.Exit(_exit_code(view))
