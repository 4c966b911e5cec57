"""What every step of one app's update shares: ARM reads (paced, retried), journaled transitions
(each committed before the next call to Azure, and reported to the live display), the crash hook."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import structlog

from orchestrator.errors import ArmError
from orchestrator.executor.journal_writer import JournalWriter
from orchestrator.executor.pacing import Pacer
from orchestrator.executor.retrying import NotConverged, OperationFailed, retrying
from orchestrator.executor.settings import ExecutorSettings
from orchestrator.executor.work import WorkItem
from orchestrator.gateway import AppRead, ArmGateway, CallInfo
from orchestrator.journal import AppRecord, BeforeState, Journal, Transition
from orchestrator.models import App, AppState
from orchestrator.planning.derive import DenyMatch, match_system_deny_assignment

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

log = structlog.get_logger("orchestrator.executor")


@dataclass(frozen=True)
class Progress:
    """What the live display hears about: one app changed state."""

    run_id: str
    wave: int | None
    wave_name: str
    tenant_id: str
    tenant_name: str
    app_id: str
    state: AppState
    message: str | None = None


ProgressSink = Callable[[Progress], None]


def error_fields(exc: BaseException) -> tuple[str | None, str, CallInfo | None]:
    if isinstance(exc, OperationFailed):
        return exc.code or exc.status, str(exc), exc.info
    if isinstance(exc, ArmError):
        return exc.code or (f"HTTP{exc.status}" if exc.status else None), str(exc), exc.info
    if isinstance(exc, NotConverged):
        return "NotConverged", str(exc), None
    return type(exc).__name__, str(exc) or type(exc).__name__, None


class CrashHook:
    """Kills the process at a chosen point (only when a test asked for it through the settings)."""

    def __init__(self, settings: ExecutorSettings) -> None:
        self._point = settings.crash_at
        self._seen = 0

    def reached(self, point: str) -> None:
        if self._point is None or self._point.point != point:
            return
        self._seen += 1
        if self._seen == self._point.nth:
            os.kill(os.getpid(), signal.SIGKILL)


class RunContext:
    """One run's shared means: its gateway, pacer, settings, clock, journal writer and app records.

    The engine is one (it adds the loop); `Writing` and `Verification` are handed it."""

    def __init__(
        self,
        *,
        run_id: str,
        gateway: ArmGateway,
        journal: Journal,
        settings: ExecutorSettings,
        clock: Clock,
        sleep: Sleep,
        progress: ProgressSink | None,
    ) -> None:
        self.run_id = run_id
        self.gateway = gateway
        self.journal = journal
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.progress = progress
        self.pacer = Pacer(
            global_limit=settings.concurrency,
            per_subscription=settings.per_subscription,
            policy=settings.pacing,
            clock=clock,
            sleep=sleep,
        )
        # Every ARM request (polls and transport retries included) waits for the bucket mirrors, and
        # its answer feeds them.
        gateway.observe_calls(self.pacer)
        self.writer = JournalWriter(journal)
        self.crash = CrashHook(settings)
        # Reads outside an operation slot (verification) are bounded too, by the same number if set.
        self.reads: AbstractAsyncContextManager[None] = (
            asyncio.Semaphore(settings.concurrency) if settings.concurrency else contextlib.nullcontext()
        )
        self.records: dict[str, AppRecord] = {}
        self.wave_names: dict[int, str] = {}

    async def read_deny_assignment(self, item: WorkItem, app: App) -> DenyMatch:
        try:
            async with self.reads:
                assignments = await self.gateway.list_deny_assignments_at(
                    item.tenant_id, app.managed_resource_group_id
                )
        except ArmError as exc:
            self.note_throttle(item, exc)
            raise
        return match_system_deny_assignment(app.id, app.managed_resource_group_id, assignments)

    async def read_app(self, item: WorkItem) -> App | None:
        """The app as it is now, joined with its system deny assignment (retrying transient errors)."""
        read = await self.read_for_update(item)
        return read.app if read is not None else None

    async def read_for_update(self, item: WorkItem) -> AppRead | None:
        """`read_app`, keeping the resource as read: a write right after it PUTs exactly that."""
        async for attempt in retrying(
            self.settings.operation_retry, sleep=self.sleep, before_sleep=self.log_retry
        ):
            with attempt:
                try:
                    read = await self.gateway.read_for_update(item.tenant_id, item.app_id)
                    if read is None:
                        return None
                    app = read.app
                    assignments = await self.gateway.list_deny_assignments_at(
                        item.tenant_id, app.managed_resource_group_id
                    )
                except ArmError as exc:
                    self.note_throttle(item, exc)
                    raise
                found = match_system_deny_assignment(app.id, app.managed_resource_group_id, assignments)
                joined = app.model_copy(
                    update={"deny_assignment": found.found, "deny_assignment_problem": found.problem}
                )
                return AppRead(joined, body=read.body)
        raise AssertionError("unreachable: tenacity re-raises or returns")

    def note_throttle(self, item: WorkItem, exc: ArmError) -> None:
        if exc.status == 429:
            retry_after = getattr(exc, "retry_after", None)
            self.pacer.throttled(
                item.subscription_id, retry_after if isinstance(retry_after, int | float) else None
            )

    async def log_retry(self, state: object) -> None:
        from tenacity import RetryCallState

        assert isinstance(state, RetryCallState)
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else None
        log.info("retrying", attempt=state.attempt_number, reason=str(exc), wait_seconds=delay)

    async def fail(self, item: WorkItem, exc: BaseException, event: str) -> AppState:
        code, message, info = error_fields(exc)
        log.error(event, error_code=code, error=message)
        return await self.transition(
            item,
            AppState.FAILED,
            error_code=code,
            error_message=message,
            request_id=info.request_id if info else None,
        )

    async def gone(self, item: WorkItem) -> AppState:
        return await self.transition(
            item,
            AppState.FAILED,
            error_code="ResourceNotFound",
            error_message="the application no longer exists",
        )

    async def transition(
        self,
        item: WorkItem,
        state: AppState,
        *,
        attempts: int | None = None,
        operation_url: str | None = None,
        resume_token: str | None = None,
        clear_operation: bool = False,
        error_code: str | None = None,
        error_message: str | None = None,
        request_id: str | None = None,
        before: BeforeState | None = None,
        after_fingerprint: str | None = None,
        message: str | None = None,
        also: Sequence[Transition] = (),
    ) -> AppState:
        await self.writer.record(
            *also,
            Transition(
                run_id=self.run_id,
                app_id=item.app_id,
                state=state,
                attempts=attempts,
                operation_url=operation_url,
                resume_token=resume_token,
                clear_operation=clear_operation,
                error_code=error_code,
                error_message=error_message,
                request_id=request_id,
                before=before,
                after_fingerprint=after_fingerprint,
                message=message,
            ),
        )
        record = self.records[item.app_id]
        self.records[item.app_id] = record.model_copy(
            update={
                "state": state,
                "attempts": attempts if attempts is not None else record.attempts,
                "error_code": error_code,
                "error_message": error_message,
            }
        )
        if self.progress is not None:
            self.progress(
                Progress(
                    run_id=self.run_id,
                    wave=item.wave,
                    wave_name=self.wave_names.get(item.wave, str(item.wave)),
                    tenant_id=item.tenant_id,
                    tenant_name=item.tenant_name,
                    app_id=item.app_id,
                    state=state,
                    message=error_message,
                )
            )
        return state
