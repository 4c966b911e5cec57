"""`orchestrator status` and `orchestrator runs`: what the journal knows, per tenant or per app."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli import options
from orchestrator.cli._common import SafeConsole, console, emit, wide
from orchestrator.cli.apply_cmd import journal_option
from orchestrator.errors import InputError, JournalError
from orchestrator.journal import Journal, RunSummary, resolve_path
from orchestrator.models import AppState, AppStatusView, RunState, RunView
from orchestrator.planning.planfile import read_plan

FAILURE_STATES = (AppState.FAILED, AppState.UNVERIFIED, AppState.STALE)
STATE_ORDER = list(AppState)
MAX_FAILURE_ROWS = 50


def render_table(view: RunView, *, by: str, wave_names: dict[int, str] | None = None) -> None:
    names = wave_names if wave_names is not None else _wave_names(view)
    console.print(
        Text(f"Run {view.run_id} ({view.kind}) → {view.target_name}: ")
        + Text(view.state.value, style="bold"),
        soft_wrap=True,
    )
    present = [s for s in STATE_ORDER if any(a.state == s for a in view.apps)]
    if by == "tenant":
        table = Table(title="Per tenant", title_justify="left")
        table.add_column("tenant")
        table.add_column("apps", justify="right")
        for state in present:
            table.add_column(state.value, justify="right")
        # Apps that needed more than one attempt: the faults and throttling the rollout absorbed.
        table.add_column("retried", justify="right")
        groups: dict[str, Counter[AppState]] = defaultdict(Counter)
        retried: Counter[str] = Counter()
        for app in view.apps:
            tenant_key = app.tenant_name or app.tenant_id
            groups[tenant_key][app.state] += 1
            retried[tenant_key] += app.attempts > 1
        for tenant in sorted(groups):
            counts = groups[tenant]
            table.add_row(
                tenant,
                str(sum(counts.values())),
                *(str(counts[s] or "") for s in present),
                str(retried[tenant] or ""),
            )
        console.print(table)
        _awaiting_customers(view)
    else:
        table = Table(title="Per app", title_justify="left")
        for column in ("tenant", "app", "wave", "state", "attempts", "cause"):
            table.add_column(column)
        for app in view.apps:
            message = _cause(app.error_message, app.app_id)
            cause = f"{app.error_code}: {message}" if app.error_code else message
            table.add_row(
                app.tenant_name or app.tenant_id,
                app.app_name,
                "" if app.wave is None else names.get(app.wave, str(app.wave)),
                app.state.value,
                str(app.attempts),
                cause,
            )
        console.print(table)
    problems = [a for a in view.apps if a.state in FAILURE_STATES]
    if problems and by == "tenant":
        table = Table(title="Failures and their causes", title_justify="left", expand=True)
        wide = console.width >= 150  # the request id (for a support case) fits only on a wide terminal
        table.add_column("tenant", max_width=24)
        table.add_column("app", max_width=32)
        table.add_column("state", no_wrap=True)
        table.add_column("code", max_width=28)
        table.add_column("cause", overflow="fold", ratio=1, min_width=30)
        if wide:
            table.add_column("request id", no_wrap=True)
        rows = _failure_rows(problems)
        for first, count, cause in rows[:MAX_FAILURE_ROWS]:
            row = [
                first.tenant_name or first.tenant_id,
                first.app_name + (f" (+{count - 1} more)" if count > 1 else ""),
                first.state.value,
                first.error_code or "",
                cause,
            ]
            table.add_row(*row, *([first.request_id or ""] if wide else []))
        console.print(table)
        if len(rows) > MAX_FAILURE_ROWS:
            console.print(
                f"… and {len(rows) - MAX_FAILURE_ROWS} more (see --by app or --format json)",
                highlight=False,
            )


def _failure_rows(problems: list[AppStatusView]) -> list[tuple[AppStatusView, int, str]]:
    """One row per tenant, state, code and cause: a broken secret fails every app of a tenant the
    same way, and the reader needs the cause once, with how many apps share it."""
    groups: dict[tuple[str, str, str, str], list[AppStatusView]] = defaultdict(list)
    for app in problems:
        cause = _cause(app.error_message, app.app_id)
        key = (app.tenant_name or app.tenant_id, app.state.value, app.error_code or "", cause)
        groups[key].append(app)
    return [(apps[0], len(apps), key[3]) for key, apps in groups.items()]


def _awaiting_customers(view: RunView) -> None:
    """Customers whose updates are theirs to make (a kit): how many apps, and when their kit was made."""
    waiting = [a for a in view.apps if a.state == AppState.AWAITING_CUSTOMER]
    if not waiting:
        return
    table = Table(title="Awaiting customers (customer-run kits)", title_justify="left")
    for column in ("customer", "apps", "kit made"):
        table.add_column(column)
    groups: dict[str, list[AppStatusView]] = defaultdict(list)
    for app in waiting:
        groups[app.tenant_name or app.tenant_id].append(app)
    for name in sorted(groups):
        made = [a.updated_at for a in groups[name] if a.error_code == "KitMade" and a.updated_at]
        when = f"{min(made):%Y-%m-%d %H:%M}Z" if made else "no kit yet: orchestrator handoff PLAN --out DIR"
        table.add_row(Text(name), str(len(groups[name])), when)
    console.print(table)


# Entra appends ids for a support case to every error; they are in `--format json` and the journal.
_ENTRA_TRACE = re.compile(r"\s*Trace ID: \S+ Correlation ID: \S+ Timestamp: [\d-]+ [\d:.]+Z?")


def _cause(message: str | None, app_id: str) -> str:
    """The error message without the app's long resource id (the row already names the app) and
    without Entra's trace ids."""
    return _ENTRA_TRACE.sub("", (message or "").replace(app_id, "…"))


