"""ARM route handlers: subscriptions, applications (with LROs), definitions, deny assignments."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from orchestrator.emulator import lighthouse, lro
from orchestrator.emulator.arm_routes import API_VERSIONS, LOCATIONS, Ctx, Handler, keyed_page, page_of
from orchestrator.emulator.armhttp import OPERATION_FAULTS_KEY, ArmError, json_response, retry_after_headers
from orchestrator.emulator.derive import EVERYONE
from orchestrator.emulator.index import EXACT, subscription_bucket
from orchestrator.emulator.state import Json, State, Subscription, iso, now
from orchestrator.emulator.versions import PROVIDER_TYPES

# ---- helpers -------------------------------------------------------------------------------------


def _sub_json(sub: Subscription, state: State) -> Json:
    return {
        "id": f"/subscriptions/{sub.id}",
        "subscriptionId": sub.id,
        "tenantId": sub.tenant_id,
        "displayName": sub.display_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
        "managedByTenants": [{"tenantId": t} for t in lighthouse.managed_by_tenants(state, sub.id)],
        "tags": {},
    }


async def _body(ctx: Ctx) -> Json:
    raw = await ctx.request.read()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise ArmError(
            400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
        ) from None
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def _rg_or_404(ctx: Ctx) -> Json:
    sub, rg = ctx.groups["sub"], ctx.groups["rg"]
    found = ctx.rt.state.resource_groups.get(f"/subscriptions/{sub}/resourcegroups/{rg}".lower())
    if found is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    return found


def _app_key(ctx: Ctx) -> str:
    g = ctx.groups
    rg = f"/subscriptions/{g['sub']}/resourcegroups/{g['rg']}"
    return f"{rg}/providers/microsoft.solutions/applications/{g['name']}".lower()


def _not_found(kind: str, name: str, rg: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please "
        "go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def _busy(ctx: Ctx, key: str) -> None:
    """Refuse a write while another operation on the app runs (and count it)."""
    op_id = ctx.rt.state.in_flight.get(key)
    if op_id is not None:
        lro.record_conflict(ctx.rt, key, ctx.method)
        raise ArmError(
            409,
            "AnotherOperationInProgress",
            f"Another operation ('{op_id}') is in progress on the managed application "
            f"'{ctx.groups['name']}'. "
            "Wait for it to finish and retry.",
        )


def _op_headers(ctx: Ctx, op_id: str, location: str, *, with_location: bool) -> dict[str, str]:
    sub = ctx.groups["sub"]
    base = f"{ctx.rt.base_url}subscriptions/{sub}/providers/Microsoft.Solutions/locations/{location}"
    headers = retry_after_headers(ctx.rt.scaled(ctx.rt.settings.poll_seconds))
    if with_location:
        headers["Location"] = f"{base}/operationResults/{op_id}?api-version={ctx.api_version}"
    else:
        headers["Azure-AsyncOperation"] = f"{base}/operationStatuses/{op_id}?api-version={ctx.api_version}"
    return headers


# ---- subscriptions -------------------------------------------------------------------------------


async def list_subscriptions(ctx: Ctx) -> web.Response:
    """The caller's tenant's subscriptions, then those delegated to it (Lighthouse), as ARM lists them."""
    state = ctx.rt.state
    tid = str(ctx.claims.get("tid", ""))
    subs = state.subscriptions_of(tid)
    own = {s.id.lower() for s in subs}
    subs += [
        state.subscriptions[s.lower()]
        for s in lighthouse.delegated_subscription_ids(state, tid)
        if s.lower() not in own
    ]
    return json_response(page_of(ctx, [_sub_json(s, state) for s in subs]))


async def get_subscription(ctx: Ctx) -> web.Response:
    sub = ctx.rt.state.subscriptions[ctx.groups["sub"].lower()]
    return json_response(_sub_json(sub, ctx.rt.state))


async def list_tenants(ctx: Ctx) -> web.Response:
    tenant = ctx.tenant
    items = []
    if tenant is not None:
        items.append(
            {
                "id": f"/tenants/{tenant.id}",
                "tenantId": tenant.id,
                "tenantCategory": "Home",
                "displayName": tenant.name,
                "defaultDomain": tenant.name.lower().replace(" ", "") + ".onmicrosoft.com",
                "domains": [tenant.name.lower().replace(" ", "") + ".onmicrosoft.com"],
                "tenantType": "AAD",
            }
        )
    return json_response(page_of(ctx, items))


async def get_resource_group(ctx: Ctx) -> web.Response:
    return json_response(_rg_or_404(ctx))


async def list_resource_groups(ctx: Ctx) -> web.Response:
    prefix = f"/subscriptions/{ctx.groups['sub']}/resourcegroups/".lower()
    groups = ctx.rt.state.resource_groups
    items = [groups[k] for k in sorted(k for k in groups if k.startswith(prefix))]
    return json_response(page_of(ctx, items))


_LOCATION_NAMES = {"eastus": "East US", "westeurope": "West Europe", "westus2": "West US 2"}


async def get_provider(ctx: Ctx) -> web.Response:
    """A resource provider with its types, locations and api-versions (what `az resource` reads to
    pick an api-version when given none)."""
    wanted = ctx.groups["namespace"].lower()
    namespace = next((n for n in PROVIDER_TYPES if n.lower() == wanted), None)
    if namespace is None:
        raise ArmError(
            404, "InvalidResourceNamespace", f"The resource namespace '{ctx.groups['namespace']}' is invalid."
        )
    regional = namespace == "Microsoft.Solutions"
    types = [
        {
            "resourceType": resource_type,
            "locations": [_LOCATION_NAMES[loc] for loc in LOCATIONS] if regional else [],
            "apiVersions": sorted(API_VERSIONS[family], reverse=True),
            "capabilities": "None",
        }
        for resource_type, family in PROVIDER_TYPES[namespace]
    ]
    scope = f"/subscriptions/{ctx.groups['sub']}" if "sub" in ctx.groups else ""
    body: Json = {"id": f"{scope}/providers/{namespace}", "namespace": namespace, "resourceTypes": types}
    if scope:
        body["registrationState"] = "Registered"
        body["registrationPolicy"] = "RegistrationRequired"
    return json_response(body)


# ---- applications --------------------------------------------------------------------------------


async def application(ctx: Ctx) -> web.Response:
    if ctx.method == "GET":
        _rg_or_404(ctx)
        app = ctx.rt.state.applications.get(_app_key(ctx))
        if app is None:
            raise _not_found("Microsoft.Solutions/applications", ctx.groups["name"], ctx.groups["rg"])
        return json_response(app)
    if ctx.method == "PUT":
        return await _put_application(ctx)
    if ctx.method == "PATCH":
        return await _patch_application(ctx)
    if ctx.method == "DELETE":
        return _delete_application(ctx)
    raise _method_not_allowed(ctx)


def _method_not_allowed(ctx: Ctx) -> ArmError:
    return ArmError(
        405, "MethodNotAllowed", f"The requested resource does not support http method '{ctx.method}'."
    )


def _validate_and_build(ctx: Ctx, body: Json, existing: Json | None) -> Json:
    """What ARM checks on a PUT of Microsoft.Solutions/applications; returns the new app body."""
    state = ctx.rt.state
    rg = _rg_or_404(ctx)
    kind = body.get("kind")
    if not isinstance(kind, str) or kind.lower() not in ("servicecatalog", "marketplace"):
        raise ArmError(
            400,
            "InvalidApplicationKind",
            "The property 'kind' is required and must be 'ServiceCatalog' or 'MarketPlace'.",
        )
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The property 'properties' is required.")
    mrg = props.get("managedResourceGroupId")
    if not isinstance(mrg, str) or not mrg:
        raise ArmError(
            400, "ManagedResourceGroupIdRequired", "The property 'managedResourceGroupId' is required."
        )
    if existing is not None:
        norm = location.replace(" ", "").lower()
        if norm != str(existing.get("location", "")).replace(" ", "").lower():
            raise ArmError(
                400,
                "InvalidResourceLocation",
                f"The resource '{existing['name']}' already exists in location '{existing['location']}' in "
                "resource "
                f"group '{rg['name']}'. A resource with the same name cannot be created in location "
                f"'{location}'. "
                "Please select a new resource name.",
            )
        old_mrg = existing["properties"]["managedResourceGroupId"]
        if mrg.lower() != old_mrg.lower():
            raise ArmError(
                400,
                "ManagedResourceGroupIdCannotBeChanged",
                f"The managed resource group id of the application '{existing['name']}' cannot be changed "
                "from "
                f"'{old_mrg}' to '{mrg}'.",
            )
        if kind.lower() != str(existing.get("kind", "")).lower():
            raise ArmError(
                400, "ApplicationKindCannotBeChanged", "The kind of a managed application cannot change."
            )
        kind = existing["kind"]
    else:
        kind = "MarketPlace" if kind.lower() == "marketplace" else "ServiceCatalog"
        mrg_sub = mrg.split("/")[2] if mrg.lower().startswith("/subscriptions/") else ""
        if mrg_sub.lower() != ctx.groups["sub"].lower():
            raise ArmError(
                400,
                "InvalidManagedResourceGroupId",
                f"The managed resource group '{mrg}' must be in the application's subscription.",
            )
    sub_id = state.subscriptions[ctx.groups["sub"].lower()].id
    rg_id = f"/subscriptions/{sub_id}/resourceGroups/{rg['name']}"
    app_id = (
        existing["id"]
        if existing is not None
        else f"{rg_id}/providers/Microsoft.Solutions/applications/{ctx.groups['name']}"
    )
    new_props: Json = {
        "managedResourceGroupId": existing["properties"]["managedResourceGroupId"] if existing else mrg,
        "parameters": props.get("parameters", (existing or {}).get("properties", {}).get("parameters", {})),
        "outputs": (existing or {}).get("properties", {}).get("outputs", {}),
        "provisioningState": "Accepted",
        "publisherTenantId": state.publisher_tenant_id,
        # Customer-managed applications stay so across updates.
        "managementMode": (existing or {}).get("properties", {}).get("managementMode", "Managed"),
    }
    if "jitAccessPolicy" in props:
        new_props["jitAccessPolicy"] = props["jitAccessPolicy"]
    app: Json = {
        "id": app_id,
        "name": app_id.rsplit("/", 1)[1],
        "type": "Microsoft.Solutions/applications",
        "location": existing["location"] if existing else location,
        "tags": body.get("tags", (existing or {}).get("tags", {})),
        "kind": kind,
        "properties": new_props,
    }
    if kind == "MarketPlace":
        plan = body.get("plan")
        if not isinstance(plan, dict) or not all(
            plan.get(k) for k in ("publisher", "product", "name", "version")
        ):
            raise ArmError(
                400,
                "InvalidMarketplacePlan",
                "A MarketPlace application needs a plan with publisher, product, name and version.",
            )
        app["plan"] = {
            k: plan[k] for k in ("publisher", "product", "name", "version", "promotionCode") if k in plan
        }
    else:
        def_id = props.get("applicationDefinitionId")
        if not isinstance(def_id, str) or not def_id:
            raise ArmError(
                400,
                "ApplicationDefinitionIdRequired",
                "The property 'applicationDefinitionId' is required for a ServiceCatalog application.",
            )
        new_props["applicationDefinitionId"] = def_id
    if "identity" in body:
        app["identity"] = body["identity"]
    app["systemData"] = _system_data(ctx, existing)
    try:
        _, _, _, principals = lro.policy_for(state, app)
    except lro.PolicyError as exc:
        raise ArmError(400, exc.code, exc.message) from None
    new_props["authorizations"] = [
        {"principalId": p, "roleDefinitionId": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"} for p in principals
    ]
    return app


def _system_data(ctx: Ctx, existing: Json | None) -> Json:
    """ARM's systemData: who created the resource and who last wrote it (a service principal here)."""
    who, stamp = str(ctx.claims.get("oid", "")), iso(now())
    created = (existing or {}).get("systemData") or {}
    return {
        "createdBy": created.get("createdBy", who),
        "createdByType": created.get("createdByType", "Application"),
        "createdAt": created.get("createdAt", stamp),
        "lastModifiedBy": who,
        "lastModifiedByType": "Application",
        "lastModifiedAt": stamp,
    }


