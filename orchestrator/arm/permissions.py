"""What the orchestrator's identity may do on a resource group, as ARM itself reports it.

`ArmGateway.list_permissions` reads the caller's effective role permissions there (ARM's permissions
listing); this module judges them. `doctor` uses it to tell an operator which tenants are writable,
and `plan` (through `writable_resource_groups`) to mark apps it could never update, before `apply`
runs into AuthorizationFailed. Pure over the gateway protocol, so both are tested with the fakes too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.errors import ArmError
from orchestrator.gateway import ArmGateway, PermissionSet
from orchestrator.planning.actions import matches

__all__ = [
    "APPLICATIONS_READ",
    "APPLICATIONS_WRITE",
    "APPLY_ACTIONS",
    "DENY_ASSIGNMENTS_READ",
    "PermissionSet",
    "ResourceGroupAccess",
    "holds",
    "resource_group_access",
    "writable_resource_groups",
]

APPLICATIONS_WRITE = "Microsoft.Solutions/applications/write"
APPLICATIONS_READ = "Microsoft.Solutions/applications/read"
DENY_ASSIGNMENTS_READ = "Microsoft.Authorization/denyAssignments/read"
# What `apply` needs on the resource group that holds an application.
APPLY_ACTIONS = (APPLICATIONS_WRITE, APPLICATIONS_READ, DENY_ASSIGNMENTS_READ)


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


async def resource_group_access(
    gateway: ArmGateway, tenant_id: str, subscription_id: str, resource_group: str
) -> ResourceGroupAccess:
    try:
        perms = await gateway.list_permissions(tenant_id, subscription_id, resource_group)
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
    gateway: ArmGateway,
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
