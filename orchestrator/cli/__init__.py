"""The `orchestrator` command: the composition root.

`cli.commands` names every command and the module it lives in; the group imports a command's module
when the command is asked for. Commands that live outside the core (the emulator) are found through the
`orchestrator.commands` entry-point group, so the core never imports them.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from orchestrator.cli import _common, commands
from orchestrator.errors import InputError, Interrupted, OrchestratorError


class _Group(TyperGroup):
    """The command group; Ctrl-C in a command becomes `Interrupted` here.

    typer's `_main` turns a KeyboardInterrupt into a silent `Exit(130)` before `main` could see it, so it
    is caught one level down, where the command runs. A command that knows its run (apply, resume,
    rollback) raises `Interrupted(run_id)` itself, which passes through untouched.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        eager = super().list_commands(ctx)
        return [*eager, *(name for name in commands.names() if name not in eager)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None:
            found = commands.load(cmd_name)  # imports the command's module, once
            if found is not None:
                self.commands[cmd_name] = found
        return found

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
app.command()(commands.version)


@app.callback()
def _root() -> None:
    """Keep the root a group of commands: the others are added by name when asked for (`_Group`)."""


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
