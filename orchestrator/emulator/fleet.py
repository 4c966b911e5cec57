"""Deterministic fleet generator: a publisher with definitions and offers, customer tenants with apps.

Which apps are marketplace, unlocked, failed, drifted or trapped depends on the app's global index
(so every kind shows up even in a small fleet); ids, secrets and suffixes depend on the seed.
"""

from __future__ import annotations

import random
import uuid

from orchestrator.emulator import lighthouse
from orchestrator.emulator.derive import Policy, derive_for
from orchestrator.emulator.state import Json, State, Subscription, Tenant

PUBLISHER_RG = "rg-publisher"
CUSTOMER_RG = "rg-managedapps"
OWNER_ROLE = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"  # built-in Owner role definition id

V1_ALLOWED_ACTIONS = [
    "Microsoft.Web/sites/restart/action",
    "Microsoft.Web/sites/config/list/action",
    "Microsoft.Insights/diagnosticSettings/write",
]
V1_ALLOWED_DATA_ACTIONS = ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]
V2_EXTRA_ACTION = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
# The second product (`products=2`): a monitoring solution from the same publisher resource group.
MONITORING_ACTIONS = [
    "Microsoft.Insights/alertRules/write",
    "Microsoft.OperationalInsights/workspaces/query/read",
]
MARKETPLACE_PLAN = {"publisher": "contoso-isv", "product": "contoso-app", "name": "standard"}
LOCATIONS = ["eastus", "westeurope", "westus2"]


ACCESS_KINDS = ("direct", "delegated", "publisher", "locked")


