"""Which command modules make up the CLI. Each module has `register(app)`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print the orchestrator's version."""
        from orchestrator import __version__

        typer.echo(__version__)

    # Imported here so `orchestrator --help` stays fast and import errors name the module.
    from orchestrator.cli import (
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

    for module in (
        inventory_cmd,
        plan_cmd,
        show_cmd,
        explain_cmd,
        apply_cmd,
        handoff_cmd,
        status_cmd,
        windows_cmd,
        doctor_cmd,
        notifications_cmd,
    ):
        module.register(app)
