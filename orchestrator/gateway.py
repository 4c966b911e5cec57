"""The one seam between the orchestrator's logic and Azure.

`orchestrator.arm.AzureGateway` implements it with the real async SDK clients; tests of pure-ish
orchestration (executor scheduling, resume) can implement it in memory. Everything crossing it is a
value object from `orchestrator.models`, never an SDK type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.models import App, CallInfo, Definition, DenyAssignment, MarketplacePlan, Subscription


class CallObserver(Protocol):
    """Asked before every HTTP request to ARM leaves and told its answer (transport retries and
    operation polls included), as (tenant id, subscription id or None, HTTP method[, status, what the
    headers said]). The executor's pacer holds requests back while its mirror of ARM's buckets is
    dry, follows ARM's rate-limit headers and pushback, and counts the requests still unanswered
    against what ARM last said was left."""

    async def sending(self, tenant_id: str, subscription_id: str | None, method: str) -> None:
        """Returns when the request may leave; from then on it counts as sent."""
        ...

    def observe_response(
        self, tenant_id: str, subscription_id: str | None, method: str, status: int, info: CallInfo
    ) -> None:
        """The answer to a request `sending` let go; status 0: none came (the connection failed, the
        call was cancelled), and `info` is empty."""
        ...


@dataclass(frozen=True)
class Submitted:
    """A write ARM accepted. `resume_token` re-attaches to the operation after a crash."""

    operation_url: str | None  # Azure-AsyncOperation (or Location) URL
    resume_token: str  # opaque to all but the gateway that made it (carries no credentials)
    info: CallInfo


@dataclass(frozen=True)
class OperationResult:
    status: str  # "Succeeded" | "Failed" | "Canceled"
    error_code: str | None = None
    error_message: str | None = None
    info: CallInfo = field(default_factory=CallInfo)
    # Succeeded: the application as the operation's final read returned it (no deny assignment
    # joined), when the implementation has it; saves the executor a read of its own.
    app: App | None = None
    # How long the operation ran by ARM's own clock (its status's end - start), when ARM said.
    seconds: float | None = None


@dataclass(frozen=True)
class AppRead:
    """An application as read (no deny assignment joined), with the resource body a write built from
    this read starts from: opaque to all but the gateway that read it."""

    app: App
    body: object


@dataclass(frozen=True)
class PermissionSet:
    """One entry of ARM's permissions listing: what a role assignment grants (actions minus notActions)."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()


class ArmGateway(Protocol):
    """Async, tenant-scoped access to the ARM operations the orchestrator uses.

    Every method takes the tenant id whose credential must be used; an implementation never uses a
    credential for another tenant's subscriptions.
    """

    async def list_subscriptions(self, tenant_id: str) -> list[Subscription]: ...

    async def list_applications(self, tenant_id: str, subscription_id: str) -> list[App]:
        """Every application in the subscription (paged), without deny assignments joined."""
        ...

    async def list_deny_assignments(self, tenant_id: str, subscription_id: str) -> list[DenyAssignment]:
        """Every deny assignment in the subscription, one paged listing."""
        ...

    async def list_deny_assignments_at(self, tenant_id: str, scope: str) -> list[DenyAssignment]:
        """Deny assignments at a scope (e.g. one managed resource group), for verification."""
        ...

    async def get_definition(self, tenant_id: str, definition_id: str) -> Definition: ...

    async def get_application(self, tenant_id: str, app_id: str) -> App | None:
        """The application as it is now, or None when it no longer exists."""
        ...

    async def read_for_update(self, tenant_id: str, app_id: str) -> AppRead | None:
        """`get_application`, keeping the resource as read for `submit_upgrade(base=...)`."""
        ...

    def allow_app_reads(self, tenant_id: str, app_ids: Iterable[str]) -> None:
        """Ids the notification registry learned for this customer: readable by id on its by-id paths,
        like the ids its application list names. Reads only: writes there stay refused."""
        ...

    async def submit_upgrade(
        self,
        tenant_id: str,
        app_id: str,
        *,
        definition_id: str | None,
        plan: MarketplacePlan | None,
        base: AppRead | None = None,
    ) -> Submitted:
        """PUT the full resource back pointing at the new definition or plan version: `base`'s body
        (the resource exactly as read and checked) when given, else the resource re-read now."""
        ...

    async def wait_operation(self, tenant_id: str, app_id: str, resume_token: str) -> OperationResult:
        """Follow the operation `submit_upgrade` started on `app_id` to its end (honouring Retry-After).

        `resume_token` is `Submitted.resume_token`, handed back as is: only the implementation that
        made it reads it."""
        ...

    async def probe_token(self, tenant_id: str) -> str:
        """Get an ARM token with the identity the tenant is read with; the credential's kind (e.g.
        "secret") when one came, else `ArmError` (code AuthenticationFailed or a transport error)."""
        ...

    async def list_permissions(
        self, tenant_id: str, subscription_id: str, resource_group: str
    ) -> list[PermissionSet]:
        """The identity's effective permissions on a resource group, as ARM reports them (paged)."""
        ...

    def observe_calls(self, observer: CallObserver | None) -> None:
        """From now on every request waits for `observer` before it leaves, and its answer is told to
        it (None: stop)."""
        ...

    async def close(self) -> None: ...


__all__ = [
    "AppRead",
    "ArmGateway",
    "CallInfo",
    "CallObserver",
    "OperationResult",
    "PermissionSet",
    "Submitted",
]
