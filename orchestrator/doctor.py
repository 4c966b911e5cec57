"""`doctor`: can the orchestrator do its job in each tenant, and if not, what to change.

Per tenant, in order (a failed step stops the ones that depend on it):
token → subscriptions → applications and deny assignments (read) → write access on each resource group
holding an application (ARM's permissions listing). The verdict is the worst finding:

- `unreachable`: no token, or the credential sees no subscription;
- `cannot-read`: a token, but applications or deny assignments cannot be listed (plan would be blind);
- `read-only`: everything reads, but apply would be refused on some apps' resource groups;
- `unchecked`: everything reads, but write access could not be checked (the listing was refused);
- `ready`: apply holds what it needs everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from orchestrator.arm import AzureGateway, TenantCredential, build_credential
from orchestrator.arm.permissions import (
    APPLICATIONS_WRITE,
    DENY_ASSIGNMENTS_READ,
    ResourceGroupAccess,
    writable_resource_groups,
)
from orchestrator.config import WRITING_PATHS, CustomerConfig, FleetConfig
from orchestrator.errors import ArmError, ConfigError
from orchestrator.gateway import ArmGateway
from orchestrator.inventory import read_apps_by_id
from orchestrator.models import App

ROLE_FILE = "roles/orchestrator-operator.json"
LIGHTHOUSE_FILE = "roles/lighthouse-onboarding.json"
READER_ROLE_FILE = "roles/orchestrator-reader.json"

FIX_CREDENTIAL = (
    "fix this tenant's credential in the fleet config: the client id, the secret / certificate / "
    "federated token file it names, and that the app registration has a service principal in this "
    "tenant (admin consent for a multi-tenant app)"
)
FIX_NO_SUBSCRIPTION = (
    "the identity holds no role on any subscription of this tenant: have the customer grant "
    f"{READER_ROLE_FILE} (or Reader) on the subscription, or onboard it through Azure Lighthouse"
)
FIX_READ_APPS = (
    "grant Microsoft.Solutions/applications/read on the subscription (in "
    f"{READER_ROLE_FILE} and {ROLE_FILE}); without it plan cannot see this tenant's instances"
)
FIX_READ_DENY = (
    f"grant {DENY_ASSIGNMENTS_READ} on the subscription (in {READER_ROLE_FILE} and {ROLE_FILE}); "
    "without it plan cannot diff and apply cannot verify the deny assignments"
)
FIX_WRITE = (
    "the application resources live in the customers' resource groups, where a publisher has no rights "
    "by default (its authorizations cover only the managed resource group); get delegated access "
    "through Azure Lighthouse (built-in Managed Application Contributor Role) or a customer-granted "
    f"role with the actions in {ROLE_FILE}, on these resource groups or their subscription"
)
FIX_DELEGATE = (
    f"have the customer deploy {LIGHTHOUSE_FILE} (Azure Lighthouse, Managed Application Contributor Role) "
    'on the subscription, then set path = "delegated"; or keep the customer-run path: '
    "`orchestrator handoff PLAN --out DIR` makes the kit the customer runs"
)
FIX_BY_ID_READ = (
    "the identity cannot read these applications by id: for path 'publisher' the applications must be "
    "publisher-managed and name your tenant (their authorizations give your identity the managed resource "
    f"group); otherwise ask for read access (Lighthouse Reader, or {READER_ROLE_FILE})"
)
FIX_UNCHECKED = (
    "doctor could not list the identity's permissions there: grant "
    "Microsoft.Authorization/permissions/read (in both roles/*.json) so it can check, or confirm by "
    f"hand that the identity holds {APPLICATIONS_WRITE} on these resource groups"
)


class Verdict(StrEnum):
    READY = "ready"
    UNCHECKED = "unchecked"
    READ_ONLY = "read-only"
    CANNOT_READ = "cannot-read"
    UNREACHABLE = "unreachable"


_SEVERITY = [Verdict.READY, Verdict.UNCHECKED, Verdict.READ_ONLY, Verdict.CANNOT_READ, Verdict.UNREACHABLE]

CheckStatus = Literal["ok", "failed", "unchecked", "skipped"]


@dataclass(frozen=True)
class Check:
    name: str  # "token", "subscriptions", "applications", "deny assignments", "write access"
    status: CheckStatus
    detail: str
    fix: str = ""
    verdict: Verdict = Verdict.READY  # what this finding makes of the tenant when it is not ok


@dataclass(frozen=True)
class TenantDiagnosis:
    tenant_id: str
    tenant_name: str
    checks: tuple[Check, ...]
    subscriptions: tuple[str, ...] = ()
    path: str = "direct"  # the configured path (config.CustomerConfig)
    identity: str = ""  # the identity's name ("" for a customer-run customer without one)
    # What doctor found the identity can do there (list, read app, read deny, write): the path it proposes.
    proposed_path: str = ""
    apps: int = 0
    # Resource groups (as "subscription/resource group") where apply would be refused / was not checked.
    not_writable: tuple[str, ...] = ()
    not_checked: tuple[str, ...] = ()
    access: tuple[ResourceGroupAccess, ...] = field(default=(), repr=False)

    @property
    def verdict(self) -> Verdict:
        return worst(c.verdict for c in self.checks if c.status in ("failed", "unchecked"))


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    found = list(verdicts)
    return max(found, key=_SEVERITY.index) if found else Verdict.READY


async def diagnose_fleet(fleet: FleetConfig, *, concurrency: int = 8) -> list[TenantDiagnosis]:
    """One diagnosis per customer of the fleet, in config order. Never raises for a customer's problem."""
    credentials: dict[str, TenantCredential] = {}
    broken: dict[str, str] = {}
    for identity in fleet.identity_list:
        try:
            credentials[identity.name] = build_credential(identity.as_tenant(), fleet.cloud)
        except ConfigError as exc:
            broken[identity.name] = str(exc)
    gateway = AzureGateway(
        fleet.model_copy(
            update={
                "tenants": tuple(t for t in fleet.tenants if t.id in credentials),
                "identities": tuple(i for i in fleet.identities if i.name in credentials),
                "customers": tuple(
                    c for c in fleet.customers if all(n in credentials for n in _identities_of(c))
                ),
            }
        ),
        credentials=credentials,
    )
    try:
        return await diagnose(gateway, fleet, broken=broken, concurrency=concurrency)
    finally:
        await gateway.close()  # closes the credentials it was given too


