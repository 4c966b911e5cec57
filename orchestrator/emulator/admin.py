"""The admin surface under /_emulator/: for tests and scripts only, never used by the orchestrator.

No authentication (it listens on the same loopback server). Secrets appear in one route only,
`/_emulator/tenants/{id}/credential`, so a test can act as that customer; write-config writes them to
0600 files.
"""

from __future__ import annotations

import time
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


def add_routes(app: web.Application, rt: Runtime) -> None:
    async def stats(_: web.Request) -> web.Response:
        lro.advance(rt)
        body = rt.stats.as_json(len(rt.state.in_flight))
        body["writes"] = {
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
        body["faults"] = [r.as_json() for r in rt.faults.rules]
        body["notifications"] = rt.notifier.stats.as_json(rt.notifier.pending)
        body["time_scale"] = rt.settings.time_scale
        body["process_cpu_seconds"] = time.process_time()  # for benchmarks: CPU the emulator used
        return json_response(body)

    async def reset(_: web.Request) -> web.Response:
        rt.reset()
        return json_response({"reset": True})

    async def faults(request: web.Request) -> web.Response:
        try:
            rules = parse_rules(await request.json())
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        rt.faults.replace(rules)
        return json_response({"rules": [r.as_json() for r in rules]})

    async def fleet(_: web.Request) -> web.Response:
        return json_response(fleet_json(rt))

    async def time_scale(request: web.Request) -> web.Response:
        body = await request.json()
        value = float(body.get("time_scale", body.get("value", 0)))
        if value <= 0:
            return json_response({"error": "time_scale must be > 0"}, 400)
        rt.settings.time_scale = value
        return json_response({"time_scale": value})

    async def state(_: web.Request) -> web.Response:
        lro.advance(rt)
        dump = rt.state.to_json()
        for tenant in dump["tenants"]:
            tenant["client_secret"] = "***"  # noqa: S105 (a mask, not a secret): the dump is for reading; secrets stay out of it
        notify.mask_endpoints(dump)  # the webhook secret rides in the endpoint's query
        return json_response(dump)

    async def load_state(request: web.Request) -> web.Response:
        raw = await request.json()
        try:
            rt.state = State.from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"loaded": True})

    async def config(request: web.Request) -> web.Response:
        body = await request.json()
        assert rt.ca_bundle is not None
        path = write_config(rt.state, rt.base_url, rt.ca_bundle, Path(str(body["path"])))
        return json_response({"path": str(path)})

    async def notifications(request: web.Request) -> web.Response:
        body = await request.json()
        url = body.get("url")
        if url is not None and not str(url).startswith(("http://", "https://")):
            return json_response({"error": "url must be http(s)://…"}, 400)
        notify.set_endpoint(rt.state, url)
        announced = rt.notifier.announce() if url is not None and body.get("announce") else 0
        return json_response({"url": url, "announced": announced})

    async def credential(request: web.Request) -> web.Response:
        # The one admin route that returns a secret: a test plays the customer (e.g. running its kit).
        tenant = rt.state.tenants.get(request.match_info["tenant"].lower())
        if tenant is None:
            return json_response({"error": "no such tenant"}, 404)
        return json_response(
            {"tenant_id": tenant.id, "client_id": tenant.client_id, "client_secret": tenant.client_secret}
        )

    app.router.add_get("/_emulator/stats", stats)
    app.router.add_post("/_emulator/notifications", notifications)
    app.router.add_get("/_emulator/tenants/{tenant}/credential", credential)
    app.router.add_post("/_emulator/reset", reset)
    app.router.add_post("/_emulator/faults", faults)
    app.router.add_get("/_emulator/fleet", fleet)
    app.router.add_post("/_emulator/time-scale", time_scale)
    app.router.add_get("/_emulator/state", state)
    app.router.add_post("/_emulator/state", load_state)
    app.router.add_post("/_emulator/write-config", config)
