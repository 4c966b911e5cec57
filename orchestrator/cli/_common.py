"""Small helpers shared by the command modules."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

ClickExit = typer.Exit
ClickAbort = typer.Abort
ClickError = typer.TyperException  # click's usage errors, as vendored by typer

# Human output goes to stdout; diagnostics and logs to stderr so that stdout can be piped.
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int) -> NoReturn:
    # The message carries file names, flags and ARM text: never rich markup ("[plan]" must survive).
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    sys.exit(code)


def wide(minimum: int) -> int:
    """Width for a many-column table: the terminal's, but never less than `minimum` (piped output
    defaults to 80 columns, which folds every cell)."""
    return max(console.width, minimum)
