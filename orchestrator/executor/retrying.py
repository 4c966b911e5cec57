"""The operation-level retry layer (tenacity), on top of the SDK's transport retries.

The transport (azure-core) already retries 408/429/5xx and connection errors on each HTTP request.
This layer retries only what the transport cannot see: a long-running operation that ended `Failed`
with a transient code, a 409 because another operation runs on the resource, an `ArmError` the
gateway classified as transient after the transport gave up, and verification that has not converged.
Permanent errors (400-class validation, 403 authorization, 404) are raised at once.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_base

from orchestrator.errors import ArmError
from orchestrator.executor.durations import scaled, seconds
from orchestrator.gateway import CallInfo

Sleep = Callable[[float], Awaitable[None]]

# Codes with which an operation can end `Failed` for a reason that a later attempt may not meet.
TRANSIENT_OPERATION_CODES = frozenset(
    code.lower()
    for code in (
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "GatewayTimeout",
        "BadGateway",
        "TooManyRequests",
        "RetryableError",
        "OperationTimedOut",
        "OperationTimeout",
        "Conflict",
        "AnotherOperationInProgress",
        "ResourceBusy",
        "Throttled",
        "TransientError",
    )
)


class OperationFailed(Exception):
    """A submitted operation ended in a state other than `Succeeded`."""

    def __init__(self, status: str, code: str | None, message: str | None, info: CallInfo) -> None:
        super().__init__(f"operation {status}: {code or 'no code'}: {message or 'no message'}")
        self.status = status
        self.code = code
        self.message = message
        self.info = info

    @property
    def transient(self) -> bool:
        return self.status != "Canceled" and (self.code or "").lower() in TRANSIENT_OPERATION_CODES


class NotConverged(Exception):
    """The deny assignment does not (yet) carry the planned exclusions."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    deadline_seconds: float = seconds(900.0)
    initial_seconds: float = seconds(2.0)
    max_seconds: float = seconds(60.0)
    jitter_seconds: float = seconds(1.0)

    def scaled(self, factor: float) -> RetryPolicy:
        return scaled(self, factor)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, NotConverged):
        return True
    if isinstance(exc, OperationFailed):
        return exc.transient
    if isinstance(exc, ArmError):
        return exc.transient or exc.status == 409 or exc.status == 429
    return False


def retry_after_of(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait, when the error carries it (e.g. an exhausted 429)."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    return None


class _Backoff(wait_base):
    """Jittered exponential backoff, but never shorter than a Retry-After the error carries."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        exponent = max(retry_state.attempt_number - 1, 0)
        base = min(self.policy.initial_seconds * (2**exponent), self.policy.max_seconds)
        delay = base + self.rng.uniform(0, self.policy.jitter_seconds)
        outcome = retry_state.outcome
        server = retry_after_of(outcome.exception() if outcome is not None else None)
        return float(max(delay, server)) if server is not None else float(delay)


# One generator for every step's jitter: seeding a new Random per step costs ~0.4 ms (os.urandom).
_RNG = random.Random()


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    rng: random.Random | None = None,
    retry: Callable[[BaseException], bool] = is_retryable,
    before_sleep: Callable[[RetryCallState], Awaitable[None] | None] | None = None,
) -> AsyncRetrying:
    """An `AsyncRetrying` for one step; the last error is re-raised once attempts or deadline run out."""
    return AsyncRetrying(
        retry=retry_if_exception(retry),
        wait=_Backoff(policy, rng or _RNG),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline_seconds),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
