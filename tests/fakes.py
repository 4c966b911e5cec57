"""An in-memory `ArmGateway` for executor tests: scripted outcomes, counters, and invariant checks.

Definitions map to the exclusions their deny assignment carries. Updates complete when the engine
follows the operation; deny assignments can lag (`converge_after_reads`). The fake records every
write and fails the test (through `violations`) on a write while an operation on that app runs.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from orchestrator.errors import ArmError
from orchestrator.gateway import (
    AppRead,
    CallInfo,
    CallObserver,
    OperationResult,
    PermissionSet,
    Submitted,
)
from orchestrator.models import App, Definition, DenyAssignment, MarketplacePlan, Subscription


class Crash(BaseException):
    """Stands for the process dying at this point (not an Exception, so nothing catches it)."""


@dataclass
class Op:
    app_id: str
    definition_id: str | None
    plan: MarketplacePlan | None
    outcome: str  # "ok" | "fail:<code>" | "cancel"
    done: bool = False


@dataclass
class FakeArm:
    apps: dict[str, App] = field(default_factory=dict)
    # definition id (lower) or "plan:<version>" → (notActions, notDataActions)
    exclusions: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    # Scripted outcomes per app id, consumed one per submit: "ok", "fail:<code>", "cancel",
    # "raise:<status>:<code>" (submit refused), "lost" (write lands, answer lost: transient error),
    # "lost-fail" (lands, answer lost, its operation fails), "unsent" (the connection fails before the
    # write lands: the same transient error), "crash-after-submit" (write accepted, then Crash raised
    # from wait_operation).
    script: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    converge_after_reads: int = 0  # deny-assignment reads at the MRG before an update shows
    never_converge: set[str] = field(default_factory=set)
    # Apps whose MRG shows a second system deny assignment naming them once they were written.
    duplicate_after_write: set[str] = field(default_factory=set)
    # Hook run at the start of every call: (method, app id or scope) → may raise.
    before_call: Callable[[str, str], None] | None = None
    remaining_writes: int | None = None
    # How long each operation ran by ARM's clock, as its final status says (None: ARM does not say).
    operation_seconds: float | None = None
    observer: CallObserver | None = None  # the engine's pacer, told about writes' answers
    # ARM's permissions listing per (subscription, resource group), lower-cased; a group not named
    # holds everything ("*"). An ArmError stands for the listing being refused.
    permissions: dict[tuple[str, str], list[PermissionSet] | ArmError] = field(default_factory=dict)
    # Tenants whose identity gets no token: the error probe_token raises.
    token_errors: dict[str, ArmError] = field(default_factory=dict)

    ops: dict[str, Op] = field(default_factory=dict)
    writes: Counter[str] = field(default_factory=Counter)
    writes_from_read: Counter[str] = field(default_factory=Counter)  # PUTs of a read the engine checked
    reads: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    active: int = 0
    peak_active: int = 0
    active_by_sub: Counter[str] = field(default_factory=Counter)
    peak_by_sub: Counter[str] = field(default_factory=Counter)
    peak_ops: int = 0  # operations accepted and not finished, at most at once
    peak_ops_by_sub: Counter[str] = field(default_factory=Counter)
    _pending_da: dict[str, tuple[int, DenyAssignment | None]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    closed: bool = False

    # -- setup ------------------------------------------------------------------------------------

    def add_app(self, app: App) -> None:
        self.apps[app.id.lower()] = app

    def app(self, app_id: str) -> App:
        return self.apps[app_id.lower()]

    # -- accounting -------------------------------------------------------------------------------

    async def _enter(self, method: str, key: str, subscription: str) -> None:
        if self.before_call is not None:
            self.before_call(method, key)
        self.active += 1
        self.active_by_sub[subscription] += 1
        self.peak_active = max(self.peak_active, self.active)
        self.peak_by_sub[subscription] = max(self.peak_by_sub[subscription], self.active_by_sub[subscription])
        await asyncio.sleep(0)  # let other tasks interleave, so caps are really exercised

    def _leave(self, subscription: str) -> None:
        self.active -= 1
        self.active_by_sub[subscription] -= 1

    def _info(self) -> CallInfo:
        return CallInfo(request_id=f"req-{next(self._ids)}", remaining_writes=self.remaining_writes)

    # -- the gateway ------------------------------------------------------------------------------

    async def list_subscriptions(self, tenant_id: str) -> list[Subscription]:
        subs = {a.subscription_id for a in self.apps.values() if a.tenant_id == tenant_id}
        return [Subscription(id=s, tenant_id=tenant_id) for s in sorted(subs)]

    async def list_applications(self, tenant_id: str, subscription_id: str) -> list[App]:
        return [a for a in self.apps.values() if a.subscription_id == subscription_id]

    async def list_deny_assignments(self, tenant_id: str, subscription_id: str) -> list[DenyAssignment]:
        return [
            a.deny_assignment
            for a in self.apps.values()
            if a.subscription_id == subscription_id and a.deny_assignment
        ]

    async def list_deny_assignments_at(self, tenant_id: str, scope: str) -> list[DenyAssignment]:
        app = next(a for a in self.apps.values() if a.managed_resource_group_id.lower() == scope.lower())
        await self._enter("list_deny_assignments_at", scope, app.subscription_id)
        await self._tell_read(tenant_id, app.subscription_id)
        try:
            self.reads[app.id.lower()] += 1
            key = app.id.lower()
            if key in self._pending_da:
                left, new = self._pending_da[key]
                if left <= 0 and key not in self.never_converge:
                    del self._pending_da[key]
                    self.apps[key] = app = app.model_copy(update={"deny_assignment": new})
                else:
                    self._pending_da[key] = (left - 1, new)
            decoy = DenyAssignment(
                id=f"{scope}/providers/Microsoft.Authorization/denyAssignments/user",
                name="user",
                scope=scope,
                description="a user's own deny assignment",
                actions=("*",),
                is_system_protected=False,
            )
            found = [app.deny_assignment] if app.deny_assignment else []
            if key in self.duplicate_after_write and self.writes[key] and app.deny_assignment:
                twin = app.deny_assignment.model_copy(update={"id": app.deny_assignment.id + "-twin"})
                found.append(twin)
            return [decoy, *found]
        finally:
            self._leave(app.subscription_id)

    async def get_definition(self, tenant_id: str, definition_id: str) -> Definition:
        raise NotImplementedError

    async def get_application(self, tenant_id: str, app_id: str) -> App | None:
        app = self.apps.get(app_id.lower())
        if app is None:
            return None
        await self._enter("get_application", app_id, app.subscription_id)
        await self._tell_read(tenant_id, app.subscription_id)
        try:
            if app.tenant_id != tenant_id:
                raise ArmError("wrong tenant", status=403, code="InvalidAuthenticationTokenTenant")
            self.reads[app_id.lower()] += 1
            return self.apps[app_id.lower()].model_copy(update={"deny_assignment": None})
        finally:
            self._leave(app.subscription_id)

    async def read_for_update(self, tenant_id: str, app_id: str) -> AppRead | None:
        # Through get_application, so tests that wrap it see these reads too.
        app = await self.get_application(tenant_id, app_id)
        return AppRead(app, body=("fake", app_id.lower())) if app is not None else None

    async def submit_upgrade(
        self,
        tenant_id: str,
        app_id: str,
        *,
        definition_id: str | None,
        plan: MarketplacePlan | None,
        base: AppRead | None = None,
    ) -> Submitted:
        key = app_id.lower()
        app = self.apps[key]
        if base is not None:
            if base.body != ("fake", key):
                self.violations.append(f"wrote {app_id} from a read of another app: {base.body}")
            self.writes_from_read[key] += 1
        await self._enter("submit_upgrade", app_id, app.subscription_id)
        answer: tuple[int, CallInfo] | None = None  # once the PUT left: its status (0: no answer)
        try:
            if app.tenant_id != tenant_id:
                raise ArmError("wrong tenant", status=403, code="InvalidAuthenticationTokenTenant")
            script = self.script[key]
            outcome = script.pop(0) if script else "ok"
            if outcome == "unsent":
                raise ArmError("connection reset", code="ConnectionError", transient=True)
            # As the real gateway: the PUT leaves once the observer (the pacer) lets it go.
            if self.observer is not None:
                await self.observer.sending(tenant_id, app.subscription_id, "PUT")
            answer = (0, CallInfo())
            if outcome.startswith("raise:"):
                _, status, code = outcome.split(":")
                self.writes[key] += 0  # refused before anything was accepted
                answer = (int(status), CallInfo())
                raise ArmError(
                    f"HTTP {status} {code}", status=int(status), code=code, transient=int(status) >= 500
                )
            op_running = any(not op.done and op.app_id == key for op in self.ops.values())
            if op_running:
                self.violations.append(f"write to {app_id} while its operation was in flight")
            self.writes[key] += 1
            op_id = f"op-{next(self._ids)}"
            lost = {"lost": "ok", "lost-fail": "fail:InternalServerError"}
            self.ops[op_id] = Op(key, definition_id, plan, lost.get(outcome, outcome))
            self.apps[key] = app.model_copy(update={"provisioning_state": "Updating"})
            running = [self.apps[op.app_id].subscription_id for op in self.ops.values() if not op.done]
            self.peak_ops = max(self.peak_ops, len(running))
            sub = app.subscription_id
            self.peak_ops_by_sub[sub] = max(self.peak_ops_by_sub[sub], running.count(sub))
            if outcome in lost:
                raise ArmError("connection reset after sending", code="ConnectionError", transient=True)
            info = self._info()
            answer = (201, info)
            return Submitted(
                operation_url=f"https://arm.test/operations/{op_id}", resume_token=op_id, info=info
            )
        finally:
            if answer is not None and self.observer is not None:
                self.observer.observe_response(tenant_id, app.subscription_id, "PUT", *answer)
            self._leave(app.subscription_id)

    async def wait_operation(self, tenant_id: str, app_id: str, resume_token: str) -> OperationResult:
        op = self.ops.get(resume_token)
        if op is None:
            raise ArmError("no such operation", status=404, code="NotFound")
        if op.app_id != app_id.lower():
            self.violations.append(f"followed {resume_token} (on {op.app_id}) as an operation on {app_id}")
        app = self.apps[op.app_id]
        await self._enter("wait_operation", op.app_id, app.subscription_id)
        await self._tell_read(tenant_id, app.subscription_id)  # the poll
        await self._tell_read(tenant_id, app.subscription_id)  # the poller's final read
        try:
            if op.outcome == "crash-after-submit":
                op.outcome = "ok"
                raise Crash(f"crash while following {resume_token}")
            self.finish(resume_token)
            if op.outcome == "ok":
                final = self.apps[op.app_id].model_copy(update={"deny_assignment": None})
                return OperationResult(
                    status="Succeeded", info=self._info(), app=final, seconds=self.operation_seconds
                )
            if op.outcome == "cancel":
                return OperationResult(status="Canceled", info=self._info())
            code = op.outcome.split(":", 1)[1]
            return OperationResult(
                status="Failed", error_code=code, error_message=f"{code} happened", info=self._info()
            )
        finally:
            self._leave(app.subscription_id)

    async def probe_token(self, tenant_id: str) -> str:
        if tenant_id in self.token_errors:
            raise self.token_errors[tenant_id]
        return "secret"

    async def list_permissions(
        self, tenant_id: str, subscription_id: str, resource_group: str
    ) -> list[PermissionSet]:
        self.reads[f"permissions:{subscription_id}/{resource_group}".lower()] += 1
        found = self.permissions.get((subscription_id.lower(), resource_group.lower()))
        if isinstance(found, ArmError):
            raise found
        return [PermissionSet(actions=("*",))] if found is None else found

    def finish(self, op_id: str) -> None:
        """Complete an operation (as ARM would on its own, even while nobody follows it)."""
        op = self.ops[op_id]
        if op.done:
            return
        op.done = True
        app = self.apps[op.app_id]
        if op.outcome != "ok":
            self.apps[op.app_id] = app.model_copy(update={"provisioning_state": "Failed"})
            return
        updates: dict[str, object] = {"provisioning_state": "Succeeded"}
        if op.definition_id is not None:
            updates["definition_id"] = op.definition_id
            key = op.definition_id.lower()
        else:
            assert op.plan is not None and app.plan is not None
            updates["plan"] = app.plan.model_copy(update={"version": op.plan.version})
            key = f"plan:{op.plan.version}"
        not_actions, not_data_actions = self.exclusions[key]
        self.apps[op.app_id] = app.model_copy(update=updates)
        new = (
            app.deny_assignment.model_copy(
                update={"not_actions": not_actions, "not_data_actions": not_data_actions}
            )
            if app.deny_assignment
            else None
        )
        if self.converge_after_reads or op.app_id in self.never_converge:
            self._pending_da[op.app_id] = (self.converge_after_reads, new)
        else:
            self.apps[op.app_id] = self.apps[op.app_id].model_copy(update={"deny_assignment": new})

    def allow_app_reads(self, tenant_id: str, app_ids: Iterable[str]) -> None:
        pass  # the fake has no token guard

    def observe_calls(self, observer: CallObserver | None) -> None:
        self.observer = observer

    async def _tell_read(self, tenant_id: str, subscription_id: str) -> None:
        """A read's request, let go when the observer says so, and its answer, which (like ARM's to
        most reads here) carries no count."""
        if self.observer is not None:
            await self.observer.sending(tenant_id, subscription_id, "GET")
            self.observer.observe_response(tenant_id, subscription_id, "GET", 200, CallInfo())

    async def close(self) -> None:
        self.closed = True
