"""Where the journal is when no flag names it: `--journal`, else `$ORCHESTRATOR_JOURNAL`, else
`.state/journal.db`. (The CLI is moving this lookup to its option's `envvar=`; until then, here.)"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_PATH = Path(".state") / "journal.db"
ENV_VAR = "ORCHESTRATOR_JOURNAL"


def resolve_path(flag: Path | None, env: Mapping[str, str] | None = None) -> Path:
    """--journal, else $ORCHESTRATOR_JOURNAL, else .state/journal.db."""
    environ = os.environ if env is None else env
    if flag is not None:
        return flag
    if environ.get(ENV_VAR):
        return Path(environ[ENV_VAR])
    return DEFAULT_PATH
