"""ARM resources (their JSON wire shape) → `orchestrator.models` value objects, at the edge.

The converters read the REST JSON shape (`properties.lockingPolicy.allowedActions`, ...). They accept the
azure-mgmt typespec models directly (those are mappings over the JSON as received) and plain JSON from
the bulk listings, which skip SDK model deserialization for speed (see `gateway._list_raw`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from orchestrator.models import (
    App,
    Authorization,
    Definition,
    DenyAssignment,
    LockLevel,
    MarketplacePlan,
    Subscription,
)

Json = Mapping[str, Any]

_LOCK_LEVELS: dict[str, LockLevel] = {"none": "None", "cannotdelete": "CanNotDelete", "readonly": "ReadOnly"}


def lock_level(value: Any) -> LockLevel:
    text = str(value or "None")
    try:
        return _LOCK_LEVELS[text.lower()]
    except KeyError:
        raise ValueError(f"unknown lock level {text!r}") from None


def _map(value: Any) -> Json:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def id_parts(resource_id: str) -> dict[str, str]:
    """Lower-cased segment name → value for `/subscriptions/{s}/resourceGroups/{rg}/providers/.../{name}`."""
    parts = resource_id.strip("/").split("/")
    out: dict[str, str] = {}
    for key, value in zip(parts[0::2], parts[1::2], strict=False):
        out.setdefault(key.lower(), value)
    if len(parts) >= 2:
        out["name"] = parts[-1]
    return out


def to_subscription(data: Json, tenant_id: str) -> Subscription:
    sub_id = data.get("subscriptionId") or id_parts(str(data.get("id", ""))).get("subscriptions", "")
    return Subscription(
        id=str(sub_id),
        display_name=str(data.get("displayName") or ""),
        tenant_id=str(data.get("tenantId") or tenant_id),
        state=str(data.get("state") or "Enabled"),
        managed_by_tenants=tuple(
            str(m["tenantId"]) for m in data.get("managedByTenants") or () if _map(m).get("tenantId")
        ),
    )


def to_app(data: Json, tenant_id: str) -> App:
    app_id = str(data["id"])
    parts = id_parts(app_id)
    props = _map(data.get("properties"))
    plan = data.get("plan")
    return App(
        id=app_id,
        name=str(data.get("name") or parts["name"]),
        tenant_id=tenant_id,
        subscription_id=parts.get("subscriptions", ""),
        resource_group=parts.get("resourcegroups", ""),
        location=str(data.get("location") or ""),
        kind=str(data.get("kind") or ""),
        managed_resource_group_id=str(props.get("managedResourceGroupId") or ""),
        publisher_tenant_id=str(props["publisherTenantId"]) if props.get("publisherTenantId") else None,
        definition_id=str(props["applicationDefinitionId"]) if props.get("applicationDefinitionId") else None,
        plan=(
            MarketplacePlan(
                publisher=str(plan["publisher"]),
                product=str(plan["product"]),
                name=str(plan["name"]),
                version=str(plan["version"]),
            )
            if isinstance(plan, Mapping)
            else None
        ),
        provisioning_state=str(props.get("provisioningState") or "Unknown"),
        tags={str(k): str(v) for k, v in _map(data.get("tags")).items()},
    )


def to_definition(data: Json, definition_id: str) -> Definition:
    props = _map(data.get("properties"))
    policy = _map(props.get("lockingPolicy"))
    return Definition(
        id=str(data.get("id") or definition_id),
        lock_level=lock_level(props.get("lockLevel")),
        allowed_actions=_strings(policy.get("allowedActions")),
        allowed_data_actions=_strings(policy.get("allowedDataActions")),
        authorizations=tuple(
            Authorization(principal_id=str(a["principalId"]), role_definition_id=str(a["roleDefinitionId"]))
            for a in props.get("authorizations") or ()
        ),
    )


def to_deny_assignment(data: Json) -> DenyAssignment:
    props = _map(data.get("properties"))
    permissions = props.get("permissions") or []
    first = _map(permissions[0]) if permissions else {}
    return DenyAssignment(
        id=str(data.get("id") or ""),
        name=str(data.get("name") or ""),
        scope=str(props.get("scope") or ""),
        deny_assignment_name=str(props.get("denyAssignmentName") or ""),
        description=str(props.get("description") or ""),
        actions=_strings(first.get("actions")),
        not_actions=_strings(first.get("notActions")),
        data_actions=_strings(first.get("dataActions")),
        not_data_actions=_strings(first.get("notDataActions")),
        excluded_principal_ids=tuple(
            str(p["id"])
            for p in props.get("excludePrincipals") or ()
            if isinstance(p, Mapping) and p.get("id")
        ),
        is_system_protected=bool(props.get("isSystemProtected")),
    )


def operation_seconds(data: Any) -> float | None:
    """How long an operation ran by ARM's own clock: its status's `endTime - startTime`.

    None unless the status says both, as timezone-aware ISO 8601 times, and the end is after the start
    (both are optional in ARM's `OperationStatusResult`; anything else is not trusted)."""
    if not isinstance(data, Mapping):
        return None
    try:
        start, end = (datetime.fromisoformat(str(data[key])) for key in ("startTime", "endTime"))
        seconds = (end - start).total_seconds()
    except (KeyError, ValueError, TypeError, OverflowError):  # missing, malformed, naive vs aware
        return None
    if start.tzinfo is None or seconds <= 0:
        return None
    return seconds
