"""The emulator's model rules called directly, without a server: what ARM checks on an application or
definition write, the deny-assignment filters and listings, the subscriptions a caller sees, tokens."""

from __future__ import annotations

import copy
import time
from typing import Any

import jwt
import pytest

from orchestrator.emulator import applications, definitions, denies, directory
from orchestrator.emulator.applications import AppPath
from orchestrator.emulator.errors import ArmError
from orchestrator.emulator.fleet import generate
from orchestrator.emulator.state import Json, State
from orchestrator.emulator.tokens import TokenError, TokenService, unverified_claims

STAMP = {"createdBy": "me"}


@pytest.fixture(scope="module")
def fleet() -> State:
    return generate("tenants=2,subscriptions=1,apps=3", 1)


@pytest.fixture
def state(fleet: State) -> State:
    return State.from_json(copy.deepcopy(fleet.to_json()))


def _app(state: State, kind: str) -> tuple[AppPath, Json]:
    app = next(a for a in state.applications.values() if a["kind"] == kind)
    parts = app["id"].split("/")
    return AppPath(parts[2], parts[4], parts[8]), app


def _put_body(app: Json) -> Json:
    """What a client PUTs to update an app to its current definition or plan."""
    body: Json = {k: copy.deepcopy(app[k]) for k in ("kind", "location", "tags", "properties") if k in app}
    if "plan" in app:
        body["plan"] = dict(app["plan"])
    return body


def _code(call: Any) -> str:
    with pytest.raises(ArmError) as caught:
        call()
    return caught.value.code


def test_an_update_keeps_id_mrg_location_and_takes_the_definitions_authorizations(state: State) -> None:
    path, app = _app(state, "ServiceCatalog")
    body = _put_body(app)
    body["location"] = app["location"].upper()  # ARM compares locations loosely
    body["properties"]["applicationDefinitionId"] = app["properties"]["applicationDefinitionId"].replace(
        "app-v1", "app-v2"
    )
    new = applications.build(state, AppPath(path.sub.upper(), path.rg, path.name), body, app, STAMP)
    assert new["id"] == app["id"] and new["location"] == app["location"]
    assert new["properties"]["provisioningState"] == "Accepted"
    assert new["properties"]["applicationDefinitionId"].endswith("/app-v2")
    assert new["properties"]["authorizations"] == [
        {
            "principalId": state.tenants[state.publisher_tenant_id].principal_id,
            "roleDefinitionId": applications.OWNER_ROLE,
        }
    ]
    assert new["systemData"] is STAMP


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda b: b.pop("kind"), "InvalidApplicationKind"),
        (lambda b: b.update(kind="Other"), "InvalidApplicationKind"),
        (lambda b: b.update(kind="MarketPlace"), "ApplicationKindCannotBeChanged"),
        (lambda b: b.pop("location"), "LocationRequired"),
        (
            lambda b: b.update(location="westus2" if b["location"] != "westus2" else "eastus"),
            "InvalidResourceLocation",
        ),
        (lambda b: b.pop("properties"), "InvalidRequestContent"),
        (lambda b: b["properties"].pop("managedResourceGroupId"), "ManagedResourceGroupIdRequired"),
        (
            lambda b: b["properties"].update(managedResourceGroupId="/x"),
            "ManagedResourceGroupIdCannotBeChanged",
        ),
        (lambda b: b["properties"].pop("applicationDefinitionId"), "ApplicationDefinitionIdRequired"),
        (lambda b: b["properties"].update(applicationDefinitionId="/nope"), "ApplicationDefinitionNotFound"),
    ],
)
def test_each_bad_update_is_refused_with_arms_code(state: State, change: Any, code: str) -> None:
    path, app = _app(state, "ServiceCatalog")
    body = _put_body(app)
    change(body)
    assert _code(lambda: applications.build(state, path, body, app, STAMP)) == code


