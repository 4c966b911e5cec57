"""How a response differs between the api-versions a route accepts (API_VERSIONS below).

The emulator keeps one body per resource, in the newest shape; an older or newer version that the
specs (or the clients' generated models) give another shape is derived from it here:

- Microsoft.Solutions 2019-07-01 has no `systemData` (it came with the common Resource type in
  2021-07-01; 2021-07-01 and 2023-12-01-preview share every Application/ApplicationDefinition schema).
- Deny assignments 2024-07-01-preview add `denyAssignmentEffect` (`enforced` | `audit`; azure-mgmt-
  authorization 5.0.0b2's models); 2022-04-01 has no such property.
- Subscriptions and tenants 2016-06-01 predate `tenantId`, `managedByTenants` and `tags` on a
  subscription and everything but `id`/`tenantId` on a tenant (2022-12-01 is the emulator's shape).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]
Shaper = Callable[[Json], Json]

# Every api-version the stock clients send (Azure CLI 2.91, Az PowerShell) plus the specs' stable and
# preview versions; the shapers below say how a response differs between them.
API_VERSIONS: dict[str, frozenset[str]] = {
    # azure-mgmt-resource-subscriptions 1.0.0 and the Azure CLI send 2022-12-01.
    "subscriptions": frozenset({"2022-12-01", "2021-01-01", "2020-01-01", "2016-06-01"}),
    # azure-mgmt-managedapplications 1.0.0b2 sends 2023-12-01-preview; 2021-07-01 is the last stable;
    # `az managedapp` sends 2019-07-01 (hard-wired).
    "solutions": frozenset({"2023-12-01-preview", "2021-07-01", "2019-07-01"}),
    # azure-mgmt-authorization 4.0.0 sends 2022-04-01 for deny assignments and permissions.
    "authorization": frozenset({"2022-04-01"}),
    # `az role deny-assignment` (azure-mgmt-authorization 5.0.0b2) sends 2024-07-01-preview.
    "denyAssignments": frozenset({"2022-04-01", "2024-07-01-preview"}),
    # Resource groups and providers: Microsoft.Resources' stable versions; the Azure CLI sends 2024-11-01.
    "resources": frozenset(
        {
            "2020-06-01",
            "2020-08-01",
            "2020-10-01",
            "2021-01-01",
            "2021-04-01",
            "2022-09-01",
            "2023-07-01",
            "2024-03-01",
            "2024-07-01",
            "2024-11-01",
        }
    ),
    "managedservices": frozenset({"2022-10-01"}),
}

# The region list ARM quotes for Microsoft.Solutions (and the provider lookup returns).
LOCATIONS = ("eastus", "westeurope", "westus2")


def _each(body: Json, one: Shaper) -> Json:
    """Apply `one` to a resource or to every item of a list page."""
    if isinstance(body.get("value"), list) and "id" not in body:
        return {**body, "value": [one(item) if isinstance(item, dict) else item for item in body["value"]]}
    return one(body)


def _without_system_data(item: Json) -> Json:
    return {k: v for k, v in item.items() if k != "systemData"}


def _with_deny_effect(item: Json) -> Json:
    props = item.get("properties")
    if not isinstance(props, dict) or "denyAssignmentEffect" in props:
        return item
    out = copy.copy(item)
    out["properties"] = {**props, "denyAssignmentEffect": "enforced"}
    return out


_SUBSCRIPTION_2016 = (
    "id",
    "subscriptionId",
    "displayName",
    "state",
    "subscriptionPolicies",
    "authorizationSource",
)


def _subscription_2016(item: Json) -> Json:
    return {k: v for k, v in item.items() if k in _SUBSCRIPTION_2016}


def _tenant_2016(item: Json) -> Json:
    return {k: v for k, v in item.items() if k in ("id", "tenantId")}


# (route name, api-version) → how that version's body differs from the stored one.
SHAPERS: dict[tuple[str, str], Shaper] = {
    **{(route, "2019-07-01"): _without_system_data for route in ("app", "apps", "definition", "definitions")},
    ("deny", "2024-07-01-preview"): _with_deny_effect,
    ("subscriptions", "2016-06-01"): _subscription_2016,
    ("subscription", "2016-06-01"): _subscription_2016,
    ("tenants", "2016-06-01"): _tenant_2016,
}


def shaper_for(route: str, api_version: str) -> Shaper | None:
    one = SHAPERS.get((route, api_version))
    if one is None:
        return None
    return lambda body: _each(body, one)


# What `GET [/subscriptions/{s}]/providers/{namespace}` lists: the resource types the emulator
# serves, with every api-version it accepts for them (newest first, as ARM lists them: the Azure CLI
# takes the first non-preview one when `az resource` is given no --api-version).
PROVIDER_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "Microsoft.Solutions": (
        ("applications", "solutions"),
        ("applicationDefinitions", "solutions"),
        ("locations", "solutions"),
        ("locations/operationstatuses", "solutions"),
        ("locations/operationresults", "solutions"),
    ),
    "Microsoft.Authorization": (
        ("denyAssignments", "denyAssignments"),
        ("permissions", "authorization"),
    ),
    "Microsoft.Resources": (
        ("resourceGroups", "resources"),
        ("subscriptions", "subscriptions"),
        ("tenants", "subscriptions"),
        ("providers", "resources"),
    ),
}
