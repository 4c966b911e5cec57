"""The journal: the durable record of every run (see `store`), in one SQLite file it shares with the
notification registry (`migrate` serves both). `from orchestrator.journal import ...` is the API."""

from orchestrator.journal.lock import exclusive, writer_active
from orchestrator.journal.paths import DEFAULT_PATH, ENV_VAR
from orchestrator.journal.records import (
    RUN_ID,
    AppRecord,
    BeforeState,
    Event,
    NewApp,
    RunSummary,
    Transition,
    new_run_id,
)
from orchestrator.journal.store import APPLICATION_ID, SCHEMA_VERSION, Journal

__all__ = [
    "APPLICATION_ID",
    "DEFAULT_PATH",
    "ENV_VAR",
    "RUN_ID",
    "SCHEMA_VERSION",
    "AppRecord",
    "BeforeState",
    "Event",
    "Journal",
    "NewApp",
    "RunSummary",
    "Transition",
    "exclusive",
    "new_run_id",
    "writer_active",
]
