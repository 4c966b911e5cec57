"""The aiohttp application: one catch-all handler (Entra or ARM) plus the /_emulator admin routes.

Per ARM request, in order: request ids, added latency, route match, api-version, authentication,
tenant isolation, access, throttling, faults, lazy LRO advance, handler, stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass

from aiohttp import web

from orchestrator.emulator import admin, entra, lro, metadata
from orchestrator.emulator.arm_access import authenticate, check_access, check_tenant
from orchestrator.emulator.arm_handlers import HANDLERS
from orchestrator.emulator.arm_routes import Ctx, check_api_version, kind_of, match, subscription_of
from orchestrator.emulator.armhttp import (
    KIND_KEY,
    OPERATION_FAULTS_KEY,
    RATE_HEADERS_KEY,
    error_response,
    retry_after_headers,
)
from orchestrator.emulator.errors import ArmError, method_not_allowed
from orchestrator.emulator.faults import FaultRule
from orchestrator.emulator.runtime import Runtime
from orchestrator.emulator.tls import ensure_tls
from orchestrator.emulator.versions import shaper_for

log = logging.getLogger("orchestrator.emulator")
GET_ONLY = frozenset(
    {"subscriptions", "subscription", "tenants", "apps", "op", "definitions", "permissions", "deny", "rg"}
    | {"rgs", "provider", "lighthouse"}
)


class _Reset(Exception):
    """Abort the connection without a response (the 'reset' fault)."""


# A fault that fires once the handler ran (drop_response / drop_mid_body), for `handle` to carry out.
AFTER_FAULT_KEY: web.RequestKey[FaultRule] = web.RequestKey("emulator_after_fault", FaultRule)


async def _drop(request: web.Request, response: web.Response, rule: FaultRule) -> web.StreamResponse:
    """Close the connection after the request was handled: before the answer, or halfway through its
    body (the status line and headers, Content-Length included, have gone out)."""
    transport = request.transport
    if rule.action == "drop_mid_body" and transport is not None:
        body = bytes(response.body) if isinstance(response.body, (bytes, bytearray)) else b""
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        stream.content_length = len(body)
        await stream.prepare(request)
        await stream.write(body[: len(body) // 2])
        for _ in range(100):  # let the bytes reach the socket before the connection goes
            if transport.is_closing() or transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.001)
        transport.abort()
        return stream
    if transport is not None:
        transport.abort()
    return web.Response(status=500)  # the transport is gone; aiohttp drops it


def _fault_response(rt: Runtime, rule: FaultRule) -> web.Response:
    if rule.action == "reset":
        raise _Reset
    if rule.action == "429":
        rt.stats.throttled += 1
        return error_response(
            ArmError(
                429,
                "TooManyRequests",
                "The request is being throttled (injected fault).",
                retry_after_headers(rt.scaled(rule.retry_after)),
            )
        )
    if rule.action == "503":
        return error_response(
            ArmError(
                503,
                "ServiceUnavailable",
                "The service is temporarily unavailable (injected fault).",
                retry_after_headers(rt.scaled(1.0)),
            )
        )
    return error_response(
        ArmError(500, "InternalServerError", "An internal server error occurred (injected fault).")
    )


async def _arm(rt: Runtime, request: web.Request) -> tuple[str, web.Response]:
    ctx, kind, sub_id, sub_tenant = _admit(rt, request)
    extra = _throttle(rt, ctx, sub_id, sub_tenant) if rt.settings.throttle else {}
    fault = await _faults_for(rt, ctx, kind)
    if fault is not None:
        fault.headers.update(extra)
        return kind, fault
    lro.advance(rt)
    response = await HANDLERS[ctx.route.name](ctx)
    shaper = shaper_for(ctx.route.name, ctx.api_version)
    if shaper is not None and response.status < 300 and isinstance(response.body, bytes):
        # An older or newer api-version whose shape differs from the stored one (versions.py).
        response.body = json.dumps(shaper(json.loads(response.body)), separators=(",", ":")).encode()
    if extra:
        response.headers.update(extra)
    return kind, response


def _admit(rt: Runtime, request: web.Request) -> tuple[Ctx, str, str | None, str | None]:
    """Route, method, api-version, token, tenant and access checks: the request's context, kind,
    subscription and that subscription's tenant."""
    path = request.path
    found = match(path)
    if found is None:
        code = "InvalidResourceType" if "/providers/" in path.lower() else "ResourceNotFound"
        raise ArmError(404, code, f"The resource type or route '{path}' could not be found.")
    route, groups = found
    kind = kind_of(route, groups, request.method)
    rt.stats.routes[f"{request.method} {route.name}"] += 1
    request[KIND_KEY] = kind  # so errors raised below are still counted under their kind
    if route.name in GET_ONLY and request.method != "GET":
        raise method_not_allowed(request.method)
    api_version = check_api_version(route, request)
    claims = authenticate(rt, request)
    sub_id = subscription_of(route, groups)
    sub_tenant = check_tenant(rt, route, request.method, sub_id, claims, groups, path)
    tenant = rt.state.tenants.get(str(claims.get("tid", "")).lower())
    ctx = Ctx(rt, request, route, groups, claims, tenant, api_version)
    check_access(ctx)
    return ctx, kind, sub_id, sub_tenant


