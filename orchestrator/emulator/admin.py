"""The admin surface under /_emulator/: for tests and scripts only, never used by the orchestrator.

No authentication (it listens on the same loopback server). Secrets appear in one route only,
`/_emulator/tenants/{id}/credential`, so a test can act as that customer; write-config writes them to
0600 files.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from orchestrator.emulator import lro, notify
from orchestrator.emulator.armhttp import json_response
from orchestrator.emulator.faults import parse_rules
from orchestrator.emulator.runtime import Runtime
from orchestrator.emulator.state import State
from orchestrator.emulator.writeconfig import write_config


def fleet_json(rt: Runtime) -> dict[str, Any]:
    state = rt.state
    tenants = []
    for t in state.tenants.values():
        tenants.append(
            {
                "id": t.id,
                "name": t.name,
                "client_id": t.client_id,
                "principal_id": t.principal_id,
                "role": t.role,
                "ring": t.ring,
                "publisher_access": t.publisher_access,
                "access": t.access,
                "subscriptions": [s.id for s in state.subscriptions_of(t.id)],
            }
        )
    definitions = {d["name"]: d["id"] for d in state.definitions.values()}
    return {
        "url": rt.base_url,
        "ca_bundle": str(rt.ca_bundle) if rt.ca_bundle else None,
        "tenants": [t for t in tenants if t["role"] == "customer"],
        "publisher": {
            **next((t for t in tenants if t["role"] == "publisher"), {}),
            "subscription_id": state.publisher_subscription_id,
            "definitions": definitions,
            "marketplace_plans": [
                {
                    k: o[k]
                    for k in (
                        "publisher",
                        "product",
                        "name",
                        "version",
                        "lockLevel",
                        "allowedActions",
                        "allowedDataActions",
                    )
                }
                for o in state.offers
            ],
        },
        "applications": [
            {"id": a["id"], "kind": a["kind"], "mrg": a["properties"]["managedResourceGroupId"]}
            for a in state.applications.values()
        ],
    }


# The runtime the admin handlers act on (the application serves one emulator).
RUNTIME_KEY = web.AppKey("emulator_runtime", Runtime)


def _rt(request: web.Request) -> Runtime:
    return request.app[RUNTIME_KEY]


def _writes_json(rt: Runtime) -> dict[str, list[dict[str, Any]]]:
    """Every write per app as the stats report them."""
    return {
        key: [
            {
                "method": w.method,
                "start": w.start,
                "end": w.end,
                "status": w.status,
                "operation_id": w.operation_id,
                "conflict": w.conflict,
            }
            for w in records
        ]
        for key, records in rt.state.writes.items()
    }


async def _stats(request: web.Request) -> web.Response:
    rt = _rt(request)
    lro.advance(rt)
    body = rt.stats.as_json(len(rt.state.in_flight))
    body["writes"] = _writes_json(rt)
    body["faults"] = [r.as_json() for r in rt.faults.rules]
    body["notifications"] = rt.notifier.stats.as_json(rt.notifier.pending)
    body["time_scale"] = rt.settings.time_scale
    body["process_cpu_seconds"] = time.process_time()  # for benchmarks: CPU the emulator used
    return json_response(body)


async def _reset(request: web.Request) -> web.Response:
    _rt(request).reset()
    return json_response({"reset": True})


async def _faults(request: web.Request) -> web.Response:
    try:
        rules = parse_rules(await request.json())
    except (ValueError, TypeError) as exc:
        return json_response({"error": str(exc)}, 400)
    _rt(request).faults.replace(rules)
    return json_response({"rules": [r.as_json() for r in rules]})


async def _fleet(request: web.Request) -> web.Response:
    return json_response(fleet_json(_rt(request)))


async def _time_scale(request: web.Request) -> web.Response:
    body = await request.json()
    value = float(body.get("time_scale", body.get("value", 0)))
    if value <= 0:
        return json_response({"error": "time_scale must be > 0"}, 400)
    _rt(request).settings.time_scale = value
    return json_response({"time_scale": value})


async def _state(request: web.Request) -> web.Response:
    rt = _rt(request)
    lro.advance(rt)
    dump = rt.state.to_json()
    for tenant in dump["tenants"]:
        tenant["client_secret"] = "***"  # noqa: S105 (a mask, not a secret): the dump is for reading; secrets stay out of it
    notify.mask_endpoints(dump)  # the webhook secret rides in the endpoint's query
    return json_response(dump)


async def _load_state(request: web.Request) -> web.Response:
    raw = await request.json()
    try:
        _rt(request).state = State.from_json(raw)
    except (ValueError, KeyError, TypeError) as exc:
        return json_response({"error": str(exc)}, 400)
    return json_response({"loaded": True})


async def _write_config(request: web.Request) -> web.Response:
    rt = _rt(request)
    body = await request.json()
    assert rt.ca_bundle is not None
    path = write_config(rt.state, rt.base_url, rt.ca_bundle, Path(str(body["path"])))
    return json_response({"path": str(path)})


async def _notifications(request: web.Request) -> web.Response:
    rt = _rt(request)
    body = await request.json()
    url = body.get("url")
    if url is not None and not str(url).startswith(("http://", "https://")):
        return json_response({"error": "url must be http(s)://…"}, 400)
    notify.set_endpoint(rt.state, url)
    announced = rt.notifier.announce() if url is not None and body.get("announce") else 0
    return json_response({"url": url, "announced": announced})


async def _credential(request: web.Request) -> web.Response:
    # The one admin route that returns a secret: a test plays the customer (e.g. running its kit).
    tenant = _rt(request).state.tenants.get(request.match_info["tenant"].lower())
    if tenant is None:
        return json_response({"error": "no such tenant"}, 404)
    return json_response(
        {"tenant_id": tenant.id, "client_id": tenant.client_id, "client_secret": tenant.client_secret}
    )


ROUTES: tuple[tuple[str, str, Callable[[web.Request], Awaitable[web.Response]]], ...] = (
    ("GET", "/_emulator/stats", _stats),
    ("POST", "/_emulator/notifications", _notifications),
    ("GET", "/_emulator/tenants/{tenant}/credential", _credential),
    ("POST", "/_emulator/reset", _reset),
    ("POST", "/_emulator/faults", _faults),
    ("GET", "/_emulator/fleet", _fleet),
    ("POST", "/_emulator/time-scale", _time_scale),
    ("GET", "/_emulator/state", _state),
    ("POST", "/_emulator/state", _load_state),
    ("POST", "/_emulator/write-config", _write_config),
)


def add_routes(app: web.Application, rt: Runtime) -> None:
    app[RUNTIME_KEY] = rt
    for method, path, handler in ROUTES:
        if method == "GET":
            app.router.add_get(path, handler)  # HEAD too, as aiohttp's GET routes answer it
        else:
            app.router.add_route(method, path, handler)
