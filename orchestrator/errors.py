"""The errors a user can see, in one tree, and the exit code each maps to.

The CLI (`orchestrator.cli.main`) prints any `OrchestratorError` as one line, without a traceback, and
exits with its `exit_code`; nowhere else picks a code for an error.

    OrchestratorError        1  a problem the CLI reports as one line
    ├── InputError           2  bad input: the message names the file or flag
    │   ├── ConfigError      2  the fleet config
    │   ├── TargetError      2  the target file or definition
    │   ├── PlanFileError    2  the plan file
    │   └── JournalError     2  the journal file (missing, damaged, newer schema, unknown run)
    ├── JournalUnavailable   1  the journal could not be read or written mid-run (disk full, I/O
    │                           error): not bad input; what was recorded before stays recorded
    ├── ArmError             1  an ARM call that failed for good (refused, or the retries ran out);
    │                           `transient` and `status` classify it for the executor's retries
    └── Interrupted        130  Ctrl-C; says which command continues

Results that are not errors have exit codes of their own: `EXIT_PARTIAL` (3) and `EXIT_HALTED` (4).
Inside the executor, `executor.retrying.OperationFailed` (an operation ended Failed or Canceled) and
`NotConverged` (the deny assignment lags) are signals between its retry layer and its engine: they
end in the journal as an app's state and never reach the CLI.
"""

from __future__ import annotations

from orchestrator.models import CallInfo


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
    """The journal file is not one this tool can use (damaged, newer schema, no such run)."""


class JournalUnavailable(OrchestratorError):
    """The journal could not be read or written while a command ran (a disk failure, not bad input).

    Nothing more is sent to Azure once the journal cannot record it; the message names the file and
    says which command continues once the disk is fixed."""

    exit_code = 1


class ArmError(OrchestratorError):
    """A failed ARM call, classified for the operation-level retry layer."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        transient: bool = False,
        info: CallInfo | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.transient = transient
        self.info = info or CallInfo()
        self.retry_after = retry_after  # seconds ARM asked to wait (Retry-After / retry-after-ms)


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


# Exit codes beyond 0/1/2 that tell a scheduler what happened without parsing output.
EXIT_PARTIAL = 3  # some tenants or apps failed; the rest completed
EXIT_HALTED = 4  # a wave exceeded its failure tolerance and the rollout stopped
