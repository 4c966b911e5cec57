"""Reading applications by id: the notification registry's ids and the customers' application lists
(publisher and customer-run paths), each app joined with the system deny assignment at its MRG.

The one by-id reader serves the inventory, `verify` and `doctor`; `choose_source` is the one choice of
where app ids come from for every command that inventories.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal, TypeVar

from orchestrator.errors import ArmError, InputError
from orchestrator.gateway import ArmGateway
from orchestrator.models import App, RegistryMiss
from orchestrator.notifications.registry import Instance, Registry
from orchestrator.planning.derive import match_system_deny_assignment

T = TypeVar("T")
# Where app ids come from: ARM listings per subscription, the notification registry (read by id), or both.
Source = Literal["arm", "registry", "both"]


class Limits:
    """Optional bounds on ARM calls at once: global and per tenant (None: ARM's own pacing)."""

    def __init__(self, concurrency: int | None, per_tenant: int | None) -> None:
        self._global = asyncio.Semaphore(concurrency) if concurrency else None
        self._per_tenant_limit = per_tenant
        self._tenant: dict[str, asyncio.Semaphore] = {}

    async def run(self, tenant_id: str, call: Callable[[], Awaitable[T]]) -> T:
        if self._per_tenant_limit is None and self._global is None:
            return await call()
        async with contextlib.AsyncExitStack() as stack:
            if self._per_tenant_limit is not None:
                key = tenant_id.lower()
                sem = self._tenant.setdefault(key, asyncio.Semaphore(self._per_tenant_limit))
                await stack.enter_async_context(sem)
            if self._global is not None:
                await stack.enter_async_context(self._global)
            return await call()


def choose_source(source: Source | None, journal: Path) -> tuple[Source, list[Instance]]:
    """Where app ids come from, one choice for every command that inventories (inventory, plan,
    explain): `source`, else both when the journal's file holds a notification registry, else arm;
    with the registry's instances."""
    if source == "arm":
        return source, []
    registry = Registry.existing(journal)
    if registry is None:
        if source is None:
            return "arm", []
        raise InputError(f"--source {source}: {journal} holds no notification registry")
    with registry:
        return source or "both", registry.instances()


def registry_app_ids(
    instances: Iterable[Instance], owner: Mapping[str, str]
) -> tuple[dict[str, list[str]], list[RegistryMiss]]:
    """The registry's live apps grouped by the configured tenant that owns their subscription (`owner`:
    lower-cased subscription id → tenant id), and the entries no tenant can read. Deleted apps drop out.

    Join point with the by-id reading of per-customer app lists: this is the registry's list of ids.
    """
    by_tenant: dict[str, list[str]] = {}
    misses: list[RegistryMiss] = []
    for inst in instances:
        if inst.deleted:
            continue
        tenant = owner.get(inst.subscription_id.lower())
        if tenant is None:
            misses.append(
                RegistryMiss(
                    app_id=inst.app_id,
                    cause=f"no configured tenant owns subscription {inst.subscription_id} "
                    "(list it under its tenant's subscriptions)",
                )
            )
            continue
        by_tenant.setdefault(tenant, []).append(inst.app_id)
    return by_tenant, misses


async def read_apps_by_id(
    gateway: ArmGateway, limits: Limits | None, tenant_id: str, app_ids: Iterable[str]
) -> tuple[list[App], list[RegistryMiss]]:
    """Each app by id, joined with the system deny assignment read at its managed resource group.

    The one by-id reader: the notification registry's ids, the publisher and customer-run customers'
    application lists (read with the publisher identity: its MRG through the app's authorizations),
    `verify` and `doctor`. `limits`: the inventory's concurrency bounds, or None (unbounded)."""
    limits = limits or Limits(None, None)

    async def one(app_id: str) -> App | RegistryMiss:
        try:
            app = await limits.run(tenant_id, lambda: gateway.get_application(tenant_id, app_id))
            if app is None:
                return RegistryMiss(app_id=app_id, cause="not found (deleted since its last event?)")
            mrg = app.managed_resource_group_id
            deny = await limits.run(tenant_id, lambda: gateway.list_deny_assignments_at(tenant_id, mrg))
        except ArmError as exc:
            return RegistryMiss(app_id=app_id, cause=str(exc))
        chosen = match_system_deny_assignment(app.id, mrg, deny)
        return app.model_copy(
            update={"deny_assignment": chosen.found, "deny_assignment_problem": chosen.problem}
        )

    results = await asyncio.gather(*(one(app_id) for app_id in app_ids))
    return (
        [r for r in results if isinstance(r, App)],
        [r for r in results if isinstance(r, RegistryMiss)],
    )