def _throttle(rt: Runtime, ctx: Ctx, sub_id: str | None, sub_tenant: str | None) -> dict[str, str]:
    """Take a token from ARM's buckets; the rate-limit headers to send, or a 429 when empty."""
    method = ctx.method
    op_class = "reads" if method == "GET" else ("deletes" if method == "DELETE" else "writes")
    decision = rt.throttler.check(sub_id, sub_tenant or str(ctx.claims.get("tid")), op_class, rt.scaled)
    extra = decision.headers
    ctx.request[RATE_HEADERS_KEY] = extra  # also on errors raised further down
    if decision.wait > 0:
        rt.stats.throttled += 1
        code = (
            "SubscriptionRequestsThrottled" if decision.scope == "subscription" else "TenantRequestsThrottled"
        )
        raise ArmError(
            429,
            code,
            f"Number of '{op_class}' requests for {decision.scope} actor exceeded. Please try again "
            "after "
            f"{decision.wait:.3f} seconds.",
            {**extra, **retry_after_headers(decision.wait)},
        )
    return extra


async def _faults_for(rt: Runtime, ctx: Ctx, kind: str) -> web.Response | None:
    """Injected faults for this request: a delay, a response instead of the handler's (returned),
    faults for the operation it starts or for after it is handled (kept on the request)."""
    groups, request = ctx.groups, ctx.request
    app_name = groups.get("name") if ctx.route.name in ("app", "app_action") else None
    if ctx.route.name == "op":
        op = rt.state.operations.get(groups.get("op", ""))
        app_name = op.app_id.rsplit("/", 1)[1] if op else None
    plan = rt.faults.evaluate(kind, app_name)
    if plan is None:
        return None
    if plan.delay_ms:
        rt.stats.faults_injected["slow"] += 1
        await asyncio.sleep(plan.delay_ms / 1000)
    if plan.response is not None:
        rt.stats.faults_injected[plan.response.action] += 1
        return _fault_response(rt, plan.response)
    if plan.operation:
        for rule in plan.operation:
            rt.stats.faults_injected[rule.action] += 1
        request[OPERATION_FAULTS_KEY] = plan.operation
    if plan.after is not None:
        request[AFTER_FAULT_KEY] = plan.after
    return None


def build_app(rt: Runtime) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        rid = str(uuid.uuid4())
        headers = {
            "x-ms-request-id": rid,
            "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id", rid),
        }
        client_rid = request.headers.get("x-ms-client-request-id")
        if client_rid:
            headers["x-ms-client-request-id"] = client_rid
        if rt.settings.latency_ms:
            await asyncio.sleep(rt.settings.latency_ms / 1000)
        kind = "unknown"
        try:
            if entra.is_entra_path(request.path):
                kind = "token"
                plan = rt.faults.evaluate("token")
                if plan is not None and plan.delay_ms:
                    await asyncio.sleep(plan.delay_ms / 1000)
                if plan is not None and plan.response is not None:
                    rt.stats.faults_injected[plan.response.action] += 1
                    response = _fault_response(rt, plan.response)
                else:
                    response = await entra.handle(rt, request)
            elif metadata.is_metadata_path(request.path):
                kind = "metadata"
                response = await metadata.handle(rt, request)
            else:
                kind, response = await _arm(rt, request)
        except ArmError as err:
            kind = request.get(KIND_KEY, kind)
            response = error_response(err)
        except _Reset:
            kind = request.get(KIND_KEY, kind)
            rt.stats.requests[f"{kind} reset"] += 1
            if request.transport is not None:
                request.transport.abort()
            # The transport is gone; aiohttp drops whatever is returned here.
            return web.Response(status=500)
        response.headers.update(headers)
        response.headers.update(request.get(RATE_HEADERS_KEY, {}))
        after = request.get(AFTER_FAULT_KEY)
        if after is not None:
            rt.stats.faults_injected[after.action] += 1
            rt.stats.requests[f"{kind} {response.status} {after.action}"] += 1
            return await _drop(request, response, after)
        rt.stats.requests[f"{kind} {response.status}"] += 1
        return response

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.on_startup.append(lambda _: rt.notifier.start())
    app.on_cleanup.append(lambda _: rt.notifier.close())
    admin.add_routes(app, rt)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@dataclass
class Listening:
    runner: web.AppRunner
    host: str
    port: int


async def start(rt: Runtime, host: str, port: int) -> Listening:
    """Start listening over HTTPS and fill in rt.base_url and rt.ca_bundle."""
    tls = ensure_tls(rt.settings.state_dir)
    rt.ca_bundle = tls.ca_bundle
    runner = web.AppRunner(build_app(rt), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls.ssl_context, reuse_address=True)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    actual_port = int(sockets[0].getsockname()[1]) if sockets else port
    rt.set_base_url(host, actual_port)
    return Listening(runner, host, actual_port)


async def periodic_save(rt: Runtime, every: float = 30.0) -> None:
    """Save the state file now and then, so a killed emulator loses at most `every` seconds."""
    while True:
        await asyncio.sleep(every)
        save_state(rt)


def save_state(rt: Runtime) -> None:
    if rt.settings.state_file is None:
        return
    with contextlib.suppress(OSError):
        lro.advance(rt)
        rt.state.save(rt.settings.state_file)