async def _put_application(ctx: Ctx) -> web.Response:
    state = ctx.rt.state
    key = _app_key(ctx)
    body = await _body(ctx)
    # No await between the busy check and starting the operation: two concurrent writes can't both pass.
    _busy(ctx, key)
    existing = state.applications.get(key)
    app = _validate_and_build(ctx, body, existing)
    return _start_write(
        ctx, app, existing, "create" if existing is None else "update", 201 if existing is None else 200
    )


async def _patch_application(ctx: Ctx) -> web.Response:
    state = ctx.rt.state
    key = _app_key(ctx)
    patch = await _body(ctx)
    _rg_or_404(ctx)
    existing = state.applications.get(key)
    if existing is None:
        raise _not_found("Microsoft.Solutions/applications", ctx.groups["name"], ctx.groups["rg"])
    _busy(ctx, key)  # after the last await, see _put_application
    merged = copy.deepcopy(existing)
    for field in ("tags", "identity"):
        if field in patch:
            merged[field] = patch[field]
    if isinstance(patch.get("plan"), dict):
        merged["plan"] = {**(merged.get("plan") or {}), **patch["plan"]}
    if "kind" in patch:
        merged["kind"] = patch["kind"]
    if isinstance(patch.get("properties"), dict):
        merged["properties"] = {**merged["properties"], **patch["properties"]}
    app = _validate_and_build(ctx, merged, existing)
    return _start_write(ctx, app, existing, "update", 202)


