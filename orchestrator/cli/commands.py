"""The commands that make up the CLI, in the order `--help` lists them, each imported when first used.

A command's module is imported only when the command runs (or `--help` lists it), so `orchestrator show
PLAN` does not import the Azure SDK or aiohttp. Each module holds module-level command functions that
parse their options and render.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

# Shown under `apply`, `resume` and `rollback --help` (paragraphs: rich help joins single lines).
EXIT_CODES = (
    "Exit codes:\n\n0 done, or waiting for maintenance windows (nothing failed).\n\n"
    "1 an unexpected error.\n\n2 bad input (config, plan, journal, flag); nothing was written.\n\n"
    "3 some apps failed, were stale or unverified; the rest completed (see `orchestrator status`).\n\n"
    "4 halted: a wave went over its failure tolerance; fix the cause, then "
    "`orchestrator resume RUN --retry-failed`.\n\n"
    "130 interrupted (Ctrl-C); `orchestrator resume RUN` continues and re-attaches writes in flight."
)

# command name → (module in orchestrator.cli, attribute: a command function or a typer app, epilog)
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "inventory": ("inventory_cmd", "inventory", None),
    "plan": ("plan_cmd", "plan", None),
    "show": ("show_cmd", "show", None),
    "explain": ("explain_cmd", "explain", None),
    "apply": ("apply_cmd", "apply", EXIT_CODES),
    "resume": ("apply_cmd", "resume", EXIT_CODES),
    "rollback": ("apply_cmd", "rollback", EXIT_CODES),
    "handoff": ("handoff_cmd", "handoff", None),
    "verify": ("handoff_cmd", "verify", None),
    "status": ("status_cmd", "status", None),
    "runs": ("status_cmd", "runs_cmd", None),
    "windows": ("windows_cmd", "windows", None),
    "doctor": ("doctor_cmd", "doctor", None),
    "notifications": ("notifications_cmd", "notifications", None),
}
# Commands that live outside the core (the emulator), found by entry point so the core never imports them.
PLUGIN_GROUP = "orchestrator.commands"


def version() -> None:
    """Print the orchestrator's version."""
    from orchestrator import __version__

    typer.echo(__version__)


def names() -> list[str]:
    """Every command name in help order: the core's, then the plugins'."""
    return [*COMMANDS, *(ep.name for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in COMMANDS)]


def load(name: str) -> TyperCommand | TyperGroup | None:
    """The click command `name`, its module imported now; None when there is no such command (or it is a
    plugin whose extra dependencies are not installed)."""
    if name in COMMANDS:
        module, attribute, epilog = COMMANDS[name]
        return _click_command(name, getattr(import_module(f"orchestrator.cli.{module}"), attribute), epilog)
    for ep in entry_points(group=PLUGIN_GROUP, name=name):
        try:
            return _click_command(name, ep.load(), None)
        except ImportError:
            return None
    return None


def _click_command(
    name: str, obj: typer.Typer | Callable[..., Any], epilog: str | None
) -> TyperCommand | TyperGroup:
    if isinstance(obj, typer.Typer):
        group = typer.main.get_group(obj)
        group.name = name
        return group
    one = typer.Typer(add_completion=False)
    one.command(name=name, epilog=epilog)(obj)
    command = typer.main.get_command(one)
    assert isinstance(command, TyperCommand)  # a Typer with one command and no callback is that command
    return command
