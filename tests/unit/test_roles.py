"""The shipped role definitions: the shape `az role definition create` takes, and least privilege."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROLES = Path(__file__).resolve().parents[2] / "roles"
KEYS = {
    "Name",
    "IsCustom",
    "Description",
    "Actions",
    "NotActions",
    "DataActions",
    "NotDataActions",
    "AssignableScopes",
}


def _role(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROLES / name).read_text(encoding="utf-8"))
    return data


def test_both_roles_have_the_cli_shape() -> None:
    for name in ("orchestrator-operator.json", "orchestrator-reader.json"):
        role = _role(name)
        assert set(role) == KEYS, name
        assert role["IsCustom"] is True and role["AssignableScopes"] and role["Description"]
        assert role["DataActions"] == [] and role["NotDataActions"] == [], "no data-plane access"
        assert not any("*" in action for action in role["Actions"]), "no wildcards"


def test_operator_can_update_applications_and_nothing_else() -> None:
    actions = set(_role("orchestrator-operator.json")["Actions"])
    assert "Microsoft.Solutions/applications/write" in actions
    assert "Microsoft.Solutions/locations/operationStatuses/read" in actions
    writes = {a for a in actions if not a.endswith("/read")}
    assert writes == {"Microsoft.Solutions/applications/write"}


def test_reader_is_the_operator_without_writes() -> None:
    reader = set(_role("orchestrator-reader.json")["Actions"])
    operator = set(_role("orchestrator-operator.json")["Actions"])
    assert reader < operator
    assert all(a.endswith("/read") for a in reader)
    assert {
        "Microsoft.Authorization/denyAssignments/read",
        "Microsoft.Authorization/permissions/read",
    } <= reader


def test_readme_explains_every_action() -> None:
    readme = (ROLES / "README.md").read_text(encoding="utf-8")
    for action in _role("orchestrator-operator.json")["Actions"]:
        assert f"`{action}`" in readme, action
