"""The errors a user can see. Each carries the exit code the CLI returns and prints as one line."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base: a problem the CLI reports as one line (no traceback) and exits with `exit_code`."""

    exit_code = 1


class InputError(OrchestratorError):
    """A bad input: config, target, plan file, journal or flag. The message names the file or flag."""

    exit_code = 2


class ConfigError(InputError):
    pass


class TargetError(InputError):
    pass


class PlanFileError(InputError):
    pass


class JournalError(InputError):
    pass


class Interrupted(OrchestratorError):
    """Ctrl-C (SIGINT): one line saying what to run next; the journal keeps what was done."""

    exit_code = 130

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        hint = (
            f"run `orchestrator resume {run_id}` to continue (the journal keeps what was done)"
            if run_id
            else "no run was started; run the command again"
        )
        super().__init__(f"interrupted; {hint}")


class AzureCallError(OrchestratorError):
    """A call to Azure failed in a way the operation layer does not retry."""

    exit_code = 1


# Exit codes beyond 0/1/2 that tell a scheduler what happened without parsing output.
EXIT_PARTIAL = 3  # some tenants or apps failed; the rest completed
EXIT_HALTED = 4  # a wave exceeded its failure tolerance and the rollout stopped
