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


class AzureCallError(OrchestratorError):
    """A call to Azure failed in a way the operation layer does not retry."""

    exit_code = 1


# Exit codes beyond 0/1/2 that tell a scheduler what happened without parsing output.
EXIT_PARTIAL = 3  # some tenants or apps failed; the rest completed
EXIT_HALTED = 4  # a wave exceeded its failure tolerance and the rollout stopped