def _split_spec(spec: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The spec's settings as (key, value, part as written) and its access parts: the value of
    `access=` and each part after it that has no `=` of its own."""
    settings: list[tuple[str, str, str]] = []
    access: list[str] = []
    in_access = False
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        if "=" in part:
            key, _, value = part.partition("=")
            in_access = key.strip().lower() == "access"
            if not in_access:
                settings.append((key.strip().lower(), value, raw))
                continue
            part = value
        elif not in_access:
            settings.append((part.lower(), "", raw))  # not key=value: refused by _parse_spec
            continue
        access.append(part)
    return settings, access


def parse_access(spec: str) -> list[str]:
    """The access kind of each customer tenant, in order, from '...,access=direct:2,delegated:3,...'.

    Empty when the spec has no access mix (then every customer is direct, the last one read-only).
    `direct`: the customer's own identity; `delegated`: Lighthouse (Managed Application Contributor
    Role); `publisher`: the publisher reads apps by id and their MRGs; `locked`: customer-managed apps
    (no publisher access through the app), with a Lighthouse Reader delegation for verification."""
    kinds: list[str] = []
    for part in _split_spec(spec)[1]:
        kind, _, raw = part.partition(":")
        kind = kind.strip().lower()
        if kind not in ACCESS_KINDS or not raw.strip().isdigit():
            raise ValueError(
                f"bad --generate access part {part!r}; expected access=KIND:N,... with KIND one of "
                f"{', '.join(ACCESS_KINDS)}"
            )
        kinds += [kind] * int(raw)
    return kinds


def parse_generate(spec: str) -> tuple[int, int, int]:
    """Parse 'tenants=T,subscriptions=S,apps=N' (any order; missing keys default to 1)."""
    values = _parse_spec(spec)
    return values["tenants"], values["subscriptions"], values["apps"]


def _parse_spec(spec: str) -> dict[str, int]:
    """The generator spec's keys; `products=2` adds a second service-catalog product (monitoring-v1/v2)
    from the same publisher resource group, used by every fourth app that would be on app-v1. With an
    access mix (`access=KIND:N,...`, see parse_access) tenants defaults to its total and must match it."""
    values = {"tenants": 1, "subscriptions": 1, "apps": 1, "products": 1}
    access = parse_access(spec)
    given: set[str] = set()
    for key, raw, part in _split_spec(spec)[0]:
        if key not in values or not raw.strip().isdigit():
            raise ValueError(
                f"bad --generate part {part!r}; expected "
                "tenants=T,subscriptions=S,apps=N[,products=P][,access=KIND:N,...]"
            )
        values[key] = int(raw)
        given.add(key)
    if access:
        if "tenants" in given and values["tenants"] != len(access):
            raise ValueError(
                f"--generate: tenants={values['tenants']} but the access mix adds up to {len(access)}"
            )
        values["tenants"] = len(access)
    return values


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _definition(sub: str, name: str, lock: str, actions: list[str], principal: str, tenant: str) -> Json:
    return {
        "id": f"/subscriptions/{sub}/resourceGroups/{PUBLISHER_RG}/providers/Microsoft.Solutions/"
        f"applicationDefinitions/{name}",
        "name": name,
        "type": "Microsoft.Solutions/applicationDefinitions",
        "location": "eastus",
        "tags": {},
        "properties": {
            "lockLevel": lock,
            "displayName": f"Contoso App ({name})",
            "description": f"Contoso managed application, definition {name}.",
            "isEnabled": True,
            "authorizations": [{"principalId": principal, "roleDefinitionId": OWNER_ROLE}],
            "lockingPolicy": {
                "allowedActions": list(actions),
                "allowedDataActions": list(V1_ALLOWED_DATA_ACTIONS),
            },
            "packageFileUri": f"https://contosoisv.blob.core.windows.net/packages/{name}.zip",
            "provisioningState": "Succeeded",
        },
    }


def _offer(version: str, actions: list[str], principal: str) -> Json:
    return {
        **MARKETPLACE_PLAN,
        "version": version,
        "lockLevel": "ReadOnly",
        "allowedActions": list(actions),
        "allowedDataActions": list(V1_ALLOWED_DATA_ACTIONS),
        "authorizations": [{"principalId": principal, "roleDefinitionId": OWNER_ROLE}],
    }


def _rg(sub: str, name: str, location: str, managed_by: str | None = None) -> Json:
    rg: Json = {
        "id": f"/subscriptions/{sub}/resourceGroups/{name}",
        "name": name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": location,
        "properties": {"provisioningState": "Succeeded"},
    }
    if managed_by:
        rg["managedBy"] = managed_by
    return rg


def _add_rg(state: State, rg: Json) -> None:
    state.resource_groups[rg["id"].lower()] = rg


def generate(spec: str, seed: int) -> State:
    values = _parse_spec(spec)
    access = parse_access(spec)
    rng = random.Random(seed)
    state = State()
    pub = _add_publisher(state, rng, two_products=values["products"] >= 2)
    index, n_tenants = 0, values["tenants"]
    for t in range(1, n_tenants + 1):
        tenant = Tenant(
            id=_uuid(rng),
            name=f"Contoso {t:03d}",
            client_id=_uuid(rng),
            client_secret=rng.randbytes(24).hex(),
            principal_id=_uuid(rng),
            # Without an access mix: one read-only tenant (the last) as soon as there is more than one.
            publisher_access="read-only" if not access and n_tenants > 1 and t == n_tenants else "full",
            ring="canary" if t == 1 else "default",
            access=access[t - 1] if access else "direct",
        )
        state.tenants[tenant.id] = tenant
        for s in range(1, values["subscriptions"] + 1):
            sub = _uuid(rng)
            state.subscriptions[sub] = Subscription(sub, tenant.id, f"Contoso {t:03d} Production {s}")
            location = LOCATIONS[(t + s) % len(LOCATIONS)]
            _add_rg(state, _rg(sub, CUSTOMER_RG, location))
            for n in range(1, values["apps"] + 1):
                second = values["products"] >= 2 and index % 4 == 1
                name = f"ma-{t:03d}-{s:02d}-{n:02d}"
                _add_app(state, rng, index, sub, location, name, pub, second_product=second)
                index += 1
            _grant_access(state, rng, tenant, sub, pub)
    return state


def _add_publisher(state: State, rng: random.Random, *, two_products: bool) -> Tenant:
    """The publisher: its tenant, subscription, definitions and marketplace offer versions."""
    pub_tid, pub_sub = _uuid(rng), _uuid(rng)
    pub = Tenant(
        id=pub_tid,
        name="Contoso ISV (publisher)",
        client_id=_uuid(rng),
        client_secret=rng.randbytes(24).hex(),
        principal_id=_uuid(rng),
        role="publisher",
        ring="publisher",
    )
    state.tenants[pub_tid] = pub
    state.subscriptions[pub_sub] = Subscription(pub_sub, pub_tid, "Contoso ISV Publishing")
    state.publisher_tenant_id, state.publisher_subscription_id = pub_tid, pub_sub
    _add_rg(state, _rg(pub_sub, PUBLISHER_RG, "eastus"))
    _uuid(rng)  # kept so ids of fleets generated before access mixes stay the same
    principal = pub.principal_id  # the publisher's service principal: granted access to every MRG
    v2_actions = [*V1_ALLOWED_ACTIONS, V2_EXTRA_ACTION]
    policies = [("app-v1", "ReadOnly", V1_ALLOWED_ACTIONS), ("app-v2", "ReadOnly", v2_actions)]
    policies.append(("app-v1-unlocked", "None", V1_ALLOWED_ACTIONS))
    if two_products:
        policies.append(("monitoring-v1", "ReadOnly", MONITORING_ACTIONS))
        policies.append(("monitoring-v2", "ReadOnly", [*MONITORING_ACTIONS, V2_EXTRA_ACTION]))
    for name, lock, actions in policies:
        d = _definition(pub_sub, name, lock, actions, principal, pub_tid)
        state.definitions[d["id"].lower()] = d
    state.offers = [_offer("1.0.0", V1_ALLOWED_ACTIONS, principal), _offer("2.0.0", v2_actions, principal)]
    return pub


def _grant_access(state: State, rng: random.Random, tenant: Tenant, sub: str, pub: Tenant) -> None:
    """What the customer's access kind gives the publisher on one subscription."""
    if tenant.access in ("delegated", "locked"):
        role = lighthouse.MANAGED_APP_CONTRIBUTOR if tenant.access == "delegated" else lighthouse.READER
        lighthouse.delegate(
            state,
            scope=f"/subscriptions/{sub}",
            managing_tenant=pub.id,
            principal_id=pub.principal_id,
            role_id=role,
            name=f"{pub.name}: {'managed application updates' if role != lighthouse.READER else 'read'}",
            definition_guid=_uuid(rng),
            assignment_guid=_uuid(rng),
        )
    if tenant.access == "locked":
        # Customer-managed: the applications give the publisher nothing.
        for app in state.applications.values():
            if app["id"].lower().startswith(f"/subscriptions/{sub.lower()}/"):
                app["properties"]["managementMode"] = "Unmanaged"


