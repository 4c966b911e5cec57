"""Collect the inventory: read the fleet through an `ArmGateway` into a `Snapshot`.

Cost is per subscription, not per app: one (paged) application listing and one deny-assignment listing
per subscription, each distinct definition read once, joined locally. All calls run concurrently; a
global and a per-tenant bound apply only when the user sets them (otherwise ARM's read buckets pace
the calls: the transport waits out each 429's Retry-After). A tenant that fails is recorded with its
cause on `TenantInventory.error`; the others continue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orchestrator.config import WRITING_PATHS, CustomerConfig, FleetConfig
from orchestrator.errors import ArmError
from orchestrator.gateway import ArmGateway
from orchestrator.inventory.by_id import Limits, Source, read_apps_by_id, registry_app_ids
from orchestrator.models import (
    App,
    Definition,
    DenyAssignment,
    RegistryMiss,
    Snapshot,
    Subscription,
    TenantInventory,
)
from orchestrator.notifications.registry import Instance
from orchestrator.planning.derive import match_system_deny_assignment

# Subscription states in which ARM serves reads (Disabled/Deleted subscriptions refuse them).
_READABLE_STATES = frozenset({"enabled", "warned", "pastdue"})
# Errors after which further calls with the same tenant credential are pointless.
_FATAL_CODES = frozenset({"authenticationfailed", "wrongtenant", "unknowntenant"})


@dataclass(frozen=True)
class InventoryProgress:
    """Counts so far; `subscriptions_total` grows as tenants' subscriptions are listed."""

    tenants_done: int
    tenants_total: int
    subscriptions_done: int
    subscriptions_total: int
    apps: int


ProgressCallback = Callable[[InventoryProgress], None]


@dataclass
class _TenantRun:
    config: CustomerConfig
    subscriptions: list[Subscription] = field(default_factory=list)
    apps: list[App] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fatal: bool = False

    def fail(self, cause: str, *, fatal: bool = False) -> None:
        self.errors.append(cause)
        self.fatal = self.fatal or fatal

    @property
    def error(self) -> str | None:
        if not self.errors:
            return None
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return self.errors[0] + more


class _Counter:
    def __init__(self, tenants: int, progress: ProgressCallback | None) -> None:
        self.tenants_total = tenants
        self.tenants_done = 0
        self.subs_total = 0
        self.subs_done = 0
        self.apps = 0
        self._progress = progress

    def report(self) -> None:
        if self._progress is not None:
            self._progress(
                InventoryProgress(
                    self.tenants_done, self.tenants_total, self.subs_done, self.subs_total, self.apps
                )
            )


class _Definitions:
    """Each distinct definition read once, with the credential of the tenant owning its subscription
    (the publisher's, when it is configured), started as soon as an app names it."""

    def __init__(self, gateway: ArmGateway, limits: Limits, owner: Mapping[str, str]) -> None:
        self._gateway = gateway
        self._limits = limits
        self._owner = owner
        self._tasks: dict[str, asyncio.Task[Definition | None]] = {}
        self.errors: dict[str, str] = {}

    def of(self, app: App) -> None:
        if not app.definition_id or app.definition_id.lower() in self._tasks:
            return
        def_sub = _subscription_of(app.definition_id)
        reader = self._owner.get(def_sub.lower(), app.tenant_id) if def_sub else app.tenant_id
        self._tasks[app.definition_id.lower()] = asyncio.create_task(
            _read_definition(self._gateway, self._limits, reader, app.definition_id, self.errors)
        )

    async def resolved(self) -> dict[str, Definition]:
        return {key: found for key, task in self._tasks.items() if (found := await task) is not None}