async def diagnose(
    gateway: ArmGateway, fleet: FleetConfig, *, broken: Mapping[str, str], concurrency: int = 8
) -> list[TenantDiagnosis]:
    """`diagnose_fleet` through any gateway; `broken`: identity name -> why its credential could not
    be built (those customers are diagnosed without a call)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(customer: CustomerConfig) -> TenantDiagnosis:
        for name in _identities_of(customer):
            if name in broken:
                check = Check("credential", "failed", broken[name], FIX_CREDENTIAL, Verdict.UNREACHABLE)
                return TenantDiagnosis(
                    customer.id, customer.display_name, (check,), path=customer.path, identity=name
                )
        if customer.identity is None:
            detail = "no identity: the customer runs every update from its kit (orchestrator handoff)"
            return TenantDiagnosis(
                customer.id,
                customer.display_name,
                (Check("write access", "skipped", detail),),
                path=customer.path,
                proposed_path="customer-run",
            )
        return await _Diagnosis(gateway, fleet, customer, gate).run()

    return list(await asyncio.gather(*(one(c) for c in fleet.customer_list)))


def _identities_of(customer: CustomerConfig) -> list[str]:
    return [n for n in (customer.identity, *(s.identity for s in customer.subscription_paths)) if n]


class _Diagnosis:
    """One customer's checks, in order; each step returns False when the ones after it cannot run."""

    def __init__(
        self, gateway: ArmGateway, fleet: FleetConfig, tenant: CustomerConfig, gate: asyncio.Semaphore
    ) -> None:
        self.gateway = gateway
        self.tenant = tenant
        self.identity = fleet.identity(tenant.identity or "")
        self.home = self.identity.tenant_id.lower() == tenant.id.lower()
        self.gate = gate
        self.checks: list[Check] = []

    def done(self, **extra: object) -> TenantDiagnosis:
        return TenantDiagnosis(
            self.tenant.id,
            self.tenant.display_name,
            tuple(self.checks),
            path=self.tenant.path,
            identity=self.identity.name,
            **extra,  # type: ignore[arg-type]
        )

    async def run(self) -> TenantDiagnosis:
        try:
            kind = await self.gateway.probe_token(self.tenant.id)
        except ArmError as exc:
            self.checks.append(Check("token", "failed", str(exc), FIX_CREDENTIAL, Verdict.UNREACHABLE))
            return self.done()
        self.checks.append(Check("token", "ok", f"{kind} credential issued an ARM token"))
        if self.tenant.path not in WRITING_PATHS:
            return await _diagnose_by_id(self.gateway, self.tenant, self.checks, self.done, self.gate)
        chosen = await self._subscriptions()
        if not chosen:
            return self.done()
        apps, app_errors = await self._reads(chosen)
        if not apps:
            detail = (
                "no applications found: nothing to write" if not app_errors else "not checked: no app read"
            )
            self.checks.append(Check("write access", "skipped", detail))
            return self.done(subscriptions=tuple(chosen))
        return await self._write_access(chosen, apps)

    async def _subscriptions(self) -> list[str]:
        """The configured subscriptions the identity sees (a check either way); [] stops the diagnosis."""
        tenant = self.tenant
        try:
            async with self.gate:
                visible = await self.gateway.list_subscriptions(tenant.id)
        except ArmError as exc:
            self.checks.append(
                Check("subscriptions", "failed", str(exc), FIX_NO_SUBSCRIPTION, Verdict.UNREACHABLE)
            )
            return []
        seen = {s.id.lower(): s for s in visible}
        if tenant.subscriptions == "all":
            chosen = [s.id for s in visible]
            missing: list[str] = []
        else:
            chosen = [s for s in tenant.subscriptions if s.lower() in seen]
            missing = [s for s in tenant.subscriptions if s.lower() not in seen]
        if not chosen:
            detail = "none visible" + (f" (configured: {', '.join(missing)})" if missing else "")
            self.checks.append(
                Check("subscriptions", "failed", detail, FIX_NO_SUBSCRIPTION, Verdict.UNREACHABLE)
            )
            return []
        labels = ", ".join(seen[s.lower()].display_name or s for s in chosen)
        if missing:
            detail = f"{len(chosen)} visible ({labels}); not visible: {', '.join(missing)}"
            self.checks.append(
                Check("subscriptions", "failed", detail, FIX_NO_SUBSCRIPTION, Verdict.CANNOT_READ)
            )
        else:
            self.checks.append(Check("subscriptions", "ok", f"{len(chosen)} visible: {labels}"))
        return chosen

    async def _reads(self, chosen: Sequence[str]) -> tuple[list[App], list[str]]:
        """The applications and deny assignments checks; the apps read and the listing errors."""
        apps, app_errors, deny_errors = await _read_subscriptions(
            self.gateway, self.tenant.id, chosen, self.gate
        )
        if app_errors:
            detail = "; ".join(app_errors)
            self.checks.append(Check("applications", "failed", detail, FIX_READ_APPS, Verdict.CANNOT_READ))
        else:
            self.checks.append(Check("applications", "ok", f"{len(apps)} readable"))
        if deny_errors:
            detail = "; ".join(deny_errors)
            self.checks.append(
                Check("deny assignments", "failed", detail, FIX_READ_DENY, Verdict.CANNOT_READ)
            )
        else:
            self.checks.append(Check("deny assignments", "ok", "readable"))
        return apps, app_errors

    async def _write_access(self, chosen: Sequence[str], apps: Sequence[App]) -> TenantDiagnosis:
        groups = [(a.subscription_id, a.resource_group) for a in apps]
        access = await writable_resource_groups(self.gateway, self.tenant.id, groups)
        write_check, not_writable, not_checked = _write_check(apps, access)
        if write_check.status == "failed" and not self.home:
            write_check = replace(write_check, fix=FIX_DELEGATE)
        self.checks.append(write_check)
        writes = write_check.status == "ok"
        home = self.home
        proposed = (
            ("direct" if home else "delegated") if writes else ("customer-run" if home else "publisher")
        )
        return self.done(
            proposed_path=proposed,
            subscriptions=tuple(chosen),
            apps=len(apps),
            not_writable=not_writable,
            not_checked=not_checked,
            access=tuple(access.values()),
        )


