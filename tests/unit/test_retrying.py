"""The operation-level retry layer: what it retries, how long it waits, when it gives up."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from orchestrator.errors import ArmError
from orchestrator.executor.retrying import (
    NotConverged,
    OperationFailed,
    RetryPolicy,
    is_retryable,
    retrying,
)
from orchestrator.gateway import CallInfo

POLICY = RetryPolicy(attempts=4, deadline_seconds=3600, initial_seconds=1, max_seconds=4, jitter_seconds=0.5)


async def run(errors: Sequence[BaseException]) -> tuple[int, list[float]]:
    pending = list(errors)
    slept: list[float] = []
    calls = 0

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async for attempt in retrying(POLICY, sleep=sleep, rng=random.Random(7)):
        with attempt:
            calls += 1
            if pending:
                raise pending.pop(0)
    return calls, slept


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (ArmError("x", status=500, transient=True), True),
        (ArmError("x", status=409, code="AnotherOperationInProgress"), True),
        (ArmError("x", status=429, transient=True), True),
        (ArmError("x", status=400, code="InvalidTemplate"), False),
        (ArmError("x", status=403, code="AuthorizationFailed"), False),
        (ArmError("x", status=404, code="ResourceNotFound"), False),
        (OperationFailed("Failed", "InternalServerError", "boom", CallInfo()), True),
        (OperationFailed("Failed", "InvalidApplicationDefinition", "bad", CallInfo()), False),
        (OperationFailed("Canceled", None, None, CallInfo()), False),
        (NotConverged("not yet"), True),
        (ValueError("bug"), False),
    ],
)
def test_what_is_retried(error: BaseException, retry: bool) -> None:
    assert is_retryable(error) is retry


async def test_backoff_is_exponential_jittered_and_capped() -> None:
    calls, slept = await run([ArmError("x", transient=True)] * 3)
    assert calls == 4
    assert len(slept) == 3
    for wait, base in zip(slept, (1, 2, 4), strict=True):
        assert base <= wait <= base + 0.5


async def test_gives_up_after_the_attempt_cap_with_the_last_error() -> None:
    last = ArmError("last", transient=True)
    with pytest.raises(ArmError, match="last"):
        await run([ArmError("x", transient=True)] * 3 + [last])


async def test_permanent_error_is_raised_at_once() -> None:
    with pytest.raises(ArmError, match="denied"):
        await run([ArmError("denied", status=403)])


async def test_retry_after_on_the_error_is_honoured() -> None:
    calls, slept = await run([ArmError("slow down", status=429, transient=True, retry_after=30.0)])
    assert calls == 2
    assert slept == [30.0]


async def test_deadline_stops_retrying() -> None:
    policy = RetryPolicy(attempts=100, deadline_seconds=0, initial_seconds=0, max_seconds=0, jitter_seconds=0)
    calls = 0

    async def sleep(_: float) -> None:
        return None

    with pytest.raises(NotConverged):
        async for attempt in retrying(policy, sleep=sleep):
            with attempt:
                calls += 1
                raise NotConverged("never")
    assert calls == 1


def test_scaled_policy() -> None:
    scaled = POLICY.scaled(0.01)
    assert scaled.attempts == POLICY.attempts
    assert scaled.initial_seconds == pytest.approx(0.01)
