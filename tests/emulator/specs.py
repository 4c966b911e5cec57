"""Validate emulator responses against the official REST specs in /work/shared/azure-specs/.

Swagger 2.0 definitions are close enough to JSON Schema draft 4: each spec file is registered under
its own file URI so relative `$ref`s (into common-types) resolve. The deny-assignment spec refers to
`./common-types.json#/definitions/Principal`, which was not copied (see the specs' MANIFEST.md): a
stand-in with the documented Principal properties is registered in its place.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path("/work/shared/azure-specs/specification")
SOLUTIONS = (
    SPECS
    / "solutions/resource-manager/Microsoft.Solutions/ManagedApplications"
    / "preview/2023-12-01-preview/managedapplications.json"
)
DENY = (
    SPECS
    / "authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01"
    / "authorization-DenyAssignmentCalls.json"
)
SOLUTIONS_2021 = (
    SPECS
    / "solutions/resource-manager/Microsoft.Solutions/ManagedApplications"
    / "stable/2021-07-01/managedapplications.json"
)
SUBSCRIPTIONS = SPECS / "resources/resource-manager/Microsoft.Resources/stable/2022-12-01/subscriptions.json"
COMMON = SPECS / "common-types/resource-management/v2/types.json"
# subscriptions.json's CloudError refers to common-types v1, which was not copied: v2's ErrorResponse
# stands in (the same envelope).
COMMON_V1 = SPECS / "common-types/resource-management/v1/types.json"
PRINCIPAL_STANDIN = {
    "definitions": {
        "Principal": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "displayName": {"type": "string"},
                "type": {"type": "string"},
                "email": {"type": "string"},
            },
        }
    }
}


@cache
def _registry() -> Registry:
    if not SOLUTIONS.exists():
        pytest.skip("the official REST specs are not available")
    specs = (SOLUTIONS, SOLUTIONS_2021, SUBSCRIPTIONS, DENY, COMMON)
    resources = [(p.as_uri(), json.loads(p.read_text(encoding="utf-8"))) for p in specs if p.exists()]
    resources.append(((DENY.parent / "common-types.json").as_uri(), PRINCIPAL_STANDIN))
    v1 = {"definitions": {"ErrorResponse": {"$ref": f"{COMMON.as_uri()}#/definitions/ErrorResponse"}}}
    resources.append((COMMON_V1.as_uri(), v1))
    return Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT4)) for uri, doc in resources
    )


def validate(spec: Path, definition: str, instance: Any) -> None:
    if not spec.exists():
        pytest.skip(f"{spec.name} is not among the available specs")
    schema = {"$ref": f"{spec.as_uri()}#/definitions/{definition}"}
    validator = Draft4Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
