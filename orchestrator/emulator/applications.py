"""Managed applications, the model: what ARM checks on a write and what the stored app becomes.

No HTTP here: the handlers (arm_handlers.py) parse the request, call these rules with the path's
parts and the caller, and start the operation; tests call the rules directly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from orchestrator.emulator import lro
from orchestrator.emulator.errors import ArmError, not_found
from orchestrator.emulator.state import Json, State

APP_TYPE = "Microsoft.Solutions/applications"
OWNER_ROLE = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"  # what an app's authorizations grant on its MRG
_PLAN_KEYS = ("publisher", "product", "name", "version")


@dataclass(frozen=True)
class AppPath:
    """An application's place as the request path names it (any casing)."""

    sub: str
    rg: str
    name: str

    @property
    def key(self) -> str:
        rg = f"/subscriptions/{self.sub}/resourcegroups/{self.rg}"
        return f"{rg}/providers/microsoft.solutions/applications/{self.name}".lower()

    def not_found(self) -> ArmError:
        return not_found(APP_TYPE, self.name, self.rg)


def resource_group(state: State, sub: str, rg: str) -> Json:
    """The resource group, or ARM's 404 for it."""
    found = state.resource_groups.get(f"/subscriptions/{sub}/resourcegroups/{rg}".lower())
    if found is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    return found


def get(state: State, path: AppPath) -> Json:
    """The stored application, or ARM's 404 (for the resource group first, as ARM answers)."""
    resource_group(state, path.sub, path.rg)
    app: Json | None = state.applications.get(path.key)
    if app is None:
        raise path.not_found()
    return app


def busy_error(op_id: str, name: str) -> ArmError:
    return ArmError(
        409,
        "AnotherOperationInProgress",
        f"Another operation ('{op_id}') is in progress on the managed application '{name}'. "
        "Wait for it to finish and retry.",
    )


def build(state: State, path: AppPath, body: Json, existing: Json | None, system_data: Json) -> Json:
    """What ARM checks on a PUT of Microsoft.Solutions/applications; returns the new app body
    (provisioningState Accepted, authorizations from its definition or plan)."""
    rg = resource_group(state, path.sub, path.rg)
    kind, location, props, mrg = _required(body)
    if existing is not None:
        _check_unchanged(existing, rg, kind, location, mrg)
        kind = existing["kind"]
    else:
        kind = "MarketPlace" if kind.lower() == "marketplace" else "ServiceCatalog"
        _check_mrg_subscription(mrg, path.sub)
    before = existing or {}
    before_props = before.get("properties", {})
    sub_id = state.subscriptions[path.sub.lower()].id
    app_id = before.get("id") or (
        f"/subscriptions/{sub_id}/resourceGroups/{rg['name']}/providers/{APP_TYPE}/{path.name}"
    )
    new_props: Json = {
        "managedResourceGroupId": before_props.get("managedResourceGroupId", mrg),
        "parameters": props.get("parameters", before_props.get("parameters", {})),
        "outputs": before_props.get("outputs", {}),
        "provisioningState": "Accepted",
        "publisherTenantId": state.publisher_tenant_id,
        # Customer-managed applications stay so across updates.
        "managementMode": before_props.get("managementMode", "Managed"),
    }
    if "jitAccessPolicy" in props:
        new_props["jitAccessPolicy"] = props["jitAccessPolicy"]
    app: Json = {
        "id": app_id,
        "name": app_id.rsplit("/", 1)[1],
        "type": APP_TYPE,
        "location": before.get("location", location),
        "tags": body.get("tags", before.get("tags", {})),
        "kind": kind,
        "properties": new_props,
    }
    _offer_or_definition(app, body, props)
    if "identity" in body:
        app["identity"] = body["identity"]
    app["systemData"] = system_data
    new_props["authorizations"] = _authorizations(state, app)
    return app


def _required(body: Json) -> tuple[str, str, Json, str]:
    """kind, location, properties and managedResourceGroupId, each present and of the right type."""
    kind = body.get("kind")
    if not isinstance(kind, str) or kind.lower() not in ("servicecatalog", "marketplace"):
        raise ArmError(
            400,
            "InvalidApplicationKind",
            "The property 'kind' is required and must be 'ServiceCatalog' or 'MarketPlace'.",
        )
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The property 'properties' is required.")
    mrg = props.get("managedResourceGroupId")
    if not isinstance(mrg, str) or not mrg:
        raise ArmError(
            400, "ManagedResourceGroupIdRequired", "The property 'managedResourceGroupId' is required."
        )
    return kind, location, props, mrg


