"""TODO(owner): commands of this module are being written; this file registers nothing yet."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    del app
