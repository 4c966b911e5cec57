"""Writing one app: re-read, journal the intent, PUT, follow the operation; never a write twice.

Every transition is committed to the journal before the next call to Azure. A write whose outcome
is unknown (the process died, or the PUT's answer was lost) is never repeated blindly, and no layer
below repeats it (the gateway's write pipeline never re-sends): `Writing` first re-attaches to the
stored operation, or re-reads the app and waits for it to settle, and only writes again when the app
is idle, exactly as it was before that write, and still so after ARM had time to show the write
(`_settle`).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from orchestrator.errors import ArmError
from orchestrator.executor.context import RunContext
from orchestrator.executor.retrying import NotConverged, OperationFailed, is_retryable, retrying
from orchestrator.executor.work import WorkItem, before_state
from orchestrator.gateway import AppRead, CallInfo, OperationResult
from orchestrator.journal import AppRecord, BeforeState
from orchestrator.models import TERMINAL_SUCCESS, App, AppState
from orchestrator.planning.checks import already_there, describe, difference, moved_from_start, on_target
from orchestrator.planning.fingerprint import fingerprint
from orchestrator.planning.lineage import describe as describe_lineage
from orchestrator.planning.lineage import in_lineage

log = structlog.get_logger("orchestrator.executor")

# Provisioning states after which nothing runs on the application any more.
SETTLED_STATES = frozenset({"succeeded", "failed", "canceled"})


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


@dataclass
class _Write:
    """One app's write across the attempts of `Writing._write`."""

    attempts: int  # writes journaled so far
    before: BeforeState | None  # what the app was on: journaled with the first write, for rollback
    token: str | None  # an operation to follow first
    reconcile: bool  # look before writing: the last write's outcome is not known here
    unknown: bool  # that write's answer was lost: it may have landed (see `Writing._settle`)
    accepted_at: float | None = None  # when ARM accepted the write made here
    # The app as just re-read and checked, write admitted before that read: the next write PUTs
    # exactly this (no GET of its own); used once.
    base: AppRead | None = None


@dataclass(frozen=True)
class Landed:
    """An app whose write landed: as read with its deny assignment (`joined`), or as the operation's
    final read returned it (its deny assignment still to read)."""

    app: App
    joined: bool


