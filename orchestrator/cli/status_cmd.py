"""`orchestrator status` and `orchestrator runs`: what the journal knows, per tenant or per app."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from rich.table import Table

from orchestrator.cli import _verify, options
from orchestrator.cli._common import SafeConsole, console, emit, wide
from orchestrator.executor import runs
from orchestrator.journal import Journal, RunSummary
from orchestrator.models import RunState
from orchestrator.render.status import as_json, render_table

RunOrLatest = Annotated[
    str | None,
    typer.Argument(metavar="[RUN]", help="A run id; default the latest run.", callback=options.check_run_id),
]


def _shown_state(state: RunState, writer_active: bool) -> RunState:
    return RunState.INTERRUPTED if state == RunState.RUNNING and not writer_active else state


def status(
    run_id: RunOrLatest = None,
    by: Annotated[
        Literal["tenant", "app"], typer.Option("--by", help="Group by tenant or list every app.")
    ] = "tenant",
    fmt: Annotated[Literal["table", "json", "html"], options.FORMAT] = "table",
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh", help="First verify the apps awaiting their customers (as `orchestrator verify`)."
        ),
    ] = False,
    config: options.ConfigPath = options.DEFAULT_CONFIG,
) -> None:
    """Where a run stands: per-tenant counts and the failures with their causes."""
    if refresh:
        _verify.refresh(run_id, config, journal_path)
    with Journal(journal_path, create=False) as journal:
        view = journal.run_view(runs.chosen_run(journal, run_id))
        shown = _shown_state(view.state, journal.writer_active())
        view = view.model_copy(update={"state": shown})
    if fmt == "json":
        emit(as_json(view) + "\n", json=True)
    elif fmt == "html":
        from orchestrator.render.html import render_run_html

        emit(render_run_html(view, generated_at=datetime.now(UTC), wave_names=runs.wave_names(view)) + "\n")
    else:
        render_table(view, console, by=by, wave_names=runs.wave_names(view) if by == "app" else None)


def runs_cmd(
    fmt: Annotated[
        Literal["table", "json"],
        typer.Option("--format", "-f", help="table, or json (every run with its full id, for scripts)."),
    ] = "table",
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
) -> None:
    """Every run in the journal, newest first, with its full id (for `resume`, `rollback`, `status`)."""
    with Journal(journal_path, create=False) as journal:
        summaries = journal.runs()
        writing = journal.writer_active()
    if fmt == "json":
        typer.echo(json.dumps([_run_json(run, writing) for run in summaries], indent=2))
        return
    table = Table(title=f"Runs in {journal_path}", title_justify="left")
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