def _start_write(ctx: Ctx, app: Json, existing: Json | None, kind: str, status: int) -> web.Response:
    state = ctx.rt.state
    faults = ctx.request.get(OPERATION_FAULTS_KEY, [])
    if existing is None:
        mrg = app["properties"]["managedResourceGroupId"]
        state.resource_groups.setdefault(
            mrg.lower(),
            {
                "id": mrg,
                "name": mrg.rsplit("/", 1)[1],
                "type": "Microsoft.Resources/resourceGroups",
                "location": app["location"],
                "managedBy": app["id"],
                "properties": {"provisioningState": "Succeeded"},
            },
        )
    state.applications[app["id"].lower()] = app
    op = lro.start_operation(ctx.rt, kind=kind, method=ctx.method, app=app, previous=existing, faults=faults)
    lro.record_write_status(ctx.rt, op, status)
    ctx.rt.notifier.write_started(ctx.method, app)
    return json_response(app, status, _op_headers(ctx, op.id, op.location, with_location=False))


def _delete_application(ctx: Ctx) -> web.Response:
    state = ctx.rt.state
    key = _app_key(ctx)
    app = state.applications.get(key)
    if app is None:
        return web.Response(status=204)
    _busy(ctx, key)
    app["properties"]["provisioningState"] = "Deleting"
    faults = ctx.request.get(OPERATION_FAULTS_KEY, [])
    op = lro.start_operation(ctx.rt, kind="delete", method="DELETE", app=app, previous=None, faults=faults)
    lro.record_write_status(ctx.rt, op, 202)
    ctx.rt.notifier.write_started("DELETE", app)
    headers = _op_headers(ctx, op.id, op.location, with_location=False)
    headers.update(_op_headers(ctx, op.id, op.location, with_location=True))
    return web.Response(status=202, headers=headers)