def _add_app(
    state: State, rng: random.Random, index: int, sub: str, location: str, name: str, pub: Tenant, *,
    second_product: bool = False,
) -> None:  # fmt: skip
    """One customer app with its MRG and system deny assignment. Which kind of app it is follows
    from its global index: marketplace, unlocked, failed, drifted, trapped."""
    app_id = (
        f"/subscriptions/{sub}/resourceGroups/{CUSTOMER_RG}/providers/Microsoft.Solutions/applications/{name}"
    )
    mrg_name = f"mrg-{name}-{rng.randbytes(3).hex()}"
    mrg_id = f"/subscriptions/{sub}/resourceGroups/{mrg_name}"
    _add_rg(state, _rg(sub, mrg_name, location, managed_by=app_id))
    marketplace = index % 3 == 2
    unlocked = not marketplace and index % 7 == 3
    app: Json = {
        "id": app_id,
        "name": name,
        "type": "Microsoft.Solutions/applications",
        "location": location,
        "tags": {},
        "kind": "MarketPlace" if marketplace else "ServiceCatalog",
        "properties": {
            "managedResourceGroupId": mrg_id,
            "parameters": {"environment": {"value": "production"}},
            "outputs": {},
            "provisioningState": "Failed" if index % 11 == 5 else "Succeeded",
            "publisherTenantId": pub.id,
            "authorizations": [{"principalId": pub.principal_id, "roleDefinitionId": OWNER_ROLE}],
            "managementMode": "Managed",
        },
    }
    if marketplace:
        app["plan"] = {**MARKETPLACE_PLAN, "version": "1.0.0"}
        offer = state.offers[0]
        policy = Policy(
            offer["lockLevel"], offer["allowedActions"], offer["allowedDataActions"], [pub.principal_id]
        )
    else:
        def_name = "app-v1-unlocked" if unlocked else ("monitoring-v1" if second_product else "app-v1")
        definition = next(d for d in state.definitions.values() if d["name"] == def_name)
        app["properties"]["applicationDefinitionId"] = definition["id"]
        dprops = definition["properties"]
        locking = dprops["lockingPolicy"]
        policy = Policy(
            dprops["lockLevel"], locking["allowedActions"], locking["allowedDataActions"], [pub.principal_id]
        )
    state.applications[app_id.lower()] = app
    _add_system_deny(state, app_id, mrg_id, policy, drifted=not unlocked and index % 6 == 4)
    if index % 5 == 1:
        _add_trap(state, mrg_id, _uuid(rng))


def _add_system_deny(state: State, app_id: str, mrg_id: str, policy: Policy, *, drifted: bool) -> None:
    deny = derive_for(app_id, mrg_id, policy)
    if deny is None:
        return
    if drifted:
        # Someone (or an older platform version) left the deny out of step with the definition.
        perm = deny["properties"]["permissions"][0]
        perm["notActions"] = [a for a in perm["notActions"] if a != V1_ALLOWED_ACTIONS[1]]
        perm["notActions"].append("Microsoft.Web/sites/stop/action")
    state.deny_assignments[deny["id"].lower()] = deny


def _add_trap(state: State, mrg_id: str, trap_name: str) -> None:
    """A customer-created deny assignment on the MRG: not the managed app's, must be ignored."""
    trap_id = f"{mrg_id}/providers/Microsoft.Authorization/denyAssignments/{trap_name}"
    state.deny_assignments[trap_id.lower()] = {
        "id": trap_id,
        "name": trap_name,
        "type": "Microsoft.Authorization/denyAssignments",
        "properties": {
            "denyAssignmentName": "Block public IP creation",
            "description": "Created by the customer's security team.",
            "permissions": [
                {
                    "actions": ["Microsoft.Network/publicIPAddresses/write"],
                    "notActions": [],
                    "dataActions": [],
                    "notDataActions": [],
                }
            ],
            "scope": mrg_id,
            "doNotApplyToChildScopes": False,
            "principals": [{"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}],
            "excludePrincipals": [],
            "isSystemProtected": False,
        },
    }
