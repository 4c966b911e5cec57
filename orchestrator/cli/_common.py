"""Small helpers shared by the command modules."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, NoReturn

import typer
from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Span, Text

from orchestrator.untrusted import clean, is_clean

ClickExit = typer.Exit
ClickAbort = typer.Abort
ClickError = typer.TyperException  # click's usage errors, as vendored by typer


def _cleaned(text: Text) -> Text:
    """`text` with `clean` applied to its characters, styles kept."""
    plain = text.plain
    if is_clean(plain):
        return text
    offsets = [i + d for i, ch in enumerate(plain) if not is_clean(ch) for d in (0, 1)]
    out = text.blank_copy()
    for piece in text.divide(offsets):
        if is_clean(piece.plain):
            out.append_text(piece)
        else:
            shown = clean(piece.plain)
            out.append_text(Text(shown, spans=[Span(0, len(shown), s.style) for s in piece.spans]))
    return out


class SafeConsole(Console):
    """A rich console for text from outside: markup off unless a call asks for it, and every string
    and `Text` shown through `clean` (no control character or escape sequence reaches the terminal).

    Every console of the CLI is one of these, so a table cell, a title or a progress label needs no
    care of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        super().__init__(*args, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(clean(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        if isinstance(renderable, Text):
            renderable = _cleaned(renderable)
        return super().render(renderable, options)


# Human output goes to stdout; diagnostics and logs to stderr so that stdout can be piped.
console = SafeConsole()
err_console = SafeConsole(stderr=True)


def fail(message: str, code: int) -> NoReturn:
    line = Text.assemble(("error:", "bold red"), " ", clean(message, single_line=True))
    err_console.print(line, highlight=False, soft_wrap=True)
    sys.exit(code)


def emit(text: str, *, json: bool = False) -> None:
    """Write a command's output (table, CSV, Markdown, HTML or JSON text) to stdout, cleaned."""
    console.file.write(clean(text, json=json))
    console.file.flush()


def wide(minimum: int) -> int:
    """Width for a many-column table: the terminal's, but never less than `minimum` (piped output
    defaults to 80 columns, which folds every cell)."""
    return max(console.width, minimum)