async def application_action(ctx: Ctx) -> web.Response:
    action = ctx.groups["action"].lower()
    if ctx.method != "POST":
        raise _method_not_allowed(ctx)
    state = ctx.rt.state
    key = _app_key(ctx)
    _rg_or_404(ctx)
    app = state.applications.get(key)
    if app is None:
        raise _not_found("Microsoft.Solutions/applications", ctx.groups["name"], ctx.groups["rg"])
    if action == "refreshpermissions":
        _busy(ctx, key)
        faults = ctx.request.get(OPERATION_FAULTS_KEY, [])
        op = lro.start_operation(
            ctx.rt,
            kind="refreshPermissions",
            method="POST",
            app=app,
            previous=copy.deepcopy(app),
            faults=faults,
        )
        lro.record_write_status(ctx.rt, op, 202)
        app["properties"]["provisioningState"] = "Accepted"
        return web.Response(status=202, headers=_op_headers(ctx, op.id, op.location, with_location=True))
    if action == "listallowedupgradeplans":
        plans: list[Json] = []
        if app.get("kind") == "MarketPlace" and app.get("plan"):
            current = app["plan"]
            for offer in state.offers:
                same = all(
                    str(offer[k]).lower() == str(current.get(k, "")).lower()
                    for k in ("publisher", "product", "name")
                )
                if same and offer["version"] != current.get("version"):
                    plans.append({k: offer[k] for k in ("publisher", "product", "name", "version")})
        return json_response({"value": plans})
    raise ArmError(
        404, "InvalidResourceType", f"The resource type 'applications/{action}' could not be found."
    )


