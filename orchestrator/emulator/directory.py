"""Subscriptions, tenants, resource groups, providers and permissions, the model: the ARM bodies a
caller sees (no HTTP; arm_scopes.py serves them)."""

from __future__ import annotations

from typing import Any

from orchestrator.emulator import lighthouse
from orchestrator.emulator.errors import ArmError
from orchestrator.emulator.state import Json, State, Subscription, Tenant
from orchestrator.emulator.versions import API_VERSIONS, LOCATIONS, PROVIDER_TYPES

_LOCATION_NAMES = {"eastus": "East US", "westeurope": "West Europe", "westus2": "West US 2"}


def subscription_json(sub: Subscription, state: State) -> Json:
    return {
        "id": f"/subscriptions/{sub.id}",
        "subscriptionId": sub.id,
        "tenantId": sub.tenant_id,
        "displayName": sub.display_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
        "managedByTenants": [{"tenantId": t} for t in lighthouse.managed_by_tenants(state, sub.id)],
        "tags": {},
    }


def visible_subscriptions(state: State, tenant_id: str) -> list[Subscription]:
    """The tenant's own subscriptions, then those delegated to it (Lighthouse), as ARM lists them."""
    subs = state.subscriptions_of(tenant_id)
    own = {s.id.lower() for s in subs}
    return subs + [
        state.subscriptions[s.lower()]
        for s in lighthouse.delegated_subscription_ids(state, tenant_id)
        if s.lower() not in own
    ]


def tenant_json(tenant: Tenant) -> Json:
    domain = tenant.name.lower().replace(" ", "") + ".onmicrosoft.com"
    return {
        "id": f"/tenants/{tenant.id}",
        "tenantId": tenant.id,
        "tenantCategory": "Home",
        "displayName": tenant.name,
        "defaultDomain": domain,
        "domains": [domain],
        "tenantType": "AAD",
    }


def resource_groups_of(state: State, sub: str) -> list[Json]:
    prefix = f"/subscriptions/{sub}/resourcegroups/".lower()
    groups = state.resource_groups
    return [groups[k] for k in sorted(k for k in groups if k.startswith(prefix))]


def provider_json(namespace_asked: str, sub: str | None) -> Json:
    """A resource provider with its types, locations and api-versions (what `az resource` reads to
    pick an api-version when given none)."""
    wanted = namespace_asked.lower()
    namespace = next((n for n in PROVIDER_TYPES if n.lower() == wanted), None)
    if namespace is None:
        raise ArmError(
            404, "InvalidResourceNamespace", f"The resource namespace '{namespace_asked}' is invalid."
        )
    regional = namespace == "Microsoft.Solutions"
    types = [
        {
            "resourceType": resource_type,
            "locations": [_LOCATION_NAMES[loc] for loc in LOCATIONS] if regional else [],
            "apiVersions": sorted(API_VERSIONS[family], reverse=True),
            "capabilities": "None",
        }
        for resource_type, family in PROVIDER_TYPES[namespace]
    ]
    scope = f"/subscriptions/{sub}" if sub is not None else ""
    body: Json = {"id": f"{scope}/providers/{namespace}", "namespace": namespace, "resourceTypes": types}
    if scope:
        body["registrationState"] = "Registered"
        body["registrationPolicy"] = "RegistrationRequired"
    return body


def permissions(
    state: State, sub: Subscription, rg_id: str, caller: Tenant | None, tid: str, oid: str
) -> list[Json]:
    """Microsoft.Authorization/permissions on a resource group, for the caller."""
    if sub.tenant_id.lower() != tid.lower():
        # Cross-tenant: the delegated roles, or (publisher) what the app's authorizations give on its MRG.
        roles = lighthouse.delegated_roles(state, rg_id, tid, oid)
        if roles is None:
            roles = [lighthouse.READER]  # a publisher-readable MRG: reads only, as far as this tool cares
        return lighthouse.role_permissions(roles)
    access = caller.publisher_access if caller is not None else "full"
    value: list[dict[str, Any]] = []
    if access == "full":
        value.append({"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []})
    elif access == "read-only":
        value.append({"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []})
    return value


def registration(store: dict[str, Json], prefix: str, name: str) -> Json:
    found = store.get(prefix + name.lower())
    if found is None:
        raise ArmError(404, "RegistrationNotFound", f"The registration '{name}' could not be found.")
    return found


def registrations(store: dict[str, Json], prefix: str) -> list[Json]:
    return [v for k, v in sorted(store.items()) if k.startswith(prefix)]