def _check_unchanged(existing: Json, rg: Json, kind: str, location: str, mrg: str) -> None:
    """An update keeps the app's location, managed resource group and kind."""
    if location.replace(" ", "").lower() != str(existing.get("location", "")).replace(" ", "").lower():
        raise ArmError(
            400,
            "InvalidResourceLocation",
            f"The resource '{existing['name']}' already exists in location '{existing['location']}' in "
            "resource "
            f"group '{rg['name']}'. A resource with the same name cannot be created in location "
            f"'{location}'. "
            "Please select a new resource name.",
        )
    old_mrg = existing["properties"]["managedResourceGroupId"]
    if mrg.lower() != old_mrg.lower():
        raise ArmError(
            400,
            "ManagedResourceGroupIdCannotBeChanged",
            f"The managed resource group id of the application '{existing['name']}' cannot be changed "
            "from "
            f"'{old_mrg}' to '{mrg}'.",
        )
    if kind.lower() != str(existing.get("kind", "")).lower():
        raise ArmError(
            400, "ApplicationKindCannotBeChanged", "The kind of a managed application cannot change."
        )


def _check_mrg_subscription(mrg: str, sub: str) -> None:
    mrg_sub = mrg.split("/")[2] if mrg.lower().startswith("/subscriptions/") else ""
    if mrg_sub.lower() != sub.lower():
        raise ArmError(
            400,
            "InvalidManagedResourceGroupId",
            f"The managed resource group '{mrg}' must be in the application's subscription.",
        )


def _offer_or_definition(app: Json, body: Json, props: Json) -> None:
    """A MarketPlace app names its plan; a ServiceCatalog app its definition."""
    if app["kind"] == "MarketPlace":
        plan = body.get("plan")
        if not isinstance(plan, dict) or not all(plan.get(k) for k in _PLAN_KEYS):
            raise ArmError(
                400,
                "InvalidMarketplacePlan",
                "A MarketPlace application needs a plan with publisher, product, name and version.",
            )
        app["plan"] = {k: plan[k] for k in (*_PLAN_KEYS, "promotionCode") if k in plan}
        return
    def_id = props.get("applicationDefinitionId")
    if not isinstance(def_id, str) or not def_id:
        raise ArmError(
            400,
            "ApplicationDefinitionIdRequired",
            "The property 'applicationDefinitionId' is required for a ServiceCatalog application.",
        )
    app["properties"]["applicationDefinitionId"] = def_id


def _authorizations(state: State, app: Json) -> list[Json]:
    """The app's authorizations: its definition's or offer's principals (which must exist)."""
    try:
        principals = lro.policy_for(state, app).principals
    except lro.PolicyError as exc:
        raise ArmError(400, exc.code, exc.message) from None
    return [{"principalId": p, "roleDefinitionId": OWNER_ROLE} for p in principals]


def system_data(caller: str, stamp: str, existing: Json | None) -> Json:
    """ARM's systemData: who created the resource and who last wrote it (a service principal here)."""
    created = (existing or {}).get("systemData") or {}
    return {
        "createdBy": created.get("createdBy", caller),
        "createdByType": created.get("createdByType", "Application"),
        "createdAt": created.get("createdAt", stamp),
        "lastModifiedBy": caller,
        "lastModifiedByType": "Application",
        "lastModifiedAt": stamp,
    }


def merge_patch(existing: Json, patch: Json) -> Json:
    """What a PATCH asks for: the stored app with the patch's tags, identity, plan, kind and
    properties laid over it (then checked by `build` like a PUT)."""
    merged = copy.deepcopy(existing)
    for field in ("tags", "identity"):
        if field in patch:
            merged[field] = patch[field]
    if isinstance(patch.get("plan"), dict):
        merged["plan"] = {**(merged.get("plan") or {}), **patch["plan"]}
    if "kind" in patch:
        merged["kind"] = patch["kind"]
    if isinstance(patch.get("properties"), dict):
        merged["properties"] = {**merged["properties"], **patch["properties"]}
    return merged


def managed_resource_group(app: Json) -> Json:
    """The resource group ARM creates for a new app's managed resources."""
    mrg = app["properties"]["managedResourceGroupId"]
    return {
        "id": mrg,
        "name": mrg.rsplit("/", 1)[1],
        "type": "Microsoft.Resources/resourceGroups",
        "location": app["location"],
        "managedBy": app["id"],
        "properties": {"provisioningState": "Succeeded"},
    }


def store(state: State, app: Json, *, new: bool) -> None:
    """Keep the app (and, for a new one, its managed resource group unless it exists)."""
    if new:
        mrg = managed_resource_group(app)
        state.resource_groups.setdefault(mrg["id"].lower(), mrg)
    state.applications[app["id"].lower()] = app


def upgrade_plans(state: State, app: Json) -> list[Json]:
    """listAllowedUpgradePlans: the other versions of a MarketPlace app's offer."""
    current = app.get("plan")
    if app.get("kind") != "MarketPlace" or not current:
        return []
    same = ("publisher", "product", "name")
    return [
        {k: offer[k] for k in _PLAN_KEYS}
        for offer in state.offers
        if all(str(offer[k]).lower() == str(current.get(k, "")).lower() for k in same)
        and offer["version"] != current.get("version")
    ]