def _by_id_ranges(ctx: Ctx) -> list[tuple[str, str]]:
    """The index range of a list by subscription or by resource group (ids under that prefix)."""
    sub = ctx.groups["sub"].lower()
    if "rg" in ctx.groups:
        _rg_or_404(ctx)
        return [(sub, f"/subscriptions/{sub}/resourcegroups/{ctx.groups['rg'].lower()}/providers/")]
    return [(sub, f"/subscriptions/{sub}/")]


async def list_applications(ctx: Ctx) -> web.Response:
    index = ctx.rt.state.applications
    ranges = _by_id_ranges(ctx)
    return json_response(keyed_page(ctx, lambda after: index.scan(ranges, after)))


async def operation(ctx: Ctx) -> web.Response:
    op = ctx.rt.state.operations.get(ctx.groups["op"])
    if op is None or op.subscription_id.lower() != ctx.groups["sub"].lower():
        raise ArmError(404, "OperationNotFound", f"The operation '{ctx.groups['op']}' could not be found.")
    running = op.status == "InProgress"
    retry = retry_after_headers(ctx.rt.scaled(ctx.rt.settings.poll_seconds)) if running else {}
    if ctx.groups["opkind"].lower() == "operationstatuses":
        return json_response(lro.status_body(ctx.rt, op), 200, retry)
    # operationResults (the Location URL): 202 while running, 204 when done, the error when failed.
    if running:
        retry["Location"] = str(ctx.request.url.with_scheme("https"))
        return web.Response(status=202, headers=retry)
    err = op.error()
    if err is not None:
        status = 500 if op.fail_code == "InternalServerError" else 400
        return json_response({"error": err}, status)
    return web.Response(status=204)


# ---- application definitions ---------------------------------------------------------------------


def _def_key(ctx: Ctx) -> str:
    g = ctx.groups
    return (
        f"/subscriptions/{g['sub']}/resourcegroups/{g['rg']}/providers/microsoft.solutions/"
        f"applicationdefinitions/{g['name']}"
    ).lower()


async def definition(ctx: Ctx) -> web.Response:
    state = ctx.rt.state
    key = _def_key(ctx)
    if ctx.method == "GET":
        found = state.definitions.get(key)
        if found is None:
            raise _not_found(
                "Microsoft.Solutions/applicationDefinitions", ctx.groups["name"], ctx.groups["rg"]
            )
        return json_response(found)
    if ctx.method == "DELETE":
        return web.Response(status=200 if state.definitions.pop(key, None) else 204)
    if ctx.method not in ("PUT", "PATCH"):
        raise _method_not_allowed(ctx)
    rg = _rg_or_404(ctx)
    body = await _body(ctx)
    existing = state.definitions.get(key)
    if ctx.method == "PATCH":
        if existing is None:
            raise _not_found(
                "Microsoft.Solutions/applicationDefinitions", ctx.groups["name"], ctx.groups["rg"]
            )
        new = copy.deepcopy(existing)
        if "tags" in body:
            new["tags"] = body["tags"]
        state.definitions[key] = new
        return json_response(new)
    props = body.get("properties")
    if not isinstance(props, dict) or props.get("lockLevel") not in ("None", "ReadOnly", "CanNotDelete"):
        raise ArmError(
            400,
            "InvalidRequestContent",
            "The property 'properties.lockLevel' is required and must be None, ReadOnly or CanNotDelete.",
        )
    sub_id = state.subscriptions[ctx.groups["sub"].lower()].id
    def_id = (
        existing["id"]
        if existing
        else f"/subscriptions/{sub_id}/resourceGroups/{rg['name']}/providers/Microsoft.Solutions/"
        f"applicationDefinitions/{ctx.groups['name']}"
    )
    new_def: Json = {
        "id": def_id,
        "name": def_id.rsplit("/", 1)[1],
        "type": "Microsoft.Solutions/applicationDefinitions",
        "location": body.get("location", rg["location"]),
        "tags": body.get("tags", {}),
        "properties": {**props, "provisioningState": "Succeeded"},
    }
    state.definitions[key] = new_def
    return json_response(new_def, 200 if existing else 201)


