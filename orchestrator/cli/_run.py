"""Running a run from the command line: the flags made into settings, the prompts, the display, the
report and the exit code. Shared by `apply`, `resume` and `rollback` (not a command module)."""

from __future__ import annotations

import gc
import os
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli import options
from orchestrator.cli._common import console, err_console
from orchestrator.cli._progress import LiveDisplay, display_for
from orchestrator.config import FleetConfig
from orchestrator.errors import EXIT_HALTED, EXIT_PARTIAL, InputError, PlanFileError
from orchestrator.executor import CrashPoint, ExecutorSettings, Tolerance
from orchestrator.executor.context import ProgressSink
from orchestrator.gateway import ArmGateway
from orchestrator.journal import Journal
from orchestrator.models import TERMINAL_APP_STATES, AppState, Decision, Plan, RunState, RunView
from orchestrator.render.status import next_step, render_table

CRASH_ENV = "ORCHESTRATOR_TEST_CRASH_AT"  # test hook: kill the process at a point (crash/resume tests)
PROBLEM_STATES = frozenset({AppState.FAILED, AppState.UNVERIFIED, AppState.STALE})
IN_FLIGHT_STATES = frozenset({AppState.SUBMITTED, AppState.VERIFYING})


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


def executor_settings(
    fleet: FleetConfig,
    concurrency: int | None,
    per_subscription: int | None,
    failure_tolerance: str,
    *,
    wave: int | None = None,
    bake: float = 0.0,
    respect_windows: bool = False,
    need_minutes: int = 30,
    time_scale: float = 1.0,
) -> ExecutorSettings:
    """The executor's settings from the flags (each checked: one line naming the flag) and the config."""
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
    if time_scale != 1.0:
        settings = settings.scaled(time_scale)
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


def where(fleet: FleetConfig) -> str:
    """Which Azure a prompt is about: the cloud's name and its ARM endpoint."""
    cloud = fleet.cloud
    return f"{cloud.name} cloud at {cloud.arm}"


def warn_windowless(fleet: FleetConfig, respect_windows: bool) -> None:
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


def check_plan_against_config(plan: Plan, plan_path: Path | str, fleet: FleetConfig, config: Path) -> None:
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


def summary_table(plan: Plan, resumed: RunView | None) -> Table:
    waves = plan.wave_names()
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


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError("no terminal to confirm on: pass --yes to run without asking")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


def exit_code(view: RunView) -> int:
    if view.state == RunState.HALTED:
        return EXIT_HALTED
    if any(a.state in PROBLEM_STATES for a in view.apps):
        return EXIT_PARTIAL
    return 0


def report(view: RunView) -> None:
    """The run's per-tenant table on stdout, then what to do next on stderr."""
    # No wave names: the per-tenant table has no wave column, and finding them re-reads the whole
    # plan (100 MB and 1.6 s at 10,000 apps, the peak of a run's memory).
    render_table(view, console, by="tenant")
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


Work = Callable[[ArmGateway, ProgressSink | None], Awaitable[RunView]]


@contextmanager
def _collector_for_a_long_run() -> Iterator[None]:
    """The cyclic garbage collector tuned for a run, restored after it.

    A 10,000-app run keeps hundreds of thousands of objects alive (each app's operation in flight),
    and every full collection scanned them all: 15 s of an 85 s run went to it (gc.callbacks). What
    start-up built (modules, config) is frozen out of collection, and collections run a tenth as
    often: 4.2 s. Memory freed by reference counting (most of it) is freed as before."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10 * threshold[0], threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def execute(
    *,
    fleet: FleetConfig,
    config: Path,
    journal: Journal,
    preview: RunView,
    wave_names: dict[int, str],
    work: Work,
    run_id: Callable[[], str | None],
) -> RunView:
    """Run `work(gateway, progress)` with a gateway and a display of its progress; report the run.

    Ctrl-C: the run is journaled as interrupted, the message names `resume`, and the exit code is 130.
    """
    gateway = options.open_gateway(fleet, config)
    display = display_for(preview, wave_names)
    del preview  # the display keeps what it needs; the preview's rows need not live through the run

    async def main() -> RunView:
        try:
            return await work(gateway, display)
        finally:
            await gateway.close()

    try:
        with _collector_for_a_long_run():
            if not isinstance(display, LiveDisplay):
                view = options.run_async(main())
            else:
                with display.shown():
                    view = options.run_async(main())
    except KeyboardInterrupt:
        _interrupted(journal, run_id())
        raise typer.Exit(130) from None
    report(view)
    return view


def finished_run(journal: Journal, run_id: str, plan_path: Path) -> int | None:
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
    return exit_code(view)