class Writing:
    """Moves each app to its target, up to its operation's success (verification is next)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.gateway = ctx.gateway
        self.settings = ctx.settings
        self.pacer = ctx.pacer
        self.clock = ctx.clock
        self.sleep = ctx.sleep
        self.crash = ctx.crash
        # app id → fingerprint of the app as read right before its latest write (see `_settle`).
        self.baseline: dict[str, str] = {}

    async def fresh(self, item: WorkItem, attempts: int) -> Landed | AppState | None:
        """An app not written yet (pending, or halted by an earlier stop): re-read it, then write.

        The write is admitted (ARM's bucket) before the re-read, so the PUT follows the read at once
        and carries the resource exactly as read and checked."""
        await self.pacer.reserve(item.tenant_id, item.subscription_id, "write")
        try:
            start = await self._start(item)
            if isinstance(start, AppState):
                return start
            before, read = start
            self.baseline[item.app_id] = item.fingerprint
            write = _Write(attempts, before=before, token=None, reconcile=False, unknown=False, base=read)
            del start, read  # `_send` lets go of the read once written: nothing here keeps it alive
            return await self._write(item, write)
        finally:
            # No PUT took the place (none followed the re-read, or the token guard refused it before
            # it left): give it back now rather than hold it for the send grace.
            self.pacer.unused(item.tenant_id, item.subscription_id, "write")

    async def resume(self, item: WorkItem, record: AppRecord) -> Landed | AppState | None:
        """An app journaled as submitted: an operation may be in flight, or the write's answer was lost."""
        token = record.resume_token
        lost = token is None  # journaled as submitted without ARM's answer
        # Died after journaling the intent, before ARM's answer: the first write started from the
        # planned state; a later one from a state this process no longer knows.
        if lost and record.attempts <= 1:
            self.baseline[item.app_id] = item.fingerprint
        return await self._write(
            item, _Write(record.attempts, before=None, token=token, reconcile=lost, unknown=lost)
        )

    async def _start(self, item: WorkItem) -> tuple[BeforeState, AppRead] | AppState:
        """Re-read an app not yet written: what it is on before the write and the read, or the final
        state when it must not be written (gone, another product, or changed since planning)."""
        read = await self.ctx.read_for_update(item)
        if read is None:
            return await self.ctx.gone(item)
        app = read.app
        if item.product is not None and not in_lineage(app.definition_id, item.product):
            why = (
                f"different product: definition {app.definition_id} is not one the target "
                f"replaces ({describe_lineage(item.product)})"
            )
            log.warning("not writing", reason=why)
            return await self.ctx.transition(
                item, AppState.SKIPPED, error_code="DifferentProduct", error_message=why
            )
        if fingerprint(app) != item.fingerprint:
            if already_there(app, item):
                # e.g. a new run of a plan an earlier run completed: nothing to write.
                return await self.ctx.transition(
                    item,
                    AppState.CURRENT,
                    error_message=f"already on the target ({describe(app)})",
                    message="current",
                )
            why = difference(app, item)
            log.warning("stale: not writing", reason=why)
            return await self.ctx.transition(item, AppState.STALE, error_code="Stale", error_message=why)
        return before_state(app), read

    async def _write(self, item: WorkItem, write: _Write) -> Landed | AppState | None:
        """Drive the write until its operation succeeded. Returns the app when known, or a final state.

        `write.token`: an operation to follow first. `write.reconcile`: the outcome of an earlier write
        is unknown, so re-read the app (and wait for it to settle) before deciding to write.

        No layer below re-sends a write (see the gateway's write pipeline); this is the one place that
        decides to write again, and it does so only when `_settle` shows the last write did not land.
        """
        try:
            async for attempt in retrying(
                self.settings.operation_retry,
                sleep=self.sleep,
                retry=_retryable,
                before_sleep=self.ctx.log_retry,
            ):
                with attempt:
                    return await self._write_once(item, write)
        except (OperationFailed, ArmError, NotConverged, _Reconcile) as exc:
            return await self.ctx.fail(item, exc, "upgrade failed")
        raise AssertionError("unreachable: tenacity re-raises or returns")

    async def _write_once(self, item: WorkItem, write: _Write) -> Landed | AppState | None:
        """One attempt: look if the last write's outcome is unknown, write if nothing is in flight,
        follow the operation. Landed or None (the app not known): it succeeded (verify next)."""
        if write.token is None and write.reconcile:
            found = await self._look(item, write, landed="the earlier write landed; verifying")
            if found is not None:
                return found
        if write.token is None:
            # Nothing is in flight and the app is not on the target: write.
            sent = await self._send(item, write)
            if not isinstance(sent, str):
                return sent
            write.token = sent
        try:
            result = await self._follow(item, write.token)
        except (OperationFailed, _Reconcile):
            # The operation is over (or cannot be followed): look before writing again.
            write.token, write.reconcile, write.accepted_at = None, True, None
            raise
        finally:
            self.pacer.operation_ended()
        if write.accepted_at is not None:
            # Seen from here, up to the poll that saw it end (up to one Retry-After late); ARM's own
            # account is exact when it gives one. The shorter: the next head start is never later.
            seen = self.clock() - write.accepted_at
            self.pacer.operation_took(min(seen, result.seconds or seen))
        return Landed(result.app, joined=False) if result.app is not None else None

    async def _send(self, item: WorkItem, write: _Write) -> str | Landed | AppState:
        """Write once. The resume token; or, when the answer was lost, what a look found."""
        write.attempts += 1
        base, write.base = write.base, None  # the read it was admitted with serves this write only
        try:
            token = await self._submit(item, write.attempts, write.before, base)
        except _Reconcile as exc:
            # Look now, even on the last attempt: a write that landed is followed to its end, never
            # failed (or written again) for want of an attempt. Until that look decides, the next
            # attempt must look first too.
            write.reconcile, write.unknown = True, exc.unknown
            found = await self._look(
                item, write, landed="the write landed although its answer was lost; verifying"
            )
            if found is not None:
                return found
            write.reconcile = True  # it did not land: look again before the next write
            raise _Reconcile(f"the write did not land: {exc}") from exc
        write.before = None
        write.accepted_at = self.clock()
        await self.pacer.head_start()  # no polls before it can have ended
        return token

    async def _look(self, item: WorkItem, write: _Write, *, landed: str) -> Landed | AppState | None:
        """`_settle` for a write whose outcome is unknown; once it decided, the next attempt need not."""
        found = await self._settle(item, unknown=write.unknown)
        write.reconcile = write.unknown = False
        if found is None or isinstance(found, AppState):
            return found
        log.info(landed)
        return Landed(found, joined=True)

    async def _submit(
        self, item: WorkItem, attempts: int, before: BeforeState | None, base: AppRead | None
    ) -> str:
        """Journal the intent, PUT, journal the operation. Returns the resume token.

        `base`: the app as re-read and checked, its write admitted before that read (`fresh`); without
        it the gateway reads the resource itself, and each request waits for its admission as sent."""
        await self.ctx.transition(
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
                item.tenant_id,
                item.app_id,
                definition_id=item.to_definition_id,
                plan=item.to_plan,
                base=base,
            )
        except ArmError as exc:
            self.ctx.note_throttle(item, exc)
            if exc.transient:
                # The request may have reached ARM before the answer was lost: never write blind.
                raise _Reconcile(
                    f"the write's outcome is unknown: {exc}", unknown=not _answered_refusal(exc)
                ) from exc
            raise
        structlog.contextvars.bind_contextvars(request_id=submitted.info.request_id)
        await self.ctx.transition(
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

    async def _follow(self, item: WorkItem, token: str) -> OperationResult:
        """Wait for the operation to succeed (with the app as its final read returned it, when the
        gateway has it). OperationFailed: it ended badly; _Reconcile: it cannot be followed; a
        transient ArmError: following failed for now (retry follows the same operation again)."""
        try:
            result = await self.gateway.wait_operation(item.tenant_id, item.app_id, token)
        except ArmError as exc:
            self.ctx.note_throttle(item, exc)
            if not exc.transient and (exc.status in (404, 410) or exc.code == "InvalidResumeToken"):
                raise _Reconcile(f"the operation can no longer be followed: {exc}") from exc
            raise
        if result.info.request_id:
            structlog.contextvars.bind_contextvars(request_id=result.info.request_id)
        if result.status != TERMINAL_SUCCESS:
            raise OperationFailed(result.status, result.error_code, result.error_message, result.info)
        return result

    async def _settle(self, item: WorkItem, *, unknown: bool = False) -> App | AppState | None:
        """Re-read the app and wait until no operation runs on it; decide whether it may be written.

        Returns the app when it is on the target (verify it), a final state (stale, gone), or None:
        write. With `unknown` (the last write's answer was lost) None needs proof that the write did
        not land: the app is idle and exactly as it was before that write, and still so after ARM had
        `write_visibility_seconds` to show the write. An app that changed since, and is not on the
        target, took the write and failed: that is the app's failure, with the cause, not a re-write.
        """
        baseline = self.baseline.get(item.app_id) if unknown else None
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
            found = await self.ctx.read_app(item)
            if found is not None and found.provisioning_state.lower() not in SETTLED_STATES:
                raise NotConverged(
                    f"an operation is still running (provisioning state {found.provisioning_state})"
                )
            return found

        async for attempt in retrying(
            self.settings.settle_retry, sleep=self.sleep, before_sleep=self.ctx.log_retry
        ):
            with attempt:
                app = await read_settled()
        return app

    async def _decide_settled(self, item: WorkItem, app: App | None) -> App | AppState | None:
        if app is None:
            return await self.ctx.gone(item)
        if on_target(app, item):
            if app.provisioning_state == TERMINAL_SUCCESS:
                return app
        elif moved_from_start(app, item) is not None:
            why = difference(app, item)
            return await self.ctx.transition(item, AppState.STALE, error_code="Stale", error_message=why)
        self.baseline[item.app_id] = fingerprint(app)  # what the next write starts from
        return None  # idle, still to be written