async def list_definitions(ctx: Ctx) -> web.Response:
    index = ctx.rt.state.definitions
    ranges = _by_id_ranges(ctx)
    return json_response(keyed_page(ctx, lambda after: index.scan(ranges, after)))


# ---- deny assignments and permissions ------------------------------------------------------------


def _parse_filter(raw: str) -> dict[str, str]:
    """The $filter forms the deny-assignment spec documents: atScope(), denyAssignmentName eq '..',
    principalId eq '..', gdprExportPrincipalId eq '..' (joined with 'and')."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in raw.replace(" AND ", " and ").split(" and ")):
        if not part:
            continue
        if part.replace(" ", "").lower() == "atscope()":
            out["atScope"] = ""
            continue
        name, sep, value = part.partition(" eq ")
        name, value = name.strip(), value.strip()
        if not sep or len(value) < 2 or value[0] != "'" or value[-1] != "'":
            raise ArmError(400, "InvalidFilterInQueryString", f"The filter '{raw}' is not supported.")
        if name not in ("denyAssignmentName", "principalId", "gdprExportPrincipalId"):
            raise ArmError(400, "UnsupportedQuery", f"The filter property '{name}' is not supported.")
        out[name] = value[1:-1]
    return out


def _is_within(child: str, parent: str) -> bool:
    return child == parent or parent == "" or child.startswith(parent + "/")


async def deny_assignments(ctx: Ctx) -> web.Response:
    state = ctx.rt.state
    scope = ctx.groups.get("scope", "").rstrip("/")
    name = ctx.groups.get("name")
    if name is not None:
        key = f"{scope}/providers/microsoft.authorization/denyassignments/{name}".lower()
        found = state.deny_assignments.get(key)
        if found is None:
            raise ArmError(
                404,
                "DenyAssignmentNotFound",
                f"The deny assignment '{name}' does not exist at scope '{scope}'.",
            )
        return json_response(found)
    filt = _parse_filter(ctx.request.query.get("$filter", ""))
    lscope = scope.lower()
    tenant_subs: set[str] | None = None
    if not lscope.startswith("/subscriptions/"):
        # Above subscriptions (root or a management group): only the caller's tenant's subscriptions.
        tenant_subs = {s.id.lower() for s in state.subscriptions_of(str(ctx.claims.get("tid", "")))}
    ranges = _deny_ranges(lscope, at_scope="atScope" in filt, tenant_subs=tenant_subs)
    index = state.deny_assignments

    def rows(after: str | None) -> Iterator[tuple[str, Json]]:
        return (
            (k, da) for k, da in index.scan(ranges, after) if _deny_matches(da, lscope, filt, tenant_subs)
        )

    return json_response(keyed_page(ctx, rows))


def _deny_ranges(lscope: str, *, at_scope: bool, tenant_subs: set[str] | None) -> list[tuple[str, str]]:
    """Index ranges holding every deny assignment a listing at `lscope` can return (a superset:
    `_deny_matches` decides). Deny assignments sort by scope + EXACT + id, so the ones at a scope
    start with `scope + EXACT` and the ones at or below it with `scope + "/"`."""
    # Above: the scopes `lscope` lies under (the root "" included), each only its own entries.
    ranges = [(subscription_bucket(lscope[:i]), lscope[:i] + EXACT) for i, c in enumerate(lscope) if c == "/"]
    if at_scope:
        ranges.append((subscription_bucket(lscope), lscope + EXACT))
        return ranges
    below = lscope + "/" if lscope else ""  # root: everything
    if tenant_subs is None:
        ranges.append((subscription_bucket(lscope), below))
    else:
        ranges += [(bucket, below) for bucket in ("", *sorted(tenant_subs))]
    return ranges


def _deny_matches(da: Json, lscope: str, filt: dict[str, str], tenant_subs: set[str] | None) -> bool:
    props = da["properties"]
    da_scope = props["scope"].lower()
    if tenant_subs is not None and da_scope.split("/")[2:3] and da_scope.split("/")[2] not in tenant_subs:
        return False
    if "atScope" in filt:
        if not _is_within(lscope, da_scope):  # at or above the requested scope
            return False
    elif not (_is_within(da_scope, lscope) or _is_within(lscope, da_scope)):
        return False
    if "denyAssignmentName" in filt and props.get("denyAssignmentName") != filt["denyAssignmentName"]:
        return False
    if "principalId" in filt:
        ids = {p["id"].lower() for p in props.get("principals", [])}
        if filt["principalId"].lower() not in ids and EVERYONE not in ids:
            return False
    if "gdprExportPrincipalId" in filt:
        ids = {p["id"].lower() for p in props.get("principals", []) + props.get("excludePrincipals", [])}
        if filt["gdprExportPrincipalId"].lower() not in ids:
            return False
    return True


async def permissions(ctx: Ctx) -> web.Response:
    rg = _rg_or_404(ctx)
    sub = ctx.rt.state.subscriptions[ctx.groups["sub"].lower()]
    tid, oid = str(ctx.claims.get("tid", "")), str(ctx.claims.get("oid", ""))
    if sub.tenant_id.lower() != tid.lower():
        # Cross-tenant: the delegated roles, or (publisher) what the app's authorizations give on its MRG.
        roles = lighthouse.delegated_roles(ctx.rt.state, str(rg["id"]), tid, oid)
        if roles is None:
            roles = [lighthouse.READER]  # a publisher-readable MRG: reads only, as far as this tool cares
        return json_response(page_of(ctx, lighthouse.role_permissions(roles)))
    access = ctx.tenant.publisher_access if ctx.tenant is not None else "full"
    value: list[dict[str, Any]] = []
    if access == "full":
        value.append({"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []})
    elif access == "read-only":
        value.append({"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []})
    return json_response(page_of(ctx, value))


async def registrations(ctx: Ctx) -> web.Response:
    """Registration definitions or assignments at a subscription or resource group (GET only)."""
    state = ctx.rt.state
    kind = ctx.groups["kind"].lower()
    store = (
        state.registration_definitions
        if kind == "registrationdefinitions"
        else state.registration_assignments
    )
    scope = ctx.groups["scope"].lower().rstrip("/")
    name = ctx.groups.get("name")
    prefix = f"{scope}/providers/microsoft.managedservices/{kind}/"
    if name is not None:
        found = store.get(prefix + name.lower())
        if found is None:
            raise ArmError(404, "RegistrationNotFound", f"The registration '{name}' could not be found.")
        return json_response(found)
    items = [v for k, v in sorted(store.items()) if k.startswith(prefix)]
    return json_response(page_of(ctx, items))


HANDLERS: dict[str, Handler] = {
    "subscriptions": list_subscriptions,
    "subscription": get_subscription,
    "tenants": list_tenants,
    "app": application,
    "app_action": application_action,
    "apps": list_applications,
    "op": operation,
    "definition": definition,
    "definitions": list_definitions,
    "permissions": permissions,
    "deny": deny_assignments,
    "rg": get_resource_group,
    "rgs": list_resource_groups,
    "provider": get_provider,
    "lighthouse": registrations,
}
