"""Api-version parity: every version the stock clients send, each in its own shape; the routes the Azure
CLI needs first (metadata, providers, resource groups, tenants); token audiences like Entra."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.emulator.testing import EmulatorHandle
from orchestrator.emulator.versions import API_VERSIONS
from tests.emulator.conftest import publisher_of, raw, signed_in, tenant_of, token_for
from tests.emulator.specs import COMMON, DENY, SOLUTIONS, SOLUTIONS_2021, SUBSCRIPTIONS, validate


def _first_app(emulator: EmulatorHandle, token: str, sub: str, version: str) -> dict[str, Any]:
    status, _, body = raw(
        emulator,
        "GET",
        f"subscriptions/{sub}/providers/Microsoft.Solutions/applications?api-version={version}",
        token,
    )
    assert status == 200, body
    return dict(body["value"][0])


def test_metadata_endpoints_unauthenticated_in_the_shape_the_cli_parses(emulator: EmulatorHandle) -> None:
    # `az cloud register` appends "/metadata/endpoints" to the ARM URL, which ends in "/".
    status, _, cloud = raw(emulator, "GET", emulator.url + "/metadata/endpoints?api-version=2022-09-01")
    assert status == 200
    assert cloud["resourceManager"] == emulator.url
    assert cloud["authentication"]["loginEndpoint"] == emulator.url
    assert cloud["authentication"]["audiences"][0] == emulator.url
    assert isinstance(cloud["suffixes"], dict) and cloud["name"]
    status, _, clouds = raw(emulator, "GET", "metadata/endpoints?api-version=2019-05-01")
    assert status == 200 and clouds == [cloud]
    status, _, legacy = raw(emulator, "GET", "metadata/endpoints?api-version=2015-01-01")
    assert status == 200 and legacy["authentication"]["loginEndpoint"] == emulator.url
    status, _, err = raw(emulator, "GET", "metadata/endpoints?api-version=2099-01-01")
    assert status == 400 and err["error"]["code"] == "InvalidApiVersionParameter"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("{url}/.default", "{url}"),  # the SDKs: resource without the trailing slash
        ("{url}//.default", "{url}/"),  # the Azure CLI: the ADAL resource keeps its slash
        ("https://management.core.windows.net//.default", "https://management.core.windows.net/"),
    ],
)
def test_token_audience_is_everything_before_default_and_arm_accepts_it(
    emulator: EmulatorHandle, fleet: dict[str, Any], scope: str, expected: str
) -> None:
    import base64
    import json
    import urllib.parse

    tenant = tenant_of(emulator, fleet)
    url = emulator.url.rstrip("/")
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.secret,
            "scope": scope.format(url=url),
        }
    )
    status, _, body = raw(
        emulator,
        "POST",
        f"{tenant.id}/oauth2/v2.0/token",
        body=None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        data=form.encode(),
    )
    assert status == 200, body
    payload = body["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == expected.format(url=url)
    status, _, subs = raw(emulator, "GET", "subscriptions?api-version=2022-12-01", body["access_token"])
    assert status == 200 and subs["value"]


def test_every_listed_version_is_accepted_and_unknown_ones_get_arms_error(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    _tenant, token, sub = signed_in(emulator, fleet)
    paths = {
        "subscriptions": "subscriptions",
        "solutions": f"subscriptions/{sub}/providers/Microsoft.Solutions/applications",
        "denyAssignments": f"subscriptions/{sub}/providers/Microsoft.Authorization/denyAssignments",
        "resources": f"subscriptions/{sub}/resourcegroups",
    }
    for family, path in paths.items():
        for version in API_VERSIONS[family]:
            status, _, body = raw(emulator, "GET", f"{path}?api-version={version}", token)
            assert status == 200, (family, version, body)
    status, _, body = raw(emulator, "GET", f"{paths['resources']}?api-version=2015-01-01", token)
    newest_first = ",".join(sorted(API_VERSIONS["resources"], reverse=True))
    assert status == 400
    assert body["error"] == {
        "code": "InvalidApiVersionParameter",
        "message": f"The api-version '2015-01-01' is invalid. The supported versions are '{newest_first}'.",
        "details": [],
        "additionalInfo": [],
    }
    status, _, body = raw(emulator, "GET", f"{paths['solutions']}?api-version=2018-06-01", token)
    assert status == 400 and body["error"]["code"] == "NoRegisteredProviderFound"
    assert (
        "The supported api-versions are '2023-12-01-preview, 2021-07-01, 2019-07-01'."
        in body["error"]["message"]
    )
    validate(COMMON, "ErrorResponse", body)


def test_each_solutions_version_answers_in_its_own_shape(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    _tenant, token, sub = signed_in(emulator, fleet)
    app = _first_app(emulator, token, sub, "2021-07-01")
    # A write stamps systemData (2021-07-01 and later); 2019-07-01 predates it.
    status, _, _ = raw(emulator, "PATCH", f"{app['id']}?api-version=2021-07-01", token, {"tags": {"x": "1"}})
    assert status == 202
    for version, spec in (("2021-07-01", SOLUTIONS_2021), ("2023-12-01-preview", SOLUTIONS)):
        status, _, body = raw(emulator, "GET", f"{app['id']}?api-version={version}", token)
        assert status == 200 and body["systemData"]["lastModifiedByType"] == "Application"
        validate(spec, "Application", body)
    status, _, old = raw(emulator, "GET", f"{app['id']}?api-version=2019-07-01", token)
    assert status == 200 and "systemData" not in old and old["id"] == app["id"]
    status, _, page = raw(
        emulator,
        "GET",
        f"subscriptions/{sub}/providers/Microsoft.Solutions/applications?api-version=2021-07-01",
        token,
    )
    validate(SOLUTIONS_2021, "ApplicationListResult", page)
    publisher = publisher_of(emulator, fleet)
    ptoken, psub = token_for(emulator, publisher), publisher.subscriptions[0]
    status, _, defs = raw(
        emulator,
        "GET",
        f"subscriptions/{psub}/providers/Microsoft.Solutions/applicationDefinitions?api-version=2021-07-01",
        ptoken,
    )
    assert status == 200 and defs["value"]
    validate(SOLUTIONS_2021, "ApplicationDefinitionListResult", defs)


def test_deny_assignments_2024_07_01_preview_carry_their_effect(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    _tenant, token, sub = signed_in(emulator, fleet)
    path = f"subscriptions/{sub}/providers/Microsoft.Authorization/denyAssignments"
    status, _, stable = raw(emulator, "GET", f"{path}?api-version=2022-04-01", token)
    assert status == 200 and all("denyAssignmentEffect" not in d["properties"] for d in stable["value"])
    validate(DENY, "DenyAssignmentListResult", stable)
    status, _, preview = raw(emulator, "GET", f"{path}?api-version=2024-07-01-preview", token)
    assert status == 200 and [d["id"] for d in preview["value"]] == [d["id"] for d in stable["value"]]
    assert {d["properties"]["denyAssignmentEffect"] for d in preview["value"]} == {"enforced"}


def test_subscriptions_and_tenants_match_2022_12_01_and_older_versions_drop_newer_fields(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant, token, sub = signed_in(emulator, fleet)
    status, _, subs = raw(emulator, "GET", "subscriptions?api-version=2022-12-01", token)
    validate(SUBSCRIPTIONS, "SubscriptionListResult", subs)
    status, _, one = raw(emulator, "GET", f"subscriptions/{sub}?api-version=2022-12-01", token)
    assert status == 200 and one["tenantId"] == tenant.id
    validate(SUBSCRIPTIONS, "Subscription", one)
    status, _, tenants = raw(emulator, "GET", "tenants?api-version=2022-12-01", token)
    assert status == 200 and [t["tenantId"] for t in tenants["value"]] == [tenant.id]
    # The spec marks `nextLink` required; ARM (and the emulator) leave it out on the last page.
    for item in tenants["value"]:
        validate(SUBSCRIPTIONS, "TenantIdDescription", item)
    status, _, old = raw(emulator, "GET", f"subscriptions/{sub}?api-version=2016-06-01", token)
    assert status == 200 and old["subscriptionId"] == sub and "tenantId" not in old
    status, _, old_tenants = raw(emulator, "GET", "tenants?api-version=2016-06-01", token)
    assert old_tenants["value"] == [{"id": f"/tenants/{tenant.id}", "tenantId": tenant.id}]


def test_providers_and_resource_groups(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    _tenant, token, sub = signed_in(emulator, fleet)
    status, _, provider = raw(
        emulator, "GET", f"subscriptions/{sub}/providers/microsoft.solutions?api-version=2024-11-01", token
    )
    assert status == 200 and provider["namespace"] == "Microsoft.Solutions"
    assert provider["registrationState"] == "Registered"
    apps = next(t for t in provider["resourceTypes"] if t["resourceType"] == "applications")
    # Newest first: `az resource` takes the first non-preview one.
    assert apps["apiVersions"] == ["2023-12-01-preview", "2021-07-01", "2019-07-01"]
    assert apps["locations"]
    status, _, tenant_level = raw(
        emulator, "GET", "providers/Microsoft.Authorization?api-version=2021-04-01", token
    )
    assert status == 200 and tenant_level["id"] == "/providers/Microsoft.Authorization"
    status, _, err = raw(
        emulator, "GET", f"subscriptions/{sub}/providers/Contoso.Nope?api-version=2024-11-01", token
    )
    assert status == 404 and err["error"]["code"] == "InvalidResourceNamespace"
    status, _, unauthenticated = raw(
        emulator, "GET", f"subscriptions/{sub}/providers/Microsoft.Solutions?api-version=2024-11-01"
    )
    assert status == 401 and unauthenticated["error"]["code"] == "AuthenticationFailed"
    status, _, groups = raw(
        emulator, "GET", f"subscriptions/{sub}/resourcegroups?api-version=2024-11-01", token
    )
    assert status == 200 and groups["value"]
    names = set()
    page: dict[str, Any] | None = groups
    while page is not None:
        names |= {g["name"] for g in page["value"]}
        link = page.get("nextLink")
        page = raw(emulator, "GET", link, token)[2] if link else None
    one = sorted(names)[0]
    status, _, group = raw(
        emulator, "GET", f"subscriptions/{sub}/resourceGroups/{one}?api-version=2024-11-01", token
    )
    assert status == 200 and group["name"] == one
    status, _, _ = raw(
        emulator, "POST", f"subscriptions/{sub}/resourcegroups?api-version=2024-11-01", token, {}
    )
    assert status == 405
