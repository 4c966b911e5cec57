"""The `orchestrator` command: the composition root.

Each sub-module registers its commands on `app`. Commands that live outside the core (the emulator)
are found through the `orchestrator.commands` entry-point group, so the core never imports them.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import typer
from typer.core import TyperGroup

from orchestrator.cli import _common
from orchestrator.errors import InputError, Interrupted, OrchestratorError


class _Group(TyperGroup):
    """The command group; Ctrl-C in a command becomes `Interrupted` here.

    typer's `_main` turns a KeyboardInterrupt into a silent `Exit(130)` before `main` could see it, so it
    is caught one level down, where the command runs. A command that knows its run (apply, resume,
    rollback) raises `Interrupted(run_id)` itself, which passes through untouched.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None


app = typer.Typer(
    cls=_Group,
    name="orchestrator",
    help="Plan, review and apply Azure Managed Application upgrades across a customer fleet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from orchestrator.cli import commands

    commands.register(app)
    for ep in entry_points(group="orchestrator.commands"):
        try:
            sub = ep.load()
        except ImportError:  # a plugin whose extra dependencies are not installed
            continue
        app.add_typer(sub, name=ep.name)


try:
    _register()  # imports every command and the Azure SDK: seconds on a busy machine
except KeyboardInterrupt:
    _common.fail(str(Interrupted()), Interrupted.exit_code)


def main() -> None:
    try:
        code = app(standalone_mode=False)
        # Non-standalone click returns (rather than raises) the code of a command's `typer.Exit(n)`.
        if isinstance(code, int) and code:
            sys.exit(code)
    except OrchestratorError as exc:
        _common.fail(str(exc), exc.exit_code)
    except _common.ClickExit as exc:
        sys.exit(exc.exit_code)
    except _common.ClickAbort:
        _common.fail("aborted", Interrupted.exit_code)
    except _common.ClickError as exc:
        if getattr(exc, "message", "") == "" and type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)  # help was printed
        # Bad flags and arguments: one line naming the flag, exit 2 (click's own convention).
        _common.fail(exc.format_message(), InputError.exit_code)
    except KeyboardInterrupt:  # before or after a command runs (e.g. while importing)
        _common.fail(str(Interrupted()), Interrupted.exit_code)
