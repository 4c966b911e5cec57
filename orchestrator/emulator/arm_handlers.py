"""ARM route handlers for Microsoft.Solutions: applications (with LROs), operations, definitions.

Thin: each parses the request, asks the model (applications.py, definitions.py) and starts or reads
the operation (lro.py). The other routes' handlers are in arm_scopes.py; HANDLERS names them all.
"""

from __future__ import annotations

import copy
import json

from aiohttp import web

from orchestrator.emulator import applications, arm_scopes, definitions, lro
from orchestrator.emulator.applications import AppPath
from orchestrator.emulator.arm_routes import Ctx, Handler
from orchestrator.emulator.armhttp import OPERATION_FAULTS_KEY, json_response, retry_after_headers
from orchestrator.emulator.errors import ArmError, method_not_allowed
from orchestrator.emulator.paging import keyed_page
from orchestrator.emulator.state import Json, Operation, iso, now


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


def _app_path(ctx: Ctx) -> AppPath:
    return AppPath(ctx.groups["sub"], ctx.groups["rg"], ctx.groups["name"])


def _busy(ctx: Ctx, key: str) -> None:
    """Refuse a write while another operation on the app runs (and count it)."""
    op_id = ctx.rt.state.in_flight.get(key)
    if op_id is not None:
        lro.record_conflict(ctx.rt, key, ctx.method)
        raise applications.busy_error(op_id, ctx.groups["name"])


def _op_headers(ctx: Ctx, op_id: str, location: str, *, with_location: bool) -> dict[str, str]:
    sub = ctx.groups["sub"]
    base = f"{ctx.rt.base_url}subscriptions/{sub}/providers/Microsoft.Solutions/locations/{location}"
    headers = retry_after_headers(ctx.rt.scaled(ctx.rt.settings.poll_seconds))
    if with_location:
        headers["Location"] = f"{base}/operationResults/{op_id}?api-version={ctx.api_version}"
    else:
        headers["Azure-AsyncOperation"] = f"{base}/operationStatuses/{op_id}?api-version={ctx.api_version}"
    return headers


def _start(ctx: Ctx, kind: str, app: Json, previous: Json | None, status: int) -> Operation:
    """Start the app's operation with the faults that fired on this request; count its status."""
    faults = ctx.request.get(OPERATION_FAULTS_KEY, [])
    op = lro.start_operation(ctx.rt, kind=kind, method=ctx.method, app=app, previous=previous, faults=faults)
    lro.record_write_status(ctx.rt, op, status)
    return op


# ---- applications --------------------------------------------------------------------------------


async def application(ctx: Ctx) -> web.Response:
    if ctx.method == "GET":
        return json_response(applications.get(ctx.rt.state, _app_path(ctx)))
    if ctx.method == "PUT":
        return await _put_application(ctx)
    if ctx.method == "PATCH":
        return await _patch_application(ctx)
    if ctx.method == "DELETE":
        return _delete_application(ctx)
    raise method_not_allowed(ctx.method)


def _build(ctx: Ctx, path: AppPath, body: Json, existing: Json | None) -> Json:
    stamp = applications.system_data(str(ctx.claims.get("oid", "")), iso(now()), existing)
    return applications.build(ctx.rt.state, path, body, existing, stamp)


async def _put_application(ctx: Ctx) -> web.Response:
    path = _app_path(ctx)
    body = await _body(ctx)
    # No await between the busy check and starting the operation: two concurrent writes can't both pass.
    _busy(ctx, path.key)
    existing = ctx.rt.state.applications.get(path.key)
    app = _build(ctx, path, body, existing)
    if existing is None:
        return _start_write(ctx, app, existing, "create", 201)
    return _start_write(ctx, app, existing, "update", 200)


async def _patch_application(ctx: Ctx) -> web.Response:
    path = _app_path(ctx)
    patch = await _body(ctx)
    existing = applications.get(ctx.rt.state, path)
    _busy(ctx, path.key)  # after the last await, see _put_application
    app = _build(ctx, path, applications.merge_patch(existing, patch), existing)
    return _start_write(ctx, app, existing, "update", 202)


