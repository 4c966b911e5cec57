"""ARM route handlers above and beside the applications: subscriptions, tenants, resource groups,
providers, deny assignments, permissions, Lighthouse registrations. Thin: the bodies come from the
model modules (directory.py, denies.py)."""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web

from orchestrator.emulator import applications, denies, directory
from orchestrator.emulator.arm_routes import Ctx
from orchestrator.emulator.armhttp import json_response
from orchestrator.emulator.paging import keyed_page, page_of
from orchestrator.emulator.state import Json


def _caller_tenant(ctx: Ctx) -> str:
    return str(ctx.claims.get("tid", ""))


async def list_subscriptions(ctx: Ctx) -> web.Response:
    state = ctx.rt.state
    subs = directory.visible_subscriptions(state, _caller_tenant(ctx))
    return json_response(page_of(ctx, [directory.subscription_json(s, state) for s in subs]))


async def get_subscription(ctx: Ctx) -> web.Response:
    sub = ctx.rt.state.subscriptions[ctx.groups["sub"].lower()]
    return json_response(directory.subscription_json(sub, ctx.rt.state))


async def list_tenants(ctx: Ctx) -> web.Response:
    items = [directory.tenant_json(ctx.tenant)] if ctx.tenant is not None else []
    return json_response(page_of(ctx, items))


async def get_resource_group(ctx: Ctx) -> web.Response:
    return json_response(applications.resource_group(ctx.rt.state, ctx.groups["sub"], ctx.groups["rg"]))


async def list_resource_groups(ctx: Ctx) -> web.Response:
    return json_response(page_of(ctx, directory.resource_groups_of(ctx.rt.state, ctx.groups["sub"])))


async def get_provider(ctx: Ctx) -> web.Response:
    return json_response(directory.provider_json(ctx.groups["namespace"], ctx.groups.get("sub")))


async def deny_assignments(ctx: Ctx) -> web.Response:
    state = ctx.rt.state
    scope = ctx.groups.get("scope", "").rstrip("/")
    name = ctx.groups.get("name")
    if name is not None:
        return json_response(denies.get(state, scope, name))
    filter_text = ctx.request.query.get("$filter", "")
    ranges, keep = denies.listing(state, scope, filter_text, _caller_tenant(ctx))
    index = state.deny_assignments

    def rows(after: str | None) -> Iterator[tuple[str, Json]]:
        return ((k, da) for k, da in index.scan(ranges, after) if keep(da))

    return json_response(keyed_page(ctx, rows))


async def permissions(ctx: Ctx) -> web.Response:
    state, g = ctx.rt.state, ctx.groups
    rg = applications.resource_group(state, g["sub"], g["rg"])
    sub = state.subscriptions[g["sub"].lower()]
    oid = str(ctx.claims.get("oid", ""))
    value = directory.permissions(state, sub, str(rg["id"]), ctx.tenant, _caller_tenant(ctx), oid)
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
        return json_response(directory.registration(store, prefix, name))
    return json_response(page_of(ctx, directory.registrations(store, prefix)))
