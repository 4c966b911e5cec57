"""The rollout engine: waves, caps, per-app state machine, verification, resume and rollback.

Per app: re-read → (stale? stop) → journal `submitted` (intent) → PUT → journal operation URL and
resume token → follow the operation → journal `verifying` → read the deny assignment back until it
carries the planned exclusions → `succeeded` (or `unverified` / `failed` with the reason).

Every transition is committed to the journal before the next call to Azure. A write whose outcome
is unknown (the process died, or the PUT's answer was lost) is never repeated blindly, and no layer
below repeats it (the gateway's write pipeline never re-sends): the engine first re-attaches to the
stored operation, or re-reads the app and waits for it to settle, and only writes again when the app
is idle, exactly as it was before that write, and still so after ARM had time to show the write
(`_settle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal

import structlog

from orchestrator.errors import ArmError, JournalError, JournalUnavailable
from orchestrator.executor.journal_writer import JournalWriter
from orchestrator.executor.pacing import Pacer
from orchestrator.executor.retrying import NotConverged, OperationFailed, is_retryable, retrying
from orchestrator.executor.settings import ExecutorSettings
from orchestrator.gateway import ArmGateway, CallInfo
from orchestrator.journal import AppRecord, BeforeState, Journal, NewApp, Transition
from orchestrator.models import (
    TERMINAL_APP_STATES,
    TERMINAL_SUCCESS,
    App,
    AppState,
    AppStateSummary,
    Decision,
    DenyAssignment,
    MarketplacePlan,
    Plan,
    PlanItem,
    RunState,
    Target,
)
from orchestrator.notifications.signals import NotifiedFailure, Signal, Signals
from orchestrator.planning.derive import DenyMatch, match_system_deny_assignment
from orchestrator.planning.fingerprint import describe_difference, fingerprint
from orchestrator.planning.lineage import describe as describe_lineage
from orchestrator.planning.lineage import in_lineage

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

log = structlog.get_logger("orchestrator.executor")

FAILURE_STATES = frozenset({AppState.FAILED, AppState.UNVERIFIED})
# Provisioning states after which nothing runs on the application any more.
SETTLED_STATES = frozenset({"succeeded", "failed", "canceled"})


@dataclass(frozen=True)
class WorkItem:
    """One app to move, in the engine's terms (built from a plan item or from a journal for rollback)."""

    app_id: str
    app_name: str
    tenant_id: str
    tenant_name: str
    subscription_id: str
    wave: int
    fingerprint: str  # the state the write may start from
    to_definition_id: str | None
    to_plan: MarketplacePlan | None
    from_definition_id: str | None
    from_plan: MarketplacePlan | None
    expected_not_actions: tuple[str, ...]
    expected_not_data_actions: tuple[str, ...]
    expect_deny_assignment: bool = True
    as_read: AppStateSummary | None = None  # what the fingerprint covered, to say what changed
    # Service catalog: the plan's target, whose product lineage the app must still be in when it is
    # written (re-checked per app; a plan made before lineage existed gets the default rule).
    product: Target | None = None


@dataclass(frozen=True)
class WaveWork:
    index: int
    name: str
    items: tuple[WorkItem, ...]


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


class _Halt(Exception):
    pass