def test_a_new_app_needs_its_mrg_in_its_own_subscription_and_an_existing_group(state: State) -> None:
    path, app = _app(state, "ServiceCatalog")
    body = _put_body(app)
    new_path = AppPath(path.sub, path.rg, "ma-new")
    body["properties"]["managedResourceGroupId"] = "/subscriptions/other/resourceGroups/mrg-new"
    assert (
        _code(lambda: applications.build(state, new_path, body, None, STAMP))
        == "InvalidManagedResourceGroupId"
    )
    body["properties"]["managedResourceGroupId"] = f"/subscriptions/{path.sub}/resourceGroups/mrg-new"
    assert _code(lambda: applications.build(state, AppPath(path.sub, "rg-none", "x"), body, None, STAMP)) == (
        "ResourceGroupNotFound"
    )
    body["kind"] = "servicecatalog"
    new = applications.build(state, new_path, body, None, STAMP)
    assert new["kind"] == "ServiceCatalog" and new["id"].endswith("/applications/ma-new")
    applications.store(state, new, new=True)
    mrg = state.resource_groups[body["properties"]["managedResourceGroupId"].lower()]
    assert mrg["managedBy"] == new["id"] and mrg["location"] == new["location"]
    assert applications.get(state, new_path) is new


def test_marketplace_plans_must_be_whole_and_known(state: State) -> None:
    path, app = _app(state, "MarketPlace")
    body = _put_body(app)
    body["plan"] = {**app["plan"], "version": "2.0.0", "promotionCode": "X", "extra": 1}
    built = applications.build(state, path, body, app, STAMP)
    assert built["plan"] == {**app["plan"], "version": "2.0.0", "promotionCode": "X"}  # no "extra"
    body["plan"] = {**app["plan"], "version": "9.9.9"}
    assert _code(lambda: applications.build(state, path, body, app, STAMP)) == "InvalidMarketplacePlan"
    body["plan"] = {"publisher": "contoso-isv"}
    assert _code(lambda: applications.build(state, path, body, app, STAMP)) == "InvalidMarketplacePlan"
    assert applications.upgrade_plans(state, app) == [{**app["plan"], "version": "2.0.0"}]
    _, catalog = _app(state, "ServiceCatalog")
    assert applications.upgrade_plans(state, catalog) == []


def test_a_patch_lays_its_fields_over_the_stored_app(state: State) -> None:
    _, app = _app(state, "MarketPlace")
    merged = applications.merge_patch(
        app, {"tags": {"a": "b"}, "plan": {"version": "2.0.0"}, "properties": {"parameters": {"p": 1}}}
    )
    assert merged["tags"] == {"a": "b"} and merged["plan"]["version"] == "2.0.0"
    assert merged["plan"]["publisher"] == app["plan"]["publisher"]
    assert merged["properties"]["parameters"] == {"p": 1}
    assert merged["properties"]["managedResourceGroupId"] == app["properties"]["managedResourceGroupId"]
    assert app["plan"]["version"] == "1.0.0" and app["tags"] == {}  # the stored app is untouched


def test_system_data_keeps_the_creator_and_names_the_last_writer() -> None:
    first = applications.system_data("a", "t1", None)
    second = applications.system_data("b", "t2", {"systemData": first})
    assert (second["createdBy"], second["createdAt"]) == ("a", "t1")
    assert (second["lastModifiedBy"], second["lastModifiedAt"]) == ("b", "t2")


def test_definitions_need_a_lock_level_and_patch_only_tags(state: State) -> None:
    sub = state.publisher_subscription_id
    rg = applications.resource_group(state, sub, "rg-publisher")
    assert (
        _code(lambda: definitions.build(state, sub, rg, "d", {"properties": {}}, None))
        == "InvalidRequestContent"
    )
    new = definitions.build(state, sub, rg, "d", {"properties": {"lockLevel": "None"}}, None)
    assert new["location"] == rg["location"] and new["properties"]["provisioningState"] == "Succeeded"
    assert _code(lambda: definitions.patched(None, {}, rg="rg-publisher", name="d")) == "ResourceNotFound"
    patched = definitions.patched(
        new, {"tags": {"x": "y"}, "properties": {"lockLevel": "ReadOnly"}}, rg="r", name="d"
    )
    assert patched["tags"] == {"x": "y"} and patched["properties"]["lockLevel"] == "None"
    assert _code(lambda: definitions.get(state, sub, "rg-publisher", "d")) == "ResourceNotFound"
    assert definitions.get(state, sub.upper(), "RG-PUBLISHER", "APP-V1")["name"] == "app-v1"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", {}),
        ("atScope()", {"atScope": ""}),
        ("atScope() and principalId eq 'P'", {"atScope": "", "principalId": "P"}),
        (
            "denyAssignmentName eq 'n' AND gdprExportPrincipalId eq 'g'",
            {"denyAssignmentName": "n", "gdprExportPrincipalId": "g"},
        ),
    ],
)
def test_deny_filters_arm_documents(text: str, parsed: dict[str, str]) -> None:
    assert denies.parse_filter(text) == parsed


