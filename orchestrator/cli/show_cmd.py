"""`orchestrator show PLAN_FILE`: a saved plan for review, as a table, Markdown, JSON or HTML."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import typer

from orchestrator.cli import _common
from orchestrator.errors import InputError
from orchestrator.models import Plan
from orchestrator.planning.planfile import read_plan
from orchestrator.render.html import render_plan_html
from orchestrator.render.plan_review import render_json, render_markdown, render_table
from orchestrator.untrusted import clean

FORMATS = ("table", "markdown", "json", "html")


def _table_text(plan: Plan, width: int) -> str:
    sink = io.StringIO()
    render_table(plan, _common.SafeConsole(file=sink, width=width, force_terminal=False, color_system=None))
    return sink.getvalue()


def _write(out: Path, text: str) -> None:
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write: {exc.strerror or exc}") from exc


def show(
    plan_file: Path = typer.Argument(..., help="A plan file written by `orchestrator plan --out`."),
    output_format: str = typer.Option(
        "table", "--format", "-f", help="table, markdown (for a pull request), json or html."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Show a saved plan for review (its digest is verified first)."""
    fmt = output_format.strip().lower()
    if fmt not in FORMATS:
        raise InputError(f"--format: {output_format!r} is not one of {', '.join(FORMATS)}")
    plan = read_plan(plan_file)
    if fmt == "table":
        if out is None:
            # Per-app rows need room; a narrower terminal folds them unreadably.
            render_table(plan, _common.SafeConsole(width=_common.wide(140)))
            return
        text = _table_text(plan, width=160)
    elif fmt == "markdown":
        text = render_markdown(plan)
    elif fmt == "json":
        text = render_json(plan)
    else:
        text = render_plan_html(plan, generated_at=datetime.now(UTC))
    text = clean(text, json=fmt == "json")  # no control characters, in a file too
    if out is None:
        _common.emit(text if text.endswith("\n") else text + "\n")
    else:
        _write(out, text)
        _common.err_console.print(f"wrote {out}", highlight=False)
