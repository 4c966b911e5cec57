"""Application definitions, the model: what ARM checks on a PUT or PATCH and what it stores."""

from __future__ import annotations

import copy

from orchestrator.emulator.errors import ArmError, not_found
from orchestrator.emulator.state import Json, State

DEFINITION_TYPE = "Microsoft.Solutions/applicationDefinitions"
LOCK_LEVELS = ("None", "ReadOnly", "CanNotDelete")


def key(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourcegroups/{rg}/providers/{DEFINITION_TYPE}/{name}".lower()


def get(state: State, sub: str, rg: str, name: str) -> Json:
    found: Json | None = state.definitions.get(key(sub, rg, name))
    if found is None:
        raise not_found(DEFINITION_TYPE, name, rg)
    return found


def patched(existing: Json | None, body: Json, *, rg: str, name: str) -> Json:
    """A PATCH changes the tags only (of a definition that exists)."""
    if existing is None:
        raise not_found(DEFINITION_TYPE, name, rg)
    new = copy.deepcopy(existing)
    if "tags" in body:
        new["tags"] = body["tags"]
    return new


def build(state: State, sub: str, rg: Json, name: str, body: Json, existing: Json | None) -> Json:
    """A PUT: the lock level is required; the id keeps its first casing."""
    props = body.get("properties")
    if not isinstance(props, dict) or props.get("lockLevel") not in LOCK_LEVELS:
        raise ArmError(
            400,
            "InvalidRequestContent",
            "The property 'properties.lockLevel' is required and must be None, ReadOnly or CanNotDelete.",
        )
    sub_id = state.subscriptions[sub.lower()].id
    def_id = (
        existing["id"]
        if existing
        else f"/subscriptions/{sub_id}/resourceGroups/{rg['name']}/providers/{DEFINITION_TYPE}/{name}"
    )
    return {
        "id": def_id,
        "name": def_id.rsplit("/", 1)[1],
        "type": DEFINITION_TYPE,
        "location": body.get("location", rg["location"]),
        "tags": body.get("tags", {}),
        "properties": {**props, "provisioningState": "Succeeded"},
    }
