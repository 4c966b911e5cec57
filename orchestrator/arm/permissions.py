"""What the orchestrator's identity may do on a resource group, as ARM itself reports it.

`GET .../resourceGroups/{rg}/providers/Microsoft.Authorization/permissions` (api 2022-04-01) returns the
caller's effective role permissions there. `doctor` uses it to tell an operator which tenants are
writable, and `plan` (through `writable_resource_groups`) to mark apps it could never update, before
`apply` runs into AuthorizationFailed.

The clients are the gateway's own (tenant-bound credential, shared transport, retry settings), so a
credential is never used outside its tenant here either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.arm.credentials import TenantCredential
from orchestrator.arm.errors import to_arm_error
from orchestrator.arm.gateway import AzureGateway
from orchestrator.gateway import ArmError
from orchestrator.planning.actions import matches

APPLICATIONS_WRITE = "Microsoft.Solutions/applications/write"
APPLICATIONS_READ = "Microsoft.Solutions/applications/read"
DENY_ASSIGNMENTS_READ = "Microsoft.Authorization/denyAssignments/read"
# What `apply` needs on the resource group that holds an application.
APPLY_ACTIONS = (APPLICATIONS_WRITE, APPLICATIONS_READ, DENY_ASSIGNMENTS_READ)


@dataclass(frozen=True)
class PermissionSet:
    """One entry of the permissions listing: what a role assignment grants (actions minus notActions)."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()


def holds(permissions: Iterable[PermissionSet], action: str) -> bool:
    """Whether any entry grants `action`: Azure unions the entries, each being actions minus notActions."""
    return any(
        any(matches(a, action) for a in p.actions) and not any(matches(n, action) for n in p.not_actions)
        for p in permissions
    )


@dataclass(frozen=True)
class ResourceGroupAccess:
    """The identity's standing on one resource group; `None` means it could not be checked."""

    subscription_id: str
    resource_group: str
    can_write: bool | None
    can_read: bool | None
    can_read_deny_assignments: bool | None
    error: str | None = None  # why it could not be checked (one line, no secrets)

    @property
    def missing(self) -> tuple[str, ...]:
        flags = (self.can_write, self.can_read, self.can_read_deny_assignments)
        return tuple(action for action, ok in zip(APPLY_ACTIONS, flags, strict=True) if ok is False)


async def list_permissions_for_resource_group(
    gateway: AzureGateway, tenant_id: str, subscription_id: str, resource_group: str
) -> list[PermissionSet]:
    """The caller's permissions on a resource group (paged); `ArmError` when ARM refuses or fails."""
    # The gateway's cached per-subscription Authorization client: same credential, transport, retries,
    # once its token guard confirmed the subscription.
    await gateway.claim(tenant_id, subscription_id)
    client = gateway.authz_client(tenant_id, subscription_id)
    return await gateway.collect(
        f"list permissions on resource group {resource_group} in subscription {subscription_id}",
        lambda: client.permissions.list_for_resource_group(resource_group),
        _to_permission_set,
    )


async def resource_group_access(
    gateway: AzureGateway, tenant_id: str, subscription_id: str, resource_group: str
) -> ResourceGroupAccess:
    try:
        perms = await list_permissions_for_resource_group(gateway, tenant_id, subscription_id, resource_group)
    except ArmError as exc:
        return ResourceGroupAccess(subscription_id, resource_group, None, None, None, error=str(exc))
    return ResourceGroupAccess(
        subscription_id,
        resource_group,
        can_write=holds(perms, APPLICATIONS_WRITE),
        can_read=holds(perms, APPLICATIONS_READ),
        can_read_deny_assignments=holds(perms, DENY_ASSIGNMENTS_READ),
    )


async def writable_resource_groups(
    gateway: AzureGateway,
    tenant_id: str,
    resource_groups: Iterable[tuple[str, str]],
    *,
    concurrency: int = 8,
) -> dict[tuple[str, str], ResourceGroupAccess]:
    """Access per (subscription id, resource group), keys lower-cased; one listing per distinct group.

    `can_write is False`: apply would be refused there (mark the apps "no write access");
    `can_write is None`: it could not be checked (`error` says why); don't guess either way.
    """
    keys = sorted({(sub.lower(), rg.lower()) for sub, rg in resource_groups})
    gate = asyncio.Semaphore(concurrency)

    async def one(sub: str, rg: str) -> ResourceGroupAccess:
        async with gate:
            return await resource_group_access(gateway, tenant_id, sub, rg)

    results = await asyncio.gather(*(one(sub, rg) for sub, rg in keys))
    return dict(zip(keys, results, strict=True))


async def probe_token(credential: TenantCredential, scope: str) -> None:
    """Ask for an ARM token; `ArmError` (code AuthenticationFailed or a transport error) when none comes."""
    try:
        await credential.get_token(scope)
    except Exception as exc:
        raise to_arm_error(exc, f"get a token for tenant {credential.tenant_id}") from None


def _to_permission_set(model: Any) -> PermissionSet:
    return PermissionSet(
        actions=tuple(model.actions or ()),
        not_actions=tuple(model.not_actions or ()),
    )
