"""The commands that make up the CLI, registered on the root `app` (`cli/__init__.py`).

Command modules are imported here, not at the package root, so import errors name the module; each
holds module-level command functions that parse their options and render.
"""

from __future__ import annotations

import typer


def version() -> None:
    """Print the orchestrator's version."""
    from orchestrator import __version__

    typer.echo(__version__)


def register(app: typer.Typer) -> None:
    from orchestrator.cli import (
        _run,
        apply_cmd,
        doctor_cmd,
        explain_cmd,
        handoff_cmd,
        inventory_cmd,
        notifications_cmd,
        plan_cmd,
        show_cmd,
        status_cmd,
        windows_cmd,
    )

    app.command()(version)
    app.command()(inventory_cmd.inventory)
    app.command()(plan_cmd.plan)
    app.command()(show_cmd.show)
    app.command()(explain_cmd.explain)
    for run_command in (apply_cmd.apply, apply_cmd.resume, apply_cmd.rollback):
        app.command(epilog=_run.EXIT_CODES)(run_command)
    app.command()(handoff_cmd.handoff)
    app.command()(handoff_cmd.verify)
    app.command()(status_cmd.status)
    app.command(name="runs")(status_cmd.runs_cmd)
    app.command()(windows_cmd.windows)
    app.command()(doctor_cmd.doctor)
    app.add_typer(notifications_cmd.notifications, name="notifications")