class _Reconcile(Exception):
    """Re-read the app before doing anything else: the operation could not be followed, or a write's
    outcome is unknown (`unknown`: its request may have reached ARM and its answer was lost)."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


def _answered_refusal(exc: ArmError) -> bool:
    """ARM answered the write and refused it (409 busy, 429): it did not land."""
    return exc.status in (409, 429)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Reconcile) or is_retryable(exc)


# --- building work -------------------------------------------------------------------------------

# The journal state of an app the plan does not update: status keeps current, drifted and skip apart.
_NOT_UPDATED = {
    Decision.CURRENT: AppState.CURRENT,
    Decision.DRIFTED: AppState.DRIFTED,
    Decision.SKIP: AppState.SKIPPED,
}


def plan_work(plan: Plan) -> tuple[list[NewApp], list[WaveWork]]:
    """The journal rows for a new run of `plan`, and the waves of work in plan order."""
    lock_level = plan.target.definition.lock_level
    by_id = {item.app_id: item for item in plan.items}
    rows: list[NewApp] = []
    for item in plan.items:
        update = item.decision == Decision.UPDATE
        state = _NOT_UPDATED.get(item.decision, AppState.PENDING)
        message = None if update else f"{item.decision.value}: {item.reason}"
        if update and item.path not in ("direct", "delegated"):
            # Publisher and customer-run updates are the customer's to make (a kit), not ours.
            state = AppState.AWAITING_CUSTOMER
            message = f"{item.path}: the customer runs this update from its kit (orchestrator handoff)"
        rows.append(
            NewApp(
                app_id=item.app_id,
                app_name=item.app_name,
                tenant_id=item.tenant_id,
                tenant_name=item.tenant_name,
                subscription_id=item.subscription_id,
                wave=item.wave if state == AppState.PENDING else None,
                state=state,
                error_message=message,
            )
        )
    waves: list[WaveWork] = []
    for wave in sorted(plan.waves, key=lambda w: w.index):
        items = []
        for app_id in wave.app_ids:
            found = by_id.get(app_id)
            if (
                found is None
                or found.decision != Decision.UPDATE
                or found.path not in ("direct", "delegated")
            ):
                continue
            product = plan.target if found.to_definition_id is not None else None
            items.append(work_item(found, wave=wave.index, lock_level=lock_level, product=product))
        waves.append(WaveWork(wave.index, wave.name, tuple(items)))
    return rows, waves


def work_item(item: PlanItem, *, wave: int, lock_level: str, product: Target | None = None) -> WorkItem:
    """What the engine (and `verify`) needs of one planned update."""
    return WorkItem(
        app_id=item.app_id,
        app_name=item.app_name,
        tenant_id=item.tenant_id,
        tenant_name=item.tenant_name,
        subscription_id=item.subscription_id,
        wave=wave,
        fingerprint=item.fingerprint,
        to_definition_id=item.to_definition_id,
        to_plan=item.to_plan,
        from_definition_id=item.from_definition_id,
        from_plan=item.from_plan,
        expected_not_actions=item.expected_not_actions,
        expected_not_data_actions=item.expected_not_data_actions,
        expect_deny_assignment=lock_level != "None",
        as_read=item.as_read,
        product=product,
    )


# --- small pure helpers --------------------------------------------------------------------------


def _fold(values: Sequence[str]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values)


def on_target(app: App, item: WorkItem) -> bool:
    if item.to_definition_id is not None:
        return (app.definition_id or "").lower() == item.to_definition_id.lower()
    if item.to_plan is not None and app.plan is not None:
        want, have = item.to_plan, app.plan
        return (
            have.version == want.version
            and have.name.lower() == want.name.lower()
            and have.product.lower() == want.product.lower()
            and have.publisher.lower() == want.publisher.lower()
        )
    return False


def _describe(app: App) -> str:
    if app.plan is not None:
        return f"plan {app.plan.name} version {app.plan.version}"
    return f"definition {app.definition_id}"


def difference(app: App, item: WorkItem) -> str:
    """One line saying how the app differs from the state the plan was made from."""
    if item.as_read is not None:
        described = describe_difference(item.as_read, app)
        if described:
            return "changed since planning: " + described
    parts: list[str] = []
    if on_target(app, item):
        parts.append(f"already on the target ({_describe(app)})")
    elif (
        item.from_definition_id is not None
        and (app.definition_id or "").lower() != item.from_definition_id.lower()
    ):
        parts.append(f"definition changed from {item.from_definition_id} to {app.definition_id}")
    elif item.from_plan is not None and (app.plan is None or app.plan.version != item.from_plan.version):
        now = app.plan.version if app.plan else "none"
        parts.append(f"plan version changed from {item.from_plan.version} to {now}")
    if app.provisioning_state != TERMINAL_SUCCESS:
        parts.append(f"provisioning state is {app.provisioning_state}")
    if not parts:
        parts.append("its deny assignment or managed resource group changed")
    return "changed since planning: " + "; ".join(parts)


def convergence_gap(found: DenyAssignment | None, item: WorkItem) -> str | None:
    """None when the deny assignment is as planned; else what is still wrong."""
    if not item.expect_deny_assignment:
        return None if found is None else f"deny assignment {found.id} still present"
    if found is None:
        return "no system deny assignment on the managed resource group"
    gaps: list[str] = []
    for label, want, have in (
        ("notActions", item.expected_not_actions, found.not_actions),
        ("notDataActions", item.expected_not_data_actions, found.not_data_actions),
    ):
        missing = sorted(_fold(want) - _fold(have))
        extra = sorted(_fold(have) - _fold(want))
        if missing:
            gaps.append(f"{label} lacks {', '.join(missing)}")
        if extra:
            gaps.append(f"{label} still has {', '.join(extra)}")
    return "; ".join(gaps) or None


def _already_there(app: App, item: WorkItem) -> bool:
    """On the target, settled, and its deny assignment carries the planned exclusions."""
    return (
        on_target(app, item)
        and app.provisioning_state == TERMINAL_SUCCESS
        and convergence_gap(app.deny_assignment, item) is None
    )


def _before_state(app: App) -> BeforeState:
    da = app.deny_assignment
    return BeforeState(
        definition_id=app.definition_id,
        plan=app.plan,
        not_actions=da.not_actions if da else (),
        not_data_actions=da.not_data_actions if da else (),
        had_deny_assignment=da is not None,
    )


def _error_fields(exc: BaseException) -> tuple[str | None, str, CallInfo | None]:
    if isinstance(exc, OperationFailed):
        return exc.code or exc.status, str(exc), exc.info
    if isinstance(exc, ArmError):
        return exc.code or (f"HTTP{exc.status}" if exc.status else None), str(exc), exc.info
    if isinstance(exc, NotConverged):
        return "NotConverged", str(exc), None
    return type(exc).__name__, str(exc) or type(exc).__name__, None


# --- the engine ----------------------------------------------------------------------------------


class _CrashHook:
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


class Engine:
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
        self.writer = JournalWriter(journal)
        self.pacer = Pacer(
            global_limit=settings.concurrency,
            per_subscription=settings.per_subscription,
            policy=settings.pacing,
            clock=clock,
            sleep=sleep,
        )
        # Every ARM response (polls and transport retries included) feeds the pacer's bucket mirrors.
        gateway.observe_responses(self.pacer.observe_response)
        self.crash = _CrashHook(settings)
        # Reads outside an operation slot (verification) are bounded too, by the same number if set.
        self._reads: AbstractAsyncContextManager[None] = (
            asyncio.Semaphore(settings.concurrency) if settings.concurrency else contextlib.nullcontext()
        )
        self.records: dict[str, AppRecord] = {}
        # app id → fingerprint of the app as read right before its latest write (see `_settle`).
        self._baseline: dict[str, str] = {}
        # More journal rows an app's success changes, committed in the same transaction as it.
        self.also_on_success: Callable[[WorkItem], Sequence[Transition]] | None = None
        # Notifications about the apps (the registry in the journal's file): wake verification early.
        self.signals: Signals | None = None
        self._wave_names: dict[int, str] = {}
        self.waiting = False  # some app did not start because its maintenance window was closed

    # -- the run ---------------------------------------------------------------------------------

    async def run(self, waves: Sequence[WaveWork]) -> RunState:
        self.records = {r.app_id: r for r in self.journal.apps(self.run_id)}
        self._wave_names = {w.index: w.name for w in waves}
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

    # -- one app ---------------------------------------------------------------------------------

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
            return await self._fail(item, exc, "app failed")

    async def _drive(self, item: WorkItem, record: AppRecord, stop: asyncio.Event) -> AppState:
        state = record.state
        if state == AppState.VERIFYING:
            return await self._verify(item, None)
        gate = self.settings.window_gate
        if gate is not None and state in (AppState.PENDING, AppState.HALTED):
            closed = gate(item.tenant_id)
            if closed is not None:
                self.waiting = True
                return await self._transition(
                    item, AppState.PENDING, error_code="WindowClosed", error_message=closed, message="waiting"
                )
        # The caps bound operations in flight: the slot spans re-read, write and operation; the
        # read-back after it does not hold the slot (it is bounded by the read limit instead).
        async with self.pacer.slot(item.subscription_id):
            if stop.is_set() and state in (AppState.PENDING, AppState.HALTED):
                return state  # stays pending: the rollout stopped before this app's turn
            if state in (AppState.PENDING, AppState.HALTED):
                app = await self._read_app(item)
                if app is None:
                    return await self._transition(
                        item,
                        AppState.FAILED,
                        error_code="ResourceNotFound",
                        error_message="the application no longer exists",
                    )
                if item.product is not None and not in_lineage(app.definition_id, item.product):
                    why = (
                        f"different product: definition {app.definition_id} is not one the target "
                        f"replaces ({describe_lineage(item.product)})"
                    )
                    log.warning("not writing", reason=why)
                    return await self._transition(
                        item, AppState.SKIPPED, error_code="DifferentProduct", error_message=why
                    )
                if fingerprint(app) != item.fingerprint:
                    if _already_there(app, item):
                        # e.g. a new run of a plan an earlier run completed: nothing to write.
                        return await self._transition(
                            item,
                            AppState.CURRENT,
                            error_message=f"already on the target ({_describe(app)})",
                            message="current",
                        )
                    why = difference(app, item)
                    log.warning("stale: not writing", reason=why)
                    return await self._transition(item, AppState.STALE, error_code="Stale", error_message=why)
                before: BeforeState | None = _before_state(app)
                token, reconcile = None, False
                self._baseline[item.app_id] = item.fingerprint
            else:  # submitted: an operation may be in flight
                before = None
                token, reconcile = record.resume_token, record.resume_token is None
                # Died after journaling the intent, before ARM's answer: the first write started
                # from the planned state; a later one from a state this process no longer knows.
                if reconcile and record.attempts <= 1:
                    self._baseline[item.app_id] = item.fingerprint
            outcome = await self._write(item, record.attempts, before, token, reconcile)
        if isinstance(outcome, AppState):
            return outcome
        return await self._verify(item, outcome)

    async def _write(
        self,
        item: WorkItem,
        attempts: int,
        before: BeforeState | None,
        token: str | None,
        reconcile: bool,
    ) -> App | AppState | None:
        """Drive the write until its operation succeeded. Returns the app when known, or a final state.

        `token`: an operation to follow first. `reconcile`: the outcome of an earlier write is unknown,
        so re-read the app (and wait for it to settle) before deciding to write.

        No layer below re-sends a write (see the gateway's write pipeline); this is the one place that
        decides to write again, and it does so only when `_settle` shows the last write did not land.
        """
        unknown = reconcile  # a write journaled as submitted without ARM's answer (resume)
        accepted_at: float | None = None  # when ARM accepted the write made here
        try:
            async for attempt in retrying(
                self.settings.operation_retry,
                sleep=self.sleep,
                retry=_retryable,
                before_sleep=self._log_retry,
            ):
                with attempt:
                    if token is None and reconcile:
                        found = await self._settle(item, unknown=unknown)
                        reconcile = unknown = False
                        if found is not None:
                            if not isinstance(found, AppState):
                                log.info("the earlier write landed; verifying")
                            return found
                    if token is None:
                        # Nothing is in flight and the app is not on the target: write.
                        attempts += 1
                        try:
                            token = await self._submit(item, attempts, before)
                        except _Reconcile as exc:
                            # Look now, even on the last attempt: a write that landed is followed
                            # to its end, never failed (or written again) for want of an attempt.
                            # Until that look decides, the next attempt must look first too.
                            reconcile, unknown = True, exc.unknown
                            found = await self._settle(item, unknown=unknown)
                            reconcile = unknown = False
                            if found is not None:
                                if not isinstance(found, AppState):
                                    log.info("the write landed although its answer was lost; verifying")
                                return found
                            reconcile = True  # it did not land: look again before the next write
                            raise _Reconcile(f"the write did not land: {exc}") from exc
                        before = None
                        accepted_at = self.clock()
                        await self.pacer.head_start()  # no polls before it can have ended
                    try:
                        await self._follow(item, token)
                    except (OperationFailed, _Reconcile):
                        # The operation is over (or cannot be followed): look before writing again.
                        token, reconcile, accepted_at = None, True, None
                        raise
                    if accepted_at is not None:
                        self.pacer.operation_took(self.clock() - accepted_at)
                    return None
        except (OperationFailed, ArmError, NotConverged, _Reconcile) as exc:
            return await self._fail(item, exc, "upgrade failed")
        raise AssertionError("unreachable: tenacity re-raises or returns")

    async def _fail(self, item: WorkItem, exc: BaseException, event: str) -> AppState:
        code, message, info = _error_fields(exc)
        log.error(event, error_code=code, error=message)
        return await self._transition(
            item,
            AppState.FAILED,
            error_code=code,
            error_message=message,
            request_id=info.request_id if info else None,
        )

    async def _submit(self, item: WorkItem, attempts: int, before: BeforeState | None) -> str:
        """Journal the intent, PUT, journal the operation. Returns the resume token."""
        await self.pacer.before_call(item.subscription_id, "write")
        await self._transition(
            item,
            AppState.SUBMITTED,
            attempts=attempts,
            before=before,
            clear_operation=True,
            message="submitting",
        )
        self.crash.reached("before-submit")
        try:
            submitted = await self.gateway.submit_upgrade(
                item.tenant_id, item.app_id, definition_id=item.to_definition_id, plan=item.to_plan
            )
        except ArmError as exc:
            self._note_throttle(item, exc)
            if exc.transient:
                # The request may have reached ARM before the answer was lost: never write blind.
                raise _Reconcile(
                    f"the write's outcome is unknown: {exc}", unknown=not _answered_refusal(exc)
                ) from exc
            raise
        self.pacer.observe(item.subscription_id, submitted.info)
        structlog.contextvars.bind_contextvars(request_id=submitted.info.request_id)
        await self._transition(
            item,
            AppState.SUBMITTED,
            operation_url=submitted.operation_url,
            resume_token=submitted.resume_token,
            request_id=submitted.info.request_id,
            message="accepted",
        )
        log.info("submitted", operation_url=submitted.operation_url)
        self.crash.reached("after-submit")
        return submitted.resume_token

    async def _follow(self, item: WorkItem, token: str) -> None:
        """Wait for the operation. OperationFailed: it ended badly; _Reconcile: it cannot be followed;
        a transient ArmError: following failed for now (retry follows the same operation again)."""
        try:
            result = await self.gateway.wait_operation(item.tenant_id, item.app_id, token)
        except ArmError as exc:
            self._note_throttle(item, exc)
            if not exc.transient and (exc.status in (404, 410) or exc.code == "InvalidResumeToken"):
                raise _Reconcile(f"the operation can no longer be followed: {exc}") from exc
            raise
        self.pacer.observe(item.subscription_id, result.info)
        if result.info.request_id:
            structlog.contextvars.bind_contextvars(request_id=result.info.request_id)
        if result.status != TERMINAL_SUCCESS:
            raise OperationFailed(result.status, result.error_code, result.error_message, result.info)

    async def _settle(self, item: WorkItem, *, unknown: bool = False) -> App | AppState | None:
        """Re-read the app and wait until no operation runs on it; decide whether it may be written.

        Returns the app when it is on the target (verify it), a final state (stale, gone), or None:
        write. With `unknown` (the last write's answer was lost) None needs proof that the write did
        not land: the app is idle and exactly as it was before that write, and still so after ARM had
        `write_visibility_seconds` to show the write. An app that changed since, and is not on the
        target, took the write and failed: that is the app's failure, with the cause, not a re-write.
        """
        baseline = self._baseline.get(item.app_id) if unknown else None
        looked_again = False
        while True:
            app = await self._read_settled(item)
            decided = await self._decide_settled(item, app)
            if decided is not None or not unknown:
                return decided
            assert app is not None  # _decide_settled returns a state for a missing app
            if baseline is not None and fingerprint(app) != baseline:
                raise OperationFailed(
                    "Failed",
                    "WriteFailed",
                    "the write's answer was lost and the application changed without reaching the "
                    f"target (provisioning state {app.provisioning_state}): {difference(app, item)}",
                    CallInfo(),
                )
            if looked_again:
                log.info("the lost write did not land; writing again")
                return None
            await self.sleep(self.settings.write_visibility_seconds)
            looked_again = True

    async def _read_settled(self, item: WorkItem) -> App | None:
        """The app once no operation runs on it (waiting within `settle_retry`)."""
        app: App | None = None

        async def read_settled() -> App | None:
            found = await self._read_app(item)
            if found is not None and found.provisioning_state.lower() not in SETTLED_STATES:
                raise NotConverged(
                    f"an operation is still running (provisioning state {found.provisioning_state})"
                )
            return found

        async for attempt in retrying(
            self.settings.settle_retry, sleep=self.sleep, before_sleep=self._log_retry
        ):
            with attempt:
                app = await read_settled()
        return app

    async def _decide_settled(self, item: WorkItem, app: App | None) -> App | AppState | None:
        if app is None:
            return await self._transition(
                item,
                AppState.FAILED,
                error_code="ResourceNotFound",
                error_message="the application no longer exists",
            )
        if on_target(app, item) and app.provisioning_state == TERMINAL_SUCCESS:
            return app
        from_ok = (
            item.from_definition_id is None
            or (app.definition_id or "").lower() == item.from_definition_id.lower()
        ) and (
            item.from_plan is None or (app.plan is not None and app.plan.version == item.from_plan.version)
        )
        if not on_target(app, item) and not from_ok:
            why = difference(app, item)
            return await self._transition(item, AppState.STALE, error_code="Stale", error_message=why)
        self._baseline[item.app_id] = fingerprint(app)  # what the next write starts from
        return None  # idle, still to be written

    async def _verify(self, item: WorkItem, app: App | None) -> AppState:
        await self._transition(
            item, AppState.VERIFYING, message="operation succeeded; reading the deny assignment"
        )
        self.crash.reached("verifying")
        signals, mark = self.signals, self.signals.mark() if self.signals is not None else 0
        notified: Signal | None = None

        async def wait(delay: float) -> None:
            """The retry's pause, cut short by a PUT Succeeded/Failed event for this app."""
            nonlocal notified
            if signals is None:
                await self.sleep(delay)
                return
            notified = await signals.wait(item.app_id, after=mark, timeout=delay)
            if notified is not None:
                log.info("notified: PUT event; verifying now", provisioning_state=notified.provisioning_state)

        if app is None:
            app = await self._read_app(item)
            if app is None:
                return await self._transition(
                    item,
                    AppState.FAILED,
                    error_code="ResourceNotFound",
                    error_message="the application no longer exists",
                )
        found: DenyAssignment | None = None
        gap: str | None = None
        unidentified: str | None = None  # the deny assignment could not be told apart (derive.py)
        # `app` was read after the operation ended, joined with its deny assignment: check that first.
        already_read = True
        try:
            async for attempt in retrying(
                self.settings.verify_retry, sleep=wait, before_sleep=self._log_retry
            ):
                with attempt:
                    if already_read:
                        already_read = False
                        match = DenyMatch(app.deny_assignment, app.deny_assignment_problem)
                    else:
                        mark = signals.mark() if signals is not None else 0
                        if notified is not None and notified.failed:
                            await self._confirm_failure(item, notified)
                        match = await self._read_deny_assignment(item, app)
                    found, unidentified = match.found, match.problem
                    gap = unidentified or convergence_gap(found, item)
                    if gap is not None:
                        raise NotConverged(gap)
        except NotifiedFailure as exc:
            return await self._transition(
                item,
                AppState.FAILED,
                error_code=exc.signal.error_code or "Failed",
                error_message=f"Azure notified PUT Failed: {exc.signal.error_message or 'no message'}",
            )
        except NotConverged:
            log.warning("deny assignment did not converge", gap=gap)
            if unidentified is not None:
                # Past the verification deadline and still no single deny assignment is the app's.
                return await self._transition(
                    item,
                    AppState.FAILED,
                    error_code="DenyAssignmentUnidentified",
                    error_message=f"verification failed: {unidentified}",
                )
            return await self._transition(
                item, AppState.UNVERIFIED, error_code="NotConverged", error_message=f"after the update: {gap}"
            )
        except ArmError as exc:
            code, message, info = _error_fields(exc)
            return await self._transition(
                item,
                AppState.FAILED,
                error_code=code,
                error_message=f"verification failed: {message}",
                request_id=info.request_id if info else None,
            )
        after = fingerprint(app.model_copy(update={"deny_assignment": found}))
        state = await self._transition(
            item,
            AppState.SUCCEEDED,
            after_fingerprint=after,
            clear_operation=True,
            also=self.also_on_success(item) if self.also_on_success is not None else (),
        )
        log.info("succeeded")
        self.crash.reached("succeeded")
        return state

    async def _confirm_failure(self, item: WorkItem, notified: Signal) -> None:
        """A PUT Failed event is the cause only if ARM shows the app Failed now (it may be stale)."""
        now = await self._read_app(item)
        if now is not None and now.provisioning_state.lower() == "failed":
            raise NotifiedFailure(notified)

    # -- plumbing ----------------------------------------------------------------------------------

    async def _read_deny_assignment(self, item: WorkItem, app: App) -> DenyMatch:
        await self.pacer.before_call(item.subscription_id, "read")
        try:
            async with self._reads:
                assignments = await self.gateway.list_deny_assignments_at(
                    item.tenant_id, app.managed_resource_group_id
                )
        except ArmError as exc:
            self._note_throttle(item, exc)
            raise
        return match_system_deny_assignment(app.id, app.managed_resource_group_id, assignments)

    async def _read_app(self, item: WorkItem) -> App | None:
        """The app as it is now, joined with its system deny assignment (retrying transient errors)."""
        async for attempt in retrying(
            self.settings.operation_retry, sleep=self.sleep, before_sleep=self._log_retry
        ):
            with attempt:
                await self.pacer.before_call(item.subscription_id, "read")
                try:
                    app = await self.gateway.get_application(item.tenant_id, item.app_id)
                    if app is None:
                        return None
                    assignments = await self.gateway.list_deny_assignments_at(
                        item.tenant_id, app.managed_resource_group_id
                    )
                except ArmError as exc:
                    self._note_throttle(item, exc)
                    raise
                found = match_system_deny_assignment(app.id, app.managed_resource_group_id, assignments)
                return app.model_copy(
                    update={"deny_assignment": found.found, "deny_assignment_problem": found.problem}
                )
        raise AssertionError("unreachable: tenacity re-raises or returns")

    def _note_throttle(self, item: WorkItem, exc: ArmError) -> None:
        if exc.status == 429:
            retry_after = getattr(exc, "retry_after", None)
            self.pacer.throttled(
                item.subscription_id, retry_after if isinstance(retry_after, int | float) else None
            )

    async def _log_retry(self, state: object) -> None:
        from tenacity import RetryCallState

        assert isinstance(state, RetryCallState)
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else None
        log.info("retrying", attempt=state.attempt_number, reason=str(exc), wait_seconds=delay)

    async def _transition(
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
                    wave_name=self._wave_names.get(item.wave, str(item.wave)),
                    tenant_id=item.tenant_id,
                    tenant_name=item.tenant_name,
                    app_id=item.app_id,
                    state=state,
                    message=error_message,
                )
            )
        return state
