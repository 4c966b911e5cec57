"""The system deny assignment a managed application places on its managed resource group.

One rule, written down in docs/emulator.md; the orchestrator's planner encodes it independently.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

EVERYONE = "00000000-0000-0000-0000-000000000000"
# Real system deny assignments carry the application id in their display name (AuthorizationFailed
# messages quote it: "System deny assignment created by managed application /subscriptions/…/NAME");
# the description is generic, so a client must not rely on it to name the application.
SYSTEM_DENY_NAME = "System deny assignment created by managed application"
SYSTEM_DENY_DESCRIPTION = "Created by a managed application to protect its managed resource group."


def system_deny_name(app_id: str) -> str:
    return f"{SYSTEM_DENY_NAME} {app_id}"


def deny_assignment_name(app_id: str) -> str:
    """Stable per application, so a re-derivation replaces rather than duplicates."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, app_id.lower()))


def deny_assignment_id(mrg_id: str, app_id: str) -> str:
    return f"{mrg_id}/providers/Microsoft.Authorization/denyAssignments/{deny_assignment_name(app_id)}"


def derive_deny_assignment(
    *,
    app_id: str,
    mrg_id: str,
    lock_level: str,
    allowed_actions: Sequence[str],
    allowed_data_actions: Sequence[str],
    excluded_principal_ids: Sequence[str],
) -> dict[str, Any] | None:
    """Return the deny assignment (ARM JSON) for this lock policy, or None for lock level None."""
    if lock_level == "ReadOnly":
        permission = {
            "actions": ["*"],
            "notActions": ["*/read", *allowed_actions],
            "dataActions": ["*"],
            "notDataActions": list(allowed_data_actions),
        }
    elif lock_level == "CanNotDelete":
        permission = {
            "actions": ["*/delete"],
            "notActions": list(allowed_actions),
            "dataActions": [],
            "notDataActions": list(allowed_data_actions),
        }
    else:
        return None
    name = deny_assignment_name(app_id)
    return {
        "id": f"{mrg_id}/providers/Microsoft.Authorization/denyAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/denyAssignments",
        "properties": {
            "denyAssignmentName": system_deny_name(app_id),
            "description": SYSTEM_DENY_DESCRIPTION,
            "permissions": [permission],
            "scope": mrg_id,
            "doNotApplyToChildScopes": False,
            "principals": [{"id": EVERYONE, "type": "SystemDefined"}],
            "excludePrincipals": [{"id": pid, "type": "ServicePrincipal"} for pid in excluded_principal_ids],
            "isSystemProtected": True,
        },
    }


class Policy(NamedTuple):
    """What an app's definition or marketplace plan says about its managed resource group."""

    lock_level: str
    allowed_actions: list[str]
    allowed_data_actions: list[str]
    principals: list[str]  # its authorizations: excluded from the deny assignment


def derive_for(app_id: str, mrg_id: str, policy: Policy) -> dict[str, Any] | None:
    """The app's system deny assignment under `policy` (None for lock level None)."""
    return derive_deny_assignment(
        app_id=app_id,
        mrg_id=mrg_id,
        lock_level=policy.lock_level,
        allowed_actions=policy.allowed_actions,
        allowed_data_actions=policy.allowed_data_actions,
        excluded_principal_ids=policy.principals,
    )
