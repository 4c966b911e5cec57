"""`GET /metadata/endpoints`: the cloud's endpoints, served without authentication like ARM's.

`az cloud register --endpoint-resource-manager URL` reads `URL/metadata/endpoints?api-version=
2022-09-01` (azure/cli/command_modules/cloud/custom.py) and maps one cloud object
(azure/cli/core/cloud.py `_arm_to_cli_mapper`): `name`, `authentication.loginEndpoint` (the
authority), `authentication.audiences[0]` (the token resource), `resourceManager`, `suffixes`, and
optional endpoints. 2019-05-01 answers the same object inside a list (one per cloud, as
`ARM_CLOUD_METADATA_URL` readers expect); 2015-01-01 / 1.0 is the older Azure Stack shape
(`galleryEndpoint`, `graphEndpoint`, `portalEndpoint`, `authentication`) that Add-AzEnvironment
-ARMEndpoint reads.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from orchestrator.emulator.armhttp import json_response
from orchestrator.emulator.errors import ArmError, method_not_allowed, missing_api_version
from orchestrator.emulator.runtime import Runtime

# `az cloud register` appends "/metadata/endpoints" to an endpoint ending in "/": ARM takes "//" too.
METADATA_RE = re.compile(r"^/+metadata/endpoints/?$", re.IGNORECASE)
CLOUD_NAME = "AzureEmulator"
SINGLE = frozenset({"2022-09-01"})
LISTED = frozenset({"2019-05-01"})
LEGACY = frozenset({"2015-01-01", "1.0"})


def is_metadata_path(path: str) -> bool:
    return bool(METADATA_RE.match(path))


def _cloud(rt: Runtime) -> dict[str, Any]:
    base = rt.base_url
    return {
        "name": CLOUD_NAME,
        "portal": base,
        "resourceManager": base,
        "authentication": {
            "loginEndpoint": base,
            # The first audience is what clients ask tokens for; ARM accepts each of these.
            "audiences": [base, base.rstrip("/")],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": base,
        "graphAudience": base,
        "graph": base,
        "gallery": base,
        "batch": base,
        "sqlManagement": base,
        "microsoftGraphResourceId": base,
        "activeDirectoryDataLake": base,
        "suffixes": {
            "acrLoginServer": "azurecr.emulator.local",
            "sqlServerHostname": "database.emulator.local",
            "keyVaultDns": "vault.emulator.local",
            "storage": "core.emulator.local",
            "azureFrontDoorEndpointSuffix": "azurefd.emulator.local",
        },
    }


async def handle(rt: Runtime, request: web.Request) -> web.Response:
    if request.method != "GET":
        raise method_not_allowed(request.method)
    version = request.query.get("api-version")
    if not version:
        raise missing_api_version()
    cloud = _cloud(rt)
    if version in SINGLE:
        return json_response(cloud)
    if version in LISTED:
        return json_response([cloud])
    if version in LEGACY:
        return json_response(
            {
                "galleryEndpoint": rt.base_url,
                "graphEndpoint": rt.base_url,
                "portalEndpoint": rt.base_url,
                "authentication": {
                    "loginEndpoint": rt.base_url,
                    "audiences": cloud["authentication"]["audiences"],
                },
            }
        )
    listed = ",".join(sorted(SINGLE | LISTED | LEGACY, reverse=True))
    raise ArmError(
        400,
        "InvalidApiVersionParameter",
        f"The api-version '{version}' is invalid. The supported versions are '{listed}'.",
    )