async def _diagnose_by_id(
    gateway: ArmGateway,
    tenant: CustomerConfig,
    checks: list[Check],
    done: Callable[..., TenantDiagnosis],
    gate: asyncio.Semaphore,
) -> TenantDiagnosis:
    """Publisher and customer-run paths: read each listed app by id with its MRG deny assignment."""
    subs = sorted({a.split("/")[2] for a in tenant.app_ids})
    checks.append(Check("subscriptions", "skipped", f"not listed: {len(subs)} named by the application list"))
    async with gate:
        apps, misses = await read_apps_by_id(gateway, None, tenant.id, tenant.app_ids)
    errors = sorted(f"{m.app_id}: {m.cause}" for m in misses)
    if errors:
        detail = f"{len(errors)} of {len(tenant.app_ids)} unreadable: {errors[0]}"
        checks.append(Check("applications", "failed", detail, FIX_BY_ID_READ, Verdict.CANNOT_READ))
    else:
        checks.append(Check("applications", "ok", f"{len(apps)} read by id"))
        checks.append(Check("deny assignments", "ok", "readable at each managed resource group"))
    checks.append(
        Check(
            "write access",
            "skipped",
            f"{tenant.path}: the customer runs the update from its kit "
            f"(orchestrator handoff PLAN --out DIR); to let apply write instead: {LIGHTHOUSE_FILE}",
        )
    )
    return done(
        subscriptions=tuple(subs), apps=len(apps), proposed_path=tenant.path if not errors else "customer-run"
    )


