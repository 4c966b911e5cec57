"""Verifying one app after its operation succeeded: read its deny assignment back until it carries
the planned exclusions (`succeeded`), or say what it lacks (`unverified`) or why it failed.

A PUT Succeeded/Failed notification for the app (the registry in the journal's file) ends a pause
between reads early; a Failed one is the cause only if ARM shows the app Failed now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from orchestrator.errors import ArmError
from orchestrator.executor.context import RunContext, Sleep, error_fields
from orchestrator.executor.retrying import NotConverged, retrying
from orchestrator.executor.work import WorkItem
from orchestrator.executor.writing import Landed
from orchestrator.journal import Transition
from orchestrator.models import AppState, DenyAssignment
from orchestrator.notifications.signals import NotifiedFailure, Signal, Signals
from orchestrator.planning.checks import convergence_gap
from orchestrator.planning.derive import DenyMatch
from orchestrator.planning.fingerprint import fingerprint

log = structlog.get_logger("orchestrator.executor")

# More journal rows an app's success changes, committed in the same transaction as it (rollback).
AlsoOnSuccess = Callable[[WorkItem], Sequence[Transition]]


class _DenyGap(NotConverged):
    """Verification ran out of time: what the deny assignment still lacks, or why none is the app's."""

    def __init__(self, gap: str, *, unidentified: bool) -> None:
        super().__init__(gap)
        self.gap = gap
        self.unidentified = unidentified  # no single deny assignment could be told to be the app's


class _Watch:
    """Verification's pause between reads, cut short by a PUT Succeeded/Failed event for the app."""

    def __init__(self, signals: Signals | None, sleep: Sleep, app_id: str) -> None:
        self.signals = signals
        self.sleep = sleep
        self.app_id = app_id
        self.mark = signals.mark() if signals is not None else 0
        self.notified: Signal | None = None  # what the last pause heard

    def restart(self) -> None:
        """Listen for events after this point (called before each read)."""
        if self.signals is not None:
            self.mark = self.signals.mark()

    async def wait(self, delay: float) -> None:
        if self.signals is None:
            await self.sleep(delay)
            return
        self.notified = await self.signals.wait(self.app_id, after=self.mark, timeout=delay)
        if self.notified is not None:
            log.info(
                "notified: PUT event; verifying now", provisioning_state=self.notified.provisioning_state
            )


class Verification:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    async def verify(
        self,
        item: WorkItem,
        landed: Landed | None,
        *,
        signals: Signals | None,
        also_on_success: AlsoOnSuccess | None,
    ) -> AppState:
        """`landed`: the app as read after the operation ended, when known."""
        await self.ctx.transition(
            item, AppState.VERIFYING, message="operation succeeded; reading the deny assignment"
        )
        self.ctx.crash.reached("verifying")
        watch = _Watch(signals, self.ctx.sleep, item.app_id)
        if landed is None:
            app = await self.ctx.read_app(item)
            if app is None:
                return await self.ctx.gone(item)
            landed = Landed(app, joined=True)
        app = landed.app
        try:
            found = await self._converge(item, landed, watch)
        except (NotifiedFailure, _DenyGap, ArmError) as exc:
            return await self._not_verified(item, exc)
        after = fingerprint(app.model_copy(update={"deny_assignment": found}))
        state = await self.ctx.transition(
            item,
            AppState.SUCCEEDED,
            after_fingerprint=after,
            clear_operation=True,
            also=also_on_success(item) if also_on_success is not None else (),
        )
        log.info("succeeded")
        self.ctx.crash.reached("succeeded")
        return state

    async def _not_verified(self, item: WorkItem, exc: NotifiedFailure | _DenyGap | ArmError) -> AppState:
        """The final state of an app whose verification ended without success, with the cause."""
        if isinstance(exc, NotifiedFailure):
            return await self.ctx.transition(
                item,
                AppState.FAILED,
                error_code=exc.signal.error_code or "Failed",
                error_message=f"Azure notified PUT Failed: {exc.signal.error_message or 'no message'}",
            )
        if isinstance(exc, _DenyGap):
            log.warning("deny assignment did not converge", gap=exc.gap)
            if exc.unidentified:
                # Past the verification deadline and still no single deny assignment is the app's.
                return await self.ctx.transition(
                    item,
                    AppState.FAILED,
                    error_code="DenyAssignmentUnidentified",
                    error_message=f"verification failed: {exc.gap}",
                )
            return await self.ctx.transition(
                item,
                AppState.UNVERIFIED,
                error_code="NotConverged",
                error_message=f"after the update: {exc.gap}",
            )
        code, message, info = error_fields(exc)
        return await self.ctx.transition(
            item,
            AppState.FAILED,
            error_code=code,
            error_message=f"verification failed: {message}",
            request_id=info.request_id if info else None,
        )

    async def _converge(self, item: WorkItem, landed: Landed, watch: _Watch) -> DenyAssignment | None:
        """Read the deny assignment until it carries the planned exclusions; the one found.

        `landed.app` was read after the operation ended; when joined with its deny assignment, that is
        checked first. Raises `_DenyGap` with the last gap when the verification deadline passes."""
        app = landed.app
        match: DenyMatch | None = (
            DenyMatch(app.deny_assignment, app.deny_assignment_problem) if landed.joined else None
        )
        async for attempt in retrying(
            self.ctx.settings.verify_retry, sleep=watch.wait, before_sleep=self.ctx.log_retry
        ):
            with attempt:
                if match is None:
                    watch.restart()
                    if watch.notified is not None and watch.notified.failed:
                        await self._confirm_failure(item, watch.notified)
                    match = await self.ctx.read_deny_assignment(item, app)
                # The deny assignment could not be told apart (derive.py): that is the gap.
                found, unidentified = match.found, match.problem
                match = None  # the next attempt reads again
                gap = unidentified or convergence_gap(found, item)
                if gap is not None:
                    raise _DenyGap(gap, unidentified=unidentified is not None)
                return found
        raise AssertionError("unreachable: tenacity re-raises or returns")

    async def _confirm_failure(self, item: WorkItem, notified: Signal) -> None:
        """A PUT Failed event is the cause only if ARM shows the app Failed now (it may be stale)."""
        now = await self.ctx.read_app(item)
        if now is not None and now.provisioning_state.lower() == "failed":
            raise NotifiedFailure(notified)
