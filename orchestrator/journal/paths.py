"""Where the journal is when no flag names it: `.state/journal.db`; `$ORCHESTRATOR_JOURNAL` is read by the
CLI's `--journal` option (`envvar=`)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_PATH = Path(".state") / "journal.db"
ENV_VAR = "ORCHESTRATOR_JOURNAL"
