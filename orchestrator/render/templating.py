"""The jinja2 environments every page and README is rendered with: escaping is the default, not a habit.

HTML: autoescape is on, and before escaping every value a template prints goes through
`untrusted.clean` (controls and bidi overrides become visible escapes), so a template cannot forget
either step; only `Markup` (a macro's output) passes as it is.

Markdown (the customer kit's README.md): every printed string becomes a code span (`code_span`),
the strictest Markdown escape there is; numbers, enum values and `MdSafe` text written by us pass.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import Enum
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from markupsafe import Markup

from orchestrator.untrusted import clean

_LOADER = PackageLoader("orchestrator.render", "templates")


class MdSafe(str):
    """Markdown we wrote ourselves (constants, formatted times): printed as it is."""

    __slots__ = ()


def code_span(text: str) -> str:
    """Untrusted text as a Markdown code span on one line (safe in a table cell too)."""
    flat = " ".join(clean(str(text)).split()).replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", flat)), default=0) + 1)
    return f"{fence} {flat} {fence}"


_HTML_AS_IS = (Markup, int, float)  # a macro's output (already escaped), numbers
_MD_AS_IS = (MdSafe, int, Enum)


@pass_eval_context
def _printed(context: EvalContext, value: object) -> object:
    """What `{{ value }}` prints, before autoescape: cleaned text (HTML) or a code span (Markdown)."""
    if context.autoescape:
        return value if isinstance(value, _HTML_AS_IS) else clean(str(value))
    return value if isinstance(value, _MD_AS_IS) else code_span(str(value))


def utc(moment: datetime) -> datetime:
    # The journal stores UTC; a naive value is taken as UTC rather than the viewer's local time.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def when(moment: datetime | None) -> str:
    """A moment as people read it in a report: UTC to the second; nothing for no moment."""
    return utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


@cache
def _environment() -> Environment:
    env = Environment(
        loader=_LOADER,
        autoescape=select_autoescape(disabled_extensions=("md",), default=True, default_for_string=True),
        finalize=_printed,
        undefined=StrictUndefined,  # a misspelt name fails the test, not the reviewer
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["when"] = when
    return env


def template(name: str) -> Template:
    """A template from orchestrator/render/templates; `*.md` ones render Markdown, the rest HTML."""
    return _environment().get_template(name)