async def collect_snapshot(
    config: FleetConfig,
    gateway: ArmGateway,
    *,
    concurrency: int | None = None,
    per_tenant: int | None = None,
    progress: ProgressCallback | None = None,
    source: Source = "arm",
    registry: Iterable[Instance] = (),
) -> Snapshot:
    """Read every configured tenant. Never raises for a tenant's failure: it lands on that tenant.

    With `source` "registry" or "both", the apps the notification `registry` knows (and not deleted)
    that no listing found are read by id with the credential of the tenant owning their subscription.
    `concurrency` / `per_tenant`: optional limits on calls at once (None: no limit of our own).
    """
    taken_at = datetime.now(UTC)
    limits = Limits(max(1, concurrency) if concurrency else None, max(1, per_tenant) if per_tenant else None)
    customers = config.customer_list
    counter = _Counter(len(customers), progress)
    runs = [_TenantRun(customer) for customer in customers]

    # Phase 1: every tenant's subscriptions, so that a definition living in another configured
    # tenant's subscription (the publisher's) is read with that tenant's credential.
    await asyncio.gather(*(_list_subscriptions(run, gateway, limits, counter) for run in runs))
    owner = {sub.id.lower(): run.config.id for run in runs for sub in run.subscriptions}
    definitions = _Definitions(gateway, limits, owner)

    # Phase 2: per subscription, apps and deny assignments side by side; definitions start as apps arrive.
    # The customers' own application lists (publisher, customer-run) are read by id in every mode.
    listings = source != "registry"
    await asyncio.gather(
        *(_read_tenant(run, gateway, limits, counter, definitions.of, listings) for run in runs)
    )
    listed = sum(len(run.apps) for run in runs)
    # Phase 3: what the registry knows and no listing found, by id.
    misses: list[RegistryMiss] = []
    if source != "arm":
        misses = await _read_registry_apps(runs, registry, owner, gateway, limits, definitions.of)
    resolved = await definitions.resolved()
    tenants, apps = _join(runs, resolved, definitions.errors)
    sources = {"arm": listed} if source == "arm" else {"arm": listed, "registry": len(apps) - listed}
    return Snapshot(
        taken_at=taken_at,
        tenants=tuple(tenants),
        apps=tuple(apps),
        definitions=resolved,
        sources=sources,
        registry_misses=tuple(sorted(misses, key=lambda m: m.app_id.lower())),
    )


async def _read_registry_apps(
    runs: list[_TenantRun],
    registry: Iterable[Instance],
    owner: Mapping[str, str],
    gateway: ArmGateway,
    limits: Limits,
    definition_of: Callable[[App], object],
) -> list[RegistryMiss]:
    """Read by id the registry's apps that no listing found, each with its owning tenant's credential
    (the registry vouches for the id, as a customer's application list does); the entries not read."""
    found = {app.id.lower() for run in runs for app in run.apps}
    by_tenant, misses = registry_app_ids((i for i in registry if i.app_id.lower() not in found), owner)
    by_id = {run.config.id: run for run in runs}
    for tenant_id, ids in by_tenant.items():
        gateway.allow_app_reads(tenant_id, ids)
    results = await asyncio.gather(
        *(read_apps_by_id(gateway, limits, tenant_id, ids) for tenant_id, ids in by_tenant.items())
    )
    for tenant_id, (apps_read, missed) in zip(by_tenant, results, strict=True):
        for app in apps_read:
            definition_of(app)
        by_id[tenant_id].apps.extend(apps_read)
        misses.extend(missed)
    return misses


def _join(
    runs: list[_TenantRun], resolved: Mapping[str, Definition], definition_errors: Mapping[str, str]
) -> tuple[list[TenantInventory], list[App]]:
    """Each tenant's inventory and every app with its path and its definition's lock level."""
    tenants: list[TenantInventory] = []
    apps: list[App] = []
    for run in runs:
        explained: set[str] = set()
        for app in run.apps:
            key = (app.definition_id or "").lower()
            if key in definition_errors and key not in explained:
                run.fail(f"definition {app.definition_id}: {definition_errors[key]}")
                explained.add(key)
            definition = resolved.get(key)
            update: dict[str, object] = {"path": run.config.route(app.subscription_id)[0]}
            if definition:
                update["lock_level"] = definition.lock_level
            apps.append(app.model_copy(update=update))
        tenants.append(
            TenantInventory(
                tenant_id=run.config.id,
                display_name=run.config.display_name,
                ring=run.config.ring,
                tags=dict(run.config.tags),
                subscriptions=tuple(run.subscriptions),
                error=run.error,
            )
        )
    apps.sort(key=lambda a: (a.tenant_id.lower(), a.subscription_id.lower(), a.id.lower()))
    return tenants, apps


def _listed(customer: CustomerConfig, subscription_id: str) -> bool:
    """Whether the subscription's apps come from listing it (the paths that write), not from ids."""
    return customer.route(subscription_id)[0] in WRITING_PATHS


