"""Verifying the apps awaiting their customers, for `verify` and `status --refresh` (not a command module)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.cli import options
from orchestrator.errors import JournalError
from orchestrator.executor import runs
from orchestrator.journal import Journal
from orchestrator.verify import VerifyResult, verify_run


def refresh(run_id: str | None, config: Path, journal_path: Path) -> VerifyResult:
    """Re-read the run's customer-run apps and journal the outcome."""
    fleet = options.load_fleet(config)
    if not journal_path.exists():
        raise JournalError(
            f"{journal_path}: no journal here yet (run `orchestrator handoff` or `apply` first)"
        )
    with Journal(journal_path) as journal, journal.exclusive():
        chosen = runs.chosen_run(journal, run_id)
        plan = runs.resumed_plan(journal, journal.run(chosen))

        async def work() -> VerifyResult:
            async with options.open_gateway(fleet, config) as gateway:
                return await verify_run(journal, chosen, plan, gateway)

        return options.run_async(work())