@pytest.mark.parametrize(
    ("text", "code"),
    [("principalId eq P", "InvalidFilterInQueryString"), ("roleName eq 'x'", "UnsupportedQuery")],
)
def test_other_deny_filters_are_refused(text: str, code: str) -> None:
    assert _code(lambda: denies.parse_filter(text)) == code


def _listed(state: State, scope: str, text: str, tenant: str) -> list[Json]:
    ranges, keep = denies.listing(state, scope, text, tenant)
    return [da for _, da in state.deny_assignments.scan(ranges, None) if keep(da)]


def test_deny_listings_by_scope_filter_and_tenant(state: State) -> None:
    _, app = _app(state, "ServiceCatalog")
    mrg = app["properties"]["managedResourceGroupId"]
    sub = f"/subscriptions/{app['id'].split('/')[2]}"
    tenant = state.subscriptions[sub.split("/")[2].lower()].tenant_id
    at_mrg = _listed(state, mrg, "atScope()", tenant)
    assert at_mrg and all(da["properties"]["scope"].lower() == mrg.lower() for da in at_mrg)
    in_sub = _listed(state, sub, "", tenant)
    assert {d["id"] for d in at_mrg} < {d["id"] for d in in_sub}
    assert _listed(state, sub, "atScope()", tenant) == []  # none sits at the subscription itself
    everything = _listed(state, "", "", tenant)
    assert {d["id"] for d in everything} == {d["id"] for d in _listed(state, sub, "", tenant)}
    assert _listed(state, "", "", "no-such-tenant") == []
    name = at_mrg[0]["properties"]["denyAssignmentName"]
    assert _listed(state, mrg, f"denyAssignmentName eq '{name}'", tenant) == [
        d for d in at_mrg if d["properties"]["denyAssignmentName"] == name
    ]
    assert denies.get(state, mrg, at_mrg[0]["name"]) == at_mrg[0]
    assert _code(lambda: denies.get(state, mrg, "nope")) == "DenyAssignmentNotFound"


def test_a_tenant_sees_its_own_subscriptions_and_the_bodies_arm_gives(state: State) -> None:
    customers = [t for t in state.tenants.values() if t.role == "customer"]
    subs = directory.visible_subscriptions(state, customers[0].id)
    assert [s.tenant_id for s in subs] == [customers[0].id]
    body = directory.subscription_json(subs[0], state)
    assert body["id"] == f"/subscriptions/{subs[0].id}" and body["managedByTenants"] == []
    assert directory.tenant_json(customers[0])["defaultDomain"] == "contoso001.onmicrosoft.com"
    assert directory.provider_json("microsoft.solutions", None)["namespace"] == "Microsoft.Solutions"
    assert _code(lambda: directory.provider_json("Nope.Nope", None)) == "InvalidResourceNamespace"
    read_only = customers[-1]
    sub = state.subscriptions_of(read_only.id)[0]
    assert directory.permissions(state, sub, "/rg", read_only, read_only.id, "o")[0]["actions"] == ["*/read"]


def test_tokens_are_hs256_jwts_with_the_claims_clients_read() -> None:
    service = TokenService(b"k" * 32, lifetime=60)
    token, lifetime = service.issue({"aud": "https://x/", "tid": "t", "oid": "o"})
    assert lifetime == 60
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": "emulator"}
    claims = service.verify(token)
    assert claims["aud"] == "https://x/" and claims["exp"] - claims["iat"] == 60
    assert claims["nbf"] == claims["iat"] - 1
    assert unverified_claims(token) == claims
    assert unverified_claims("garbage") is None


def test_tokens_refused_with_arms_codes() -> None:
    service = TokenService(b"k" * 32, lifetime=60)
    token, _ = service.issue({"tid": "t"})
    other, _ = TokenService(b"j" * 32).issue({"tid": "t"})
    for bad in ("garbage", "a.b.c", other, token[:-2]):
        with pytest.raises(TokenError) as caught:
            service.verify(bad)
        assert caught.value.code == "AuthenticationFailed"
    expired = jwt.encode({"exp": int(time.time()) - 5}, b"k" * 32, algorithm="HS256")
    with pytest.raises(TokenError) as caught:
        service.verify(expired)
    assert caught.value.code == "ExpiredAuthenticationToken"