def _as_json(view: RunView) -> str:
    body = view.model_dump(mode="json")
    body["counts"] = dict(Counter(a.state.value for a in view.apps))
    tenants: dict[str, Counter[str]] = defaultdict(Counter)
    for app in view.apps:
        tenants[app.tenant_id][app.state.value] += 1
    body["tenants"] = {t: dict(c) for t, c in sorted(tenants.items())}
    return json.dumps(body, indent=2)


def _shown_state(state: RunState, writer_active: bool) -> RunState:
    return RunState.INTERRUPTED if state == RunState.RUNNING and not writer_active else state


def _wave_names(view: RunView) -> dict[int, str]:
    """The plan's wave names ("canary", ...) when the run's plan file is still where it was and intact."""
    if not view.plan_path:
        return {}
    try:
        plan = read_plan(Path(view.plan_path))
    except InputError:
        return {}  # moved, edited or unreadable: waves show as numbers
    if plan.digest != view.plan_digest:
        return {}
    return {w.index: w.name for w in plan.waves}


def register(app: typer.Typer) -> None:
    @app.command()
    def status(
        run_id: str | None = typer.Argument(
            None, metavar="[RUN]", help="A run id; default the latest run.", callback=options.check_run_id
        ),
        by: Literal["tenant", "app"] = typer.Option(
            "tenant", "--by", help="Group by tenant or list every app."
        ),
        fmt: Literal["table", "json", "html"] = typer.Option(
            "table", "--format", "-f", help="Output format."
        ),
        journal_path: Path | None = journal_option(),
        refresh: bool = typer.Option(
            False,
            "--refresh",
            help="First verify the apps awaiting their customers (as `orchestrator verify`).",
        ),
        config: Path = options.config_option(),
    ) -> None:
        """Where a run stands: per-tenant counts and the failures with their causes."""
        if refresh:
            from orchestrator.cli.handoff_cmd import refresh as verify_now

            verify_now(run_id, config, journal_path)
        path = resolve_path(journal_path)
        with Journal(path, create=False) as journal:
            chosen = run_id or journal.latest_run()
            if chosen is None:
                raise JournalError(f"{path}: the journal has no runs yet")
            view = journal.run_view(chosen)
            shown = _shown_state(view.state, journal.writer_active())
            view = view.model_copy(update={"state": shown})
        if fmt == "json":
            emit(_as_json(view) + "\n", json=True)
        elif fmt == "html":
            from orchestrator.render.html import render_run_html

            emit(render_run_html(view, generated_at=datetime.now(UTC), wave_names=_wave_names(view)) + "\n")
        else:
            render_table(view, by=by, wave_names=_wave_names(view))

    @app.command()
    def runs(
        fmt: Literal["table", "json"] = typer.Option(
            "table", "--format", "-f", help="table, or json (every run with its full id, for scripts)."
        ),
        journal_path: Path | None = journal_option(),
    ) -> None:
        """Every run in the journal, newest first, with its full id (for `resume`, `rollback`, `status`)."""
        path = resolve_path(journal_path)
        with Journal(path, create=False) as journal:
            summaries = journal.runs()
            writing = journal.writer_active()
        if fmt == "json":
            typer.echo(json.dumps([_run_json(run, writing) for run in summaries], indent=2))
            return
        table = Table(title=f"Runs in {path}", title_justify="left")
        # The run id is what `resume` and `rollback` need: never cut or folded, whatever the width.
        longest = max((len(r.run_id) for r in summaries), default=3)
        table.add_column("run", no_wrap=True, min_width=longest)
        for column in ("kind", "state", "target", "created", "apps", "by state"):
            table.add_column(column, overflow="fold")
        for run in summaries:
            table.add_row(
                run.run_id,
                run.kind + (f" of {run.parent_run_id}" if run.parent_run_id else ""),
                _shown_state(run.state, writing).value,
                run.target_name,
                f"{run.created_at:%Y-%m-%d %H:%M:%S}Z",
                str(sum(run.counts.values())),
                " ".join(f"{k}={v}" for k, v in sorted(run.counts.items())),
            )
        # Piped output defaults to 80 columns; widen so every column keeps its text.
        SafeConsole(width=wide(120), highlight=False).print(table)


def _run_json(run: RunSummary, writing: bool) -> dict[str, object]:
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "parent_run_id": run.parent_run_id,
        "state": _shown_state(run.state, writing).value,
        "target": run.target_name,
        "plan_digest": run.plan_digest,
        "plan_path": run.plan_path,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "apps": sum(run.counts.values()),
        "counts": dict(sorted(run.counts.items())),
    }
