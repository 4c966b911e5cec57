"""Cross-tenant access the emulator grants: Azure Lighthouse delegations and the publisher's reads.

Lighthouse (Microsoft.ManagedServices 2022-10-01): a customer subscription (or resource group) holds
a registration assignment pointing at a registration definition whose `managedByTenantId` is the
managing tenant and whose `authorizations` give principals of that tenant built-in roles. A token from
the managing tenant whose `oid` is one of those principals is accepted on the delegated scope with the
role's actions; `GET /subscriptions` lists the subscription for it with the managing tenant in
`managedByTenants` (GetSubscriptions.json).

Publisher access (Microsoft.Solutions): in publisher-managed mode (`managementMode: Managed`) a token of
the application's `publisherTenantId` may read the application by id, and the principals in the
application's `authorizations` may read its managed resource group. Customer-managed ("Unmanaged")
applications give the publisher nothing.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from orchestrator.emulator.state import Json, State

API_VERSION = "2022-10-01"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
MANAGED_APP_CONTRIBUTOR = "641177b8-a67a-45b9-a033-47bc880bb21e"
MANAGED_APP_OPERATOR = "c7393b34-138c-406f-901b-d8cf2b17e6ae"
MANAGED_APPS_READER = "b9331d33-8a36-4f8c-b097-4f54124fdb44"

# Built-in roles: (actions, notActions), as Azure's built-in role definitions list them.
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    OWNER: (("*",), ()),
    CONTRIBUTOR: (
        ("*",),
        (
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
        ),
    ),
    READER: (("*/read",), ()),
    MANAGED_APP_CONTRIBUTOR: (
        (
            "*/read",
            "Microsoft.Solutions/applications/*",
            "Microsoft.Solutions/register/action",
            "Microsoft.Resources/subscriptions/resourceGroups/*",
            "Microsoft.Resources/deployments/*",
        ),
        (),
    ),
    MANAGED_APP_OPERATOR: (
        ("*/read", "Microsoft.Solutions/applications/read", "Microsoft.Solutions/*/action"),
        (),
    ),
    MANAGED_APPS_READER: (("*/read", "Microsoft.Solutions/jitRequests/*"), ()),
}

_RG_OF = re.compile(r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)", re.IGNORECASE)


def allows(role_ids: list[str], action: str) -> bool:
    """Whether any of the roles grants `action` (Azure unions role assignments; patterns are globs)."""
    want = action.lower()
    for role_id in role_ids:
        actions, not_actions = ROLES.get(role_id.rsplit("/", 1)[-1].lower(), ((), ()))
        if any(fnmatchcase(want, a.lower()) for a in actions) and not any(
            fnmatchcase(want, n.lower()) for n in not_actions
        ):
            return True
    return False


def role_permissions(role_ids: list[str]) -> list[Json]:
    """The permissions listing (Microsoft.Authorization/permissions) those roles produce."""
    out = []
    for role_id in role_ids:
        actions, not_actions = ROLES.get(role_id.rsplit("/", 1)[-1].lower(), ((), ()))
        out.append(
            {
                "actions": list(actions),
                "notActions": list(not_actions),
                "dataActions": [],
                "notDataActions": [],
            }
        )
    return out


# ---- Lighthouse ------------------------------------------------------------------------------------


def _assignment_scope(assignment: Json) -> str:
    return str(assignment["id"]).lower().split("/providers/microsoft.managedservices/")[0]


def _definition_of(state: State, assignment: Json) -> Json | None:
    return state.registration_definitions.get(
        str(assignment["properties"]["registrationDefinitionId"]).lower()
    )


def managed_by_tenants(state: State, subscription_id: str) -> list[str]:
    """Managing tenants of a subscription: every tenant a registration assignment in it delegates to."""
    prefix = f"/subscriptions/{subscription_id.lower()}"
    found: list[str] = []
    for assignment in state.registration_assignments.values():
        scope = _assignment_scope(assignment)
        if scope == prefix or scope.startswith(prefix + "/"):
            definition = _definition_of(state, assignment)
            if definition is not None:
                tenant = str(definition["properties"]["managedByTenantId"])
                if tenant.lower() not in (t.lower() for t in found):
                    found.append(tenant)
    return found


def delegated_subscription_ids(state: State, managing_tenant: str) -> list[str]:
    """Subscriptions with at least one delegation (subscription or resource group) to the tenant."""
    found: set[str] = set()
    for assignment in state.registration_assignments.values():
        definition = _definition_of(state, assignment)
        if (
            definition
            and str(definition["properties"]["managedByTenantId"]).lower() == managing_tenant.lower()
        ):
            found.add(_assignment_scope(assignment).split("/")[2])
    return [s.id for s in state.subscriptions.values() if s.id.lower() in found]


def delegated_roles(state: State, path: str, tenant_id: str, object_id: str) -> list[str] | None:
    """Roles the (tenant, principal) holds through delegations covering `path`; None if none covers it.

    An empty list: the tenant has a delegation there, but not for this principal."""
    lpath = path.lower().rstrip("/")
    roles: list[str] | None = None
    for assignment in state.registration_assignments.values():
        scope = _assignment_scope(assignment)
        if not (lpath == scope or lpath.startswith(scope + "/")):
            continue
        definition = _definition_of(state, assignment)
        if definition is None:
            continue
        props = definition["properties"]
        if str(props["managedByTenantId"]).lower() != tenant_id.lower():
            continue
        roles = roles if roles is not None else []
        for authz in props.get("authorizations", []):
            if str(authz.get("principalId", "")).lower() == object_id.lower():
                roles.append(str(authz["roleDefinitionId"]))
    return roles


def delegate(
    state: State,
    *,
    scope: str,
    managing_tenant: str,
    principal_id: str,
    role_id: str,
    name: str,
    definition_guid: str,
    assignment_guid: str,
) -> None:
    """Add a registration definition (in the scope's subscription) and its assignment at `scope`."""
    sub = scope.split("/")[2]
    sub_tenant = state.subscriptions[sub.lower()].tenant_id
    def_id = (
        f"/subscriptions/{sub}/providers/Microsoft.ManagedServices/registrationDefinitions/{definition_guid}"
    )
    state.registration_definitions[def_id.lower()] = {
        "id": def_id,
        "type": "Microsoft.ManagedServices/registrationDefinitions",
        "name": definition_guid,
        "properties": {
            "registrationDefinitionName": name,
            "description": f"{name}: lets the managing tenant update its managed applications",
            "managedByTenantId": managing_tenant,
            "manageeTenantId": sub_tenant,
            "authorizations": [
                {
                    "principalId": principal_id,
                    "principalIdDisplayName": "Orchestrator",
                    "roleDefinitionId": role_id,
                }
            ],
            "provisioningState": "Succeeded",
        },
    }
    assign_id = f"{scope}/providers/Microsoft.ManagedServices/registrationAssignments/{assignment_guid}"
    state.registration_assignments[assign_id.lower()] = {
        "id": assign_id,
        "type": "Microsoft.ManagedServices/registrationAssignments",
        "name": assignment_guid,
        "properties": {"registrationDefinitionId": def_id, "provisioningState": "Succeeded"},
    }


# ---- the publisher's reads -------------------------------------------------------------------------


def _publisher_managed(app: Json, tenant_id: str) -> bool:
    props = app.get("properties", {})
    return (
        str(props.get("publisherTenantId", "")).lower() == tenant_id.lower()
        and str(props.get("managementMode", "Managed")) == "Managed"
    )


def publisher_may_read(state: State, path: str, tenant_id: str, object_id: str) -> bool:
    """A GET by the publisher: the application itself (by id), or inside its managed resource group
    for a principal the application's authorizations name."""
    lpath = path.lower().rstrip("/")
    app = state.applications.get(lpath)
    if app is not None:
        return _publisher_managed(app, tenant_id)
    m = _RG_OF.match(lpath)
    if m is None:
        return False
    rg = state.resource_groups.get(f"/subscriptions/{m.group(1)}/resourcegroups/{m.group(2)}")
    managed_by = str((rg or {}).get("managedBy", "")).lower()
    app = state.applications.get(managed_by) if managed_by else None
    if app is None or not _publisher_managed(app, tenant_id):
        return False
    principals = {str(a.get("principalId", "")).lower() for a in app["properties"].get("authorizations", [])}
    return object_id.lower() in principals