def _start_write(ctx: Ctx, app: Json, existing: Json | None, kind: str, status: int) -> web.Response:
    applications.store(ctx.rt.state, app, new=existing is None)
    op = _start(ctx, kind, app, existing, status)
    ctx.rt.notifier.write_started(ctx.method, app)
    return json_response(app, status, _op_headers(ctx, op.id, op.location, with_location=False))


def _delete_application(ctx: Ctx) -> web.Response:
    key = _app_path(ctx).key
    app = ctx.rt.state.applications.get(key)
    if app is None:
        return web.Response(status=204)
    _busy(ctx, key)
    app["properties"]["provisioningState"] = "Deleting"
    op = _start(ctx, "delete", app, None, 202)
    ctx.rt.notifier.write_started("DELETE", app)
    headers = _op_headers(ctx, op.id, op.location, with_location=False)
    headers.update(_op_headers(ctx, op.id, op.location, with_location=True))
    return web.Response(status=202, headers=headers)


async def application_action(ctx: Ctx) -> web.Response:
    action = ctx.groups["action"].lower()
    if ctx.method != "POST":
        raise method_not_allowed(ctx.method)
    path = _app_path(ctx)
    app = applications.get(ctx.rt.state, path)
    if action == "refreshpermissions":
        _busy(ctx, path.key)
        op = _start(ctx, "refreshPermissions", app, copy.deepcopy(app), 202)
        app["properties"]["provisioningState"] = "Accepted"
        return web.Response(status=202, headers=_op_headers(ctx, op.id, op.location, with_location=True))
    if action == "listallowedupgradeplans":
        return json_response({"value": applications.upgrade_plans(ctx.rt.state, app)})
    raise ArmError(
        404, "InvalidResourceType", f"The resource type 'applications/{action}' could not be found."
    )


def _by_id_ranges(ctx: Ctx) -> list[tuple[str, str]]:
    """The index range of a list by subscription or by resource group (ids under that prefix)."""
    sub = ctx.groups["sub"].lower()
    if "rg" in ctx.groups:
        applications.resource_group(ctx.rt.state, ctx.groups["sub"], ctx.groups["rg"])
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


async def definition(ctx: Ctx) -> web.Response:
    state, g = ctx.rt.state, ctx.groups
    key = definitions.key(g["sub"], g["rg"], g["name"])
    if ctx.method == "GET":
        return json_response(definitions.get(state, g["sub"], g["rg"], g["name"]))
    if ctx.method == "DELETE":
        return web.Response(status=200 if state.definitions.pop(key, None) else 204)
    if ctx.method not in ("PUT", "PATCH"):
        raise method_not_allowed(ctx.method)
    rg = applications.resource_group(state, g["sub"], g["rg"])
    body = await _body(ctx)
    existing = state.definitions.get(key)
    if ctx.method == "PATCH":
        state.definitions[key] = definitions.patched(existing, body, rg=g["rg"], name=g["name"])
        return json_response(state.definitions[key])
    state.definitions[key] = definitions.build(state, g["sub"], rg, g["name"], body, existing)
    return json_response(state.definitions[key], 200 if existing else 201)


async def list_definitions(ctx: Ctx) -> web.Response:
    index = ctx.rt.state.definitions
    ranges = _by_id_ranges(ctx)
    return json_response(keyed_page(ctx, lambda after: index.scan(ranges, after)))


HANDLERS: dict[str, Handler] = {
    "subscriptions": arm_scopes.list_subscriptions,
    "subscription": arm_scopes.get_subscription,
    "tenants": arm_scopes.list_tenants,
    "app": application,
    "app_action": application_action,
    "apps": list_applications,
    "op": operation,
    "definition": definition,
    "definitions": list_definitions,
    "permissions": arm_scopes.permissions,
    "deny": arm_scopes.deny_assignments,
    "rg": arm_scopes.get_resource_group,
    "rgs": arm_scopes.list_resource_groups,
    "provider": arm_scopes.get_provider,
    "lighthouse": arm_scopes.registrations,
}