async def _list_subscriptions(
    run: _TenantRun, gateway: ArmGateway, limits: Limits, counter: _Counter
) -> None:
    tenant = run.config
    if tenant.subscriptions != "all":
        run.subscriptions = [Subscription(id=sub, tenant_id=tenant.id) for sub in tenant.subscriptions]
    elif tenant.paths & WRITING_PATHS:
        try:
            run.subscriptions = await limits.run(tenant.id, lambda: gateway.list_subscriptions(tenant.id))
        except ArmError as exc:
            run.fail(f"cannot list subscriptions: {exc}", fatal=True)
    run.subscriptions = [s for s in run.subscriptions if _listed(tenant, s.id)]
    # Subscriptions reached by id only: the ones the customer's application list names.
    known = {s.id.lower() for s in run.subscriptions}
    for app_id in tenant.app_ids:
        sub = app_id.split("/")[2]
        if sub.lower() not in known and not _listed(tenant, sub):
            known.add(sub.lower())
            run.subscriptions.append(Subscription(id=sub, tenant_id=tenant.id))
    counter.subs_total += sum(1 for s in run.subscriptions if _readable(s))
    counter.report()


async def _read_tenant(
    run: _TenantRun,
    gateway: ArmGateway,
    limits: Limits,
    counter: _Counter,
    definition_of: Callable[[App], object],
    listings: bool = True,
) -> None:
    customer = run.config
    subs = [s for s in run.subscriptions if listings and _readable(s) and _listed(customer, s.id)]
    by_id = [a for a in customer.app_ids if not _listed(customer, a.split("/")[2])]
    await asyncio.gather(
        *(_read_subscription(run, sub, gateway, limits, counter, definition_of) for sub in subs),
        _read_listed_apps(run, by_id, gateway, limits, counter, definition_of),
    )
    counter.tenants_done += 1
    counter.report()


async def _read_listed_apps(
    run: _TenantRun,
    app_ids: list[str],
    gateway: ArmGateway,
    limits: Limits,
    counter: _Counter,
    definition_of: Callable[[App], object],
) -> None:
    if not app_ids:
        return
    apps, misses = await read_apps_by_id(gateway, limits, run.config.id, app_ids)
    for miss in misses:
        run.fail(f"application {miss.app_id}: {miss.cause}")
    for app in apps:
        definition_of(app)
    run.apps.extend(apps)
    counter.apps += len(apps)
    counter.subs_done += len({a.split("/")[2].lower() for a in app_ids})
    counter.report()


async def _read_subscription(
    run: _TenantRun,
    sub: Subscription,
    gateway: ArmGateway,
    limits: Limits,
    counter: _Counter,
    definition_of: Callable[[App], object],
) -> None:
    tenant_id = run.config.id
    try:
        if run.fatal:
            return  # the credential already failed; do not hammer the token endpoint
        apps_task = asyncio.ensure_future(
            limits.run(tenant_id, lambda: gateway.list_applications(tenant_id, sub.id))
        )
        deny_task = asyncio.ensure_future(
            limits.run(tenant_id, lambda: gateway.list_deny_assignments(tenant_id, sub.id))
        )
        try:
            apps = await apps_task
        except BaseException:
            deny_task.cancel()
            await asyncio.gather(deny_task, return_exceptions=True)
            raise
        for app in apps:
            definition_of(app)
        # Without the deny assignments an app would look unprotected: the subscription fails whole.
        deny = await deny_task
    except ArmError as exc:
        fatal = (exc.code or "").lower() in _FATAL_CODES or exc.status == 401
        if not (run.fatal and fatal):
            run.fail(f"subscription {sub.id}: {exc}", fatal=fatal)
        return
    finally:
        counter.subs_done += 1
        counter.report()
    by_scope: dict[str, list[DenyAssignment]] = {}
    for assignment in deny:
        by_scope.setdefault(_scope_key(assignment.scope), []).append(assignment)
    for app in apps:
        candidates = by_scope.get(_scope_key(app.managed_resource_group_id), [])
        chosen = match_system_deny_assignment(app.id, app.managed_resource_group_id, candidates)
        run.apps.append(
            app.model_copy(
                update={"deny_assignment": chosen.found, "deny_assignment_problem": chosen.problem}
            )
        )
    counter.apps += len(apps)


async def _read_definition(
    gateway: ArmGateway, limits: Limits, tenant_id: str, definition_id: str, errors: dict[str, str]
) -> Definition | None:
    try:
        return await limits.run(tenant_id, lambda: gateway.get_definition(tenant_id, definition_id))
    except ArmError as exc:
        errors[definition_id.lower()] = str(exc)
        return None


def _readable(sub: Subscription) -> bool:
    return sub.state.replace(" ", "").lower() in _READABLE_STATES


def _scope_key(scope: str) -> str:
    return scope.strip().rstrip("/").casefold()


def _subscription_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "subscriptions":
            return parts[i + 1]
    return None
