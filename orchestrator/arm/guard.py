"""The token guard: which identity may be used on which subscription, as ARM itself lists it.

Per identity, ARM's own subscription list (read once); a customer's subscription is used only when ARM
lists it for the identity with the customer's tenantId, and with the identity's home tenant as tenantId
or in managedByTenants. A credential is thereby never used outside its tenant, and nothing is sent
into a subscription before the guard allowed it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from azure.mgmt.core.tools import parse_resource_id

from orchestrator.arm.clients import ClientPool
from orchestrator.arm.convert import to_subscription
from orchestrator.arm.errors import arm_call
from orchestrator.config import BY_ID_PATHS, WRITING_PATHS, FleetConfig
from orchestrator.errors import ArmError
from orchestrator.models import App, Subscription


class TokenGuard:
    def __init__(self, config: FleetConfig, pool: ClientPool) -> None:
        self._pool = pool
        self._identities = {i.name: i for i in config.identity_list}
        self._customers = {c.id.lower(): c for c in config.customer_list}
        self._listings: dict[str, asyncio.Task[dict[str, Subscription]]] = {}
        # (customer, subscription) -> identity, once the guard confirmed it.
        self._approved: dict[tuple[str, str], str] = {}
        # Publisher reads (no listing, no write): MRG -> identity, for apps read by id that name it.
        self._publisher_mrgs: dict[str, str] = {}
        # Customer -> app ids the notification registry learned (by-id paths read them like `app_ids`).
        self._registry_apps: dict[str, set[str]] = {}

    def route(self, tenant_id: str, subscription_id: str | None) -> tuple[str, str]:
        """(identity name, path) for a customer's subscription; an identity's own home tenant (the
        publisher reading its definitions) counts as direct."""
        customer = self._customers.get(tenant_id.lower())
        if customer is None:
            for identity in self._identities.values():
                if identity.tenant_id.lower() == tenant_id.lower():
                    return identity.name, "direct"
            raise ArmError(f"tenant {tenant_id} is not in the fleet config", code="UnknownTenant")
        path, name = customer.route(subscription_id or "")
        if name is None:
            raise ArmError(
                f"customer {customer.display_name} ({customer.id}) has no identity for path {path}: "
                "nothing can be read or written there",
                code="NoIdentity",
            )
        return name, path

    def identities_of(self, tenant_id: str) -> list[str]:
        """The identities a customer's subscriptions are read with (sorted by name)."""
        customer = self._customers.get(tenant_id.lower())
        if customer is None:
            return [self.route(tenant_id, None)[0]]
        return sorted(n for n in {customer.identity, *(s.identity for s in customer.subscription_paths)} if n)

    async def listing(self, identity: str) -> dict[str, Subscription]:
        """ARM's subscription list for the identity (once; concurrent callers share the one call)."""
        task = self._listings.get(identity)
        if task is None:
            client = self._pool.subscriptions(identity)
            home = self._identities[identity].tenant_id

            async def read() -> dict[str, Subscription]:
                async def pages() -> list[Subscription]:
                    return [to_subscription(s, home) async for s in client.subscriptions.list()]

                subs = await arm_call(f"list subscriptions visible to identity {identity}", pages)
                return {s.id.lower(): s for s in subs}

            task = asyncio.ensure_future(read())
            self._listings[identity] = task
        try:
            return await asyncio.shield(task)
        except ArmError:
            self._listings.pop(identity, None)  # a later call may try again
            raise

    async def claim(self, tenant_id: str, subscription_id: str, *, write: bool = False) -> str:
        """The identity that may be used on a customer's subscription, or `ArmError` (code WrongTenant
        or NotWritable) before any request reaches that subscription.

        Allowed: ARM lists the subscription for the identity with tenantId the customer's and either
        tenantId or managedByTenants the identity's home tenant. Writes only on the direct and
        delegated paths."""
        key = (tenant_id.lower(), subscription_id.lower())
        name, path = self.route(tenant_id, subscription_id)
        if write and path not in WRITING_PATHS:
            raise ArmError(
                f"subscription {subscription_id} of tenant {tenant_id} is on path {path}: "
                "the orchestrator does not write there (the customer runs the update from its kit)",
                code="NotWritable",
            )
        if self._approved.get(key) == name:
            return name
        home = self._identities[name].tenant_id.lower()
        sub = (await self.listing(name)).get(subscription_id.lower())
        if sub is None:
            raise ArmError(
                f"identity {name} (tenant {home}) may not use subscription {subscription_id}: ARM does not "
                "list it for that identity (neither its home tenant's nor delegated to it); refusing",
                code="WrongTenant",
            )
        if sub.tenant_id.lower() != tenant_id.lower():
            raise ArmError(
                f"subscription {subscription_id} belongs to tenant {sub.tenant_id} according to ARM, "
                f"not to customer {tenant_id}; refusing to use identity {name}",
                code="WrongTenant",
            )
        if sub.tenant_id.lower() != home and home not in (t.lower() for t in sub.managed_by_tenants):
            raise ArmError(
                f"subscription {subscription_id} is neither in tenant {home} nor managed by it; "
                f"refusing to use identity {name}",
                code="WrongTenant",
            )
        self._approved[key] = name
        return name

    async def claim_app_read(self, tenant_id: str, app_id: str) -> str:
        """Reading one application: a confirmed subscription, or (publisher path) an app id the
        customer's list names or the notification registry learned for it, read with the publisher
        identity."""
        sub = split_id(app_id)[0]
        name, path = self.route(tenant_id, sub)
        try:
            return await self.claim(tenant_id, sub)
        except ArmError as exc:
            if exc.code != "WrongTenant" or path not in BY_ID_PATHS:
                raise
            customer = self._customers[tenant_id.lower()]
            known = self._registry_apps.get(tenant_id.lower(), set())
            if app_id.lower() not in {a.lower() for a in customer.app_ids} | known:
                raise
        return name

    def allow_app_reads(self, tenant_id: str, app_ids: Iterable[str]) -> None:
        self._registry_apps.setdefault(tenant_id.lower(), set()).update(a.lower() for a in app_ids)

    def admit_publisher_read(self, tenant_id: str, subscription_id: str, identity: str, app: App) -> None:
        """After `claim_app_read` let `identity` read `app`: if that was as the publisher (no confirmed
        subscription), its MRG is readable only when the app names this identity's tenant."""
        if (tenant_id.lower(), subscription_id.lower()) in self._approved:
            return
        home = self._identities[identity].tenant_id.lower()
        if (app.publisher_tenant_id or "").lower() != home:
            raise ArmError(
                f"application {app.id} names publisher tenant {app.publisher_tenant_id}, not {home}; "
                f"refusing to read its managed resource group with identity {identity}",
                code="WrongTenant",
            )
        self._publisher_mrgs[app.managed_resource_group_id.rstrip("/").lower()] = identity

    def claim_mrg_read(self, scope: str) -> str | None:
        """The identity that read the app managing this MRG by id and found itself its publisher."""
        key = scope.rstrip("/").lower()
        for mrg, name in self._publisher_mrgs.items():
            if key == mrg or key.startswith(mrg + "/"):
                return name
        return None

    async def definition_reader(self, tenant_id: str, subscription_id: str) -> str:
        """A definition lives in the publisher's subscription: the identity ARM lists it for (its home
        tenant's first), else the customer's confirmed one."""
        try:
            return await self.claim(tenant_id, subscription_id)
        except ArmError as exc:
            if exc.code != "WrongTenant":
                raise
            refused = exc
        for identity in sorted(self._identities.values(), key=lambda i: i.name):
            with contextlib.suppress(ArmError):
                sub = (await self.listing(identity.name)).get(subscription_id.lower())
                if sub is not None:
                    self._approved[(sub.tenant_id.lower(), subscription_id.lower())] = identity.name
                    return identity.name
        # No identity's ARM listing holds the subscription: for this fleet it does not exist (no
        # request is sent into it); said as ARM would, so callers treat the definition as missing.
        raise ArmError(
            f"{refused}; subscription {subscription_id} is visible to no configured identity",
            status=404,
            code="SubscriptionNotFound",
        )

    def cancel(self) -> None:
        for task in self._listings.values():
            task.cancel()


def split_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of a resource id; `ArmError` when it is not one."""
    parts = parse_resource_id(resource_id)
    try:
        return str(parts["subscription"]), str(parts["resource_group"]), str(parts["name"])
    except KeyError:
        raise ArmError(f"{resource_id!r} is not a resource id", code="InvalidResourceId") from None