async def _read_subscriptions(
    gateway: ArmGateway, tenant_id: str, subscriptions: Sequence[str], gate: asyncio.Semaphore
) -> tuple[list[App], list[str], list[str]]:
    apps: list[App] = []
    app_errors: list[str] = []
    deny_errors: list[str] = []

    async def one(sub: str) -> None:
        async with gate:
            try:
                apps.extend(await gateway.list_applications(tenant_id, sub))
            except ArmError as exc:
                app_errors.append(str(exc))
        async with gate:
            try:
                await gateway.list_deny_assignments(tenant_id, sub)
            except ArmError as exc:
                deny_errors.append(str(exc))

    await asyncio.gather(*(one(s) for s in subscriptions))
    return apps, sorted(app_errors), sorted(deny_errors)


def _write_check(
    apps: Sequence[App], access: dict[tuple[str, str], ResourceGroupAccess]
) -> tuple[Check, tuple[str, ...], tuple[str, ...]]:
    """Judge write access from the per-resource-group listing; pure, so it is unit-tested directly."""

    def key(app: App) -> tuple[str, str]:
        return (app.subscription_id.lower(), app.resource_group.lower())

    denied = sorted({k for a in apps if (k := key(a)) in access and access[k].can_write is False})
    unknown = sorted({k for a in apps if (k := key(a)) not in access or access[k].can_write is None})
    denied_apps = sum(1 for a in apps if key(a) in denied)
    unknown_apps = sum(1 for a in apps if key(a) in unknown)
    groups = len({key(a) for a in apps})
    not_writable = tuple(f"{s}/{rg}" for s, rg in denied)
    not_checked = tuple(f"{s}/{rg}" for s, rg in unknown)
    if denied:
        where = _sample(not_writable)
        detail = (
            f"apply would be refused for {denied_apps} of {len(apps)} apps "
            f"(no {APPLICATIONS_WRITE} on {where})"
        )
        if unknown:
            detail += f"; {unknown_apps} more not checked"
        return (
            Check("write access", "failed", detail, FIX_WRITE, Verdict.READ_ONLY),
            not_writable,
            not_checked,
        )
    if unknown:
        reasons = sorted({access[k].error or "no answer" for k in unknown if k in access})
        detail = f"not checked for {unknown_apps} of {len(apps)} apps on {_sample(not_checked)}"
        if reasons:
            detail += f": {reasons[0]}"
        return Check("write access", "unchecked", detail, FIX_UNCHECKED, Verdict.UNCHECKED), (), not_checked
    return Check("write access", "ok", f"{len(apps)} apps in {groups} resource groups writable"), (), ()


def _sample(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
