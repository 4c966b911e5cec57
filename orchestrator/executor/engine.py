"""The rollout engine: waves, caps, failure tolerance, and each app's way through its states.

Per app: re-read → (stale? stop) → journal `submitted` (intent) → PUT → journal operation URL and
resume token → follow the operation → journal `verifying` → read the deny assignment back until it
carries the planned exclusions → `succeeded` (or `unverified` / `failed` with the reason).

The steps live beside it: `work` (what to move), `writing` (up to the operation's success, never a
write twice), `verification` (the deny assignment read back), `context` (reads and journaled
transitions they share).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cached_property
from typing import Literal

import structlog

from orchestrator.errors import JournalError, JournalUnavailable
from orchestrator.executor.context import RunContext
from orchestrator.executor.verification import AlsoOnSuccess, Verification
from orchestrator.executor.work import WaveWork, WorkItem
from orchestrator.executor.writing import Landed, Writing
from orchestrator.journal import AppRecord
from orchestrator.models import TERMINAL_APP_STATES, AppState, RunState
from orchestrator.notifications.signals import Signals

log = structlog.get_logger("orchestrator.executor")

FAILURE_STATES = frozenset({AppState.FAILED, AppState.UNVERIFIED})


class Engine(RunContext):
    """The loop: waves in order, a wave's apps at once within the pacer's caps, the failure tolerance.

    Each app is written by `Writing` and verified by `Verification`; both share this run's means."""

    # More journal rows an app's success changes, committed in the same transaction as it.
    also_on_success: AlsoOnSuccess | None = None
    # Notifications about the apps (the registry in the journal's file): wake verification early.
    signals: Signals | None = None
    waiting = False  # some app did not start because its maintenance window was closed

    @cached_property
    def writing(self) -> Writing:
        return Writing(self)

    @cached_property
    def verification(self) -> Verification:
        return Verification(self)

    async def run(self, waves: Sequence[WaveWork]) -> RunState:
        # Only the apps in waves: a 10,000-app plan's skipped rows would cost ~25 MB through the run.
        self.records = {r.app_id: r for r in self.journal.apps(self.run_id, in_waves=True)}
        if any(i.app_id not in self.records for w in waves for i in w.items):  # rows journaled otherwise
            self.records = {r.app_id: r for r in self.journal.apps(self.run_id)}
        self.wave_names = {w.index: w.name for w in waves}
        self.pacer.name_tenants({i.subscription_id: i.tenant_id for w in waves for i in w.items})
        self.journal.set_run_state(self.run_id, RunState.RUNNING, "started")
        selected = [w for w in waves if self.settings.only_wave is None or w.index == self.settings.only_wave]
        halted = False
        async with self.writer:
            for position, wave in enumerate(selected):
                outcome = await self._run_wave(wave)
                if outcome == "halted":
                    halted = True
                    break
                if self.waiting:
                    # A wave is done only when all of it is: later waves wait for its closed windows.
                    log.info("apps wait for their maintenance window; later waves wait too", wave=wave.name)
                    break
                last = position == len(selected) - 1
                if outcome == "worked" and not last and self.settings.bake_seconds > 0:
                    log.info("baking", run_id=self.run_id, wave=wave.name, seconds=self.settings.bake_seconds)
                    await self.sleep(self.settings.bake_seconds)
        states = [r.state for r in self.journal.apps(self.run_id)]
        if halted:
            final = RunState.HALTED
        elif all(s in TERMINAL_APP_STATES for s in states):
            final = RunState.COMPLETED
        elif self.waiting or all(s in TERMINAL_APP_STATES or s == AppState.AWAITING_CUSTOMER for s in states):
            # Customer-run apps are not ours to finish: the run waits for them (`orchestrator verify`).
            final = RunState.WAITING
        else:
            final = RunState.INTERRUPTED
        self.journal.set_run_state(self.run_id, final)
        log.info("run finished", run_id=self.run_id, state=final.value)
        return final

    async def _run_wave(self, wave: WaveWork) -> Literal["halted", "worked", "idle"]:
        size = len(wave.items)
        tolerance = self.settings.failure_tolerance
        failures = sum(1 for i in wave.items if self.records[i.app_id].state in FAILURE_STATES)
        todo = [i for i in wave.items if self.records[i.app_id].state not in TERMINAL_APP_STATES]
        log.info(
            "wave starting",
            run_id=self.run_id,
            wave=wave.name,
            apps=size,
            to_do=len(todo),
            failure_tolerance=str(tolerance),
        )
        if tolerance.exceeded(failures, size):
            log.warning("wave already over its failure tolerance", run_id=self.run_id, wave=wave.name)
            return "halted"
        if not todo:
            return "idle"
        stop = asyncio.Event()
        counter = {"failures": failures}

        async def one(item: WorkItem) -> None:
            state = await self._process(item, stop)
            if state in FAILURE_STATES:
                counter["failures"] += 1
                if tolerance.exceeded(counter["failures"], size) and not stop.is_set():
                    stop.set()
                    log.warning(
                        "failure tolerance exceeded; stopping the rollout",
                        run_id=self.run_id,
                        wave=wave.name,
                        failures=counter["failures"],
                        allowed=tolerance.allowed(size),
                    )

        try:
            async with asyncio.TaskGroup() as group:
                for item in todo:
                    group.create_task(one(item))
        except ExceptionGroup as group_error:
            # The journal failing stops the run (nothing may be written that cannot be recorded);
            # surface its one-line error rather than a group. Anything else is a bug: re-raise as is.
            journal_errors = group_error.subgroup((JournalError, JournalUnavailable))
            if journal_errors is not None:
                raise journal_errors.exceptions[0] from None
            raise
        return "halted" if stop.is_set() else "worked"

    async def _process(self, item: WorkItem, stop: asyncio.Event) -> AppState:
        structlog.contextvars.bind_contextvars(
            run_id=self.run_id,
            tenant=item.tenant_id,
            subscription=item.subscription_id,
            app=item.app_id,
            request_id=None,
        )
        record = self.records[item.app_id]
        try:
            return await self._drive(item, record, stop)
        except (JournalError, JournalUnavailable):
            raise
        except Exception as exc:  # the last resort: an app's failure never takes the run down
            return await self.fail(item, exc, "app failed")

    async def _drive(self, item: WorkItem, record: AppRecord, stop: asyncio.Event) -> AppState:
        state = record.state
        if state == AppState.VERIFYING:
            return await self._verify(item, None)
        fresh = state in (AppState.PENDING, AppState.HALTED)
        gate = self.settings.window_gate
        closed = gate(item.tenant_id) if gate is not None and fresh else None
        if closed is not None:
            self.waiting = True
            return await self.transition(
                item, AppState.PENDING, error_code="WindowClosed", error_message=closed, message="waiting"
            )
        # The caps bound operations in flight: the slot spans re-read, write and operation; the
        # read-back after it does not hold the slot (it is bounded by the read limit instead).
        async with self.pacer.slot(item.subscription_id):
            if not fresh:  # submitted: an operation may be in flight
                outcome = await self.writing.resume(item, record)
            elif stop.is_set():
                return state  # stays pending: the rollout stopped before this app's turn
            else:
                outcome = await self.writing.fresh(item, record.attempts)
        if isinstance(outcome, AppState):
            return outcome
        return await self._verify(item, outcome)

    async def _verify(self, item: WorkItem, landed: Landed | None) -> AppState:
        return await self.verification.verify(
            item, landed, signals=self.signals, also_on_success=self.also_on_success
        )


# --- entry points --------------------------------------------------------------------------------
