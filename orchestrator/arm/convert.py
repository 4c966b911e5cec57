"""Azure SDK models → `orchestrator.models` value objects, at the edge, with nothing SDK-typed leaking out."""

from __future__ import annotations

from typing import Any, cast

from azure.mgmt.core.tools import parse_resource_id

from orchestrator.models import (
    App,
    Authorization,
    Definition,
    DenyAssignment,
    LockLevel,
    MarketplacePlan,
    Subscription,
)

_LOCK_LEVELS: dict[str, LockLevel] = {"none": "None", "cannotdelete": "CanNotDelete", "readonly": "ReadOnly"}


def lock_level(value: Any) -> LockLevel:
    text = str(getattr(value, "value", value) or "None")
    try:
        return _LOCK_LEVELS[text.lower()]
    except KeyError:
        raise ValueError(f"unknown lock level {text!r}") from None


def _str(value: Any) -> str:
    """Enum-or-string SDK values as their plain string."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def to_subscription(model: Any, tenant_id: str) -> Subscription:
    return Subscription(
        id=model.subscription_id or parse_resource_id(model.id)["subscription"],
        display_name=model.display_name or "",
        tenant_id=model.tenant_id or tenant_id,
        state=_str(model.state) or "Enabled",
    )


def to_app(model: Any, tenant_id: str) -> App:
    parts = parse_resource_id(model.id)
    props = model.properties
    plan = model.plan
    return App(
        id=model.id,
        name=model.name or parts["name"],
        tenant_id=tenant_id,
        subscription_id=parts["subscription"],
        resource_group=parts["resource_group"],
        location=model.location or "",
        kind=_str(model.kind),
        managed_resource_group_id=(props.managed_resource_group_id if props else None) or "",
        definition_id=(props.application_definition_id if props else None) or None,
        plan=(
            MarketplacePlan(
                publisher=plan.publisher, product=plan.product, name=plan.name, version=plan.version
            )
            if plan is not None
            else None
        ),
        provisioning_state=_str(props.provisioning_state if props else None) or "Unknown",
        tags=dict(model.tags or {}),
    )


def to_definition(model: Any, definition_id: str) -> Definition:
    props = model.properties
    policy = props.locking_policy
    return Definition(
        id=model.id or definition_id,
        lock_level=lock_level(props.lock_level),
        allowed_actions=tuple(policy.allowed_actions or ()) if policy else (),
        allowed_data_actions=tuple(policy.allowed_data_actions or ()) if policy else (),
        authorizations=tuple(
            Authorization(principal_id=a.principal_id, role_definition_id=a.role_definition_id)
            for a in (props.authorizations or ())
        ),
    )


def to_deny_assignment(model: Any) -> DenyAssignment:
    permissions = cast(list[Any], model.permissions or [])
    first = permissions[0] if permissions else None
    return DenyAssignment(
        id=model.id or "",
        name=model.name or "",
        scope=model.scope or "",
        deny_assignment_name=model.deny_assignment_name or "",
        description=model.description or "",
        actions=tuple(first.actions or ()) if first else (),
        not_actions=tuple(first.not_actions or ()) if first else (),
        data_actions=tuple(first.data_actions or ()) if first else (),
        not_data_actions=tuple(first.not_data_actions or ()) if first else (),
        excluded_principal_ids=tuple(p.id for p in (model.exclude_principals or ()) if p.id),
        is_system_protected=bool(model.is_system_protected),
    )
