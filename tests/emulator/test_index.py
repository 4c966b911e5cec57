"""The listing indexes stay consistent: every listing equals a brute-force filter over the state.

Pure tests drive `ScopedIndex` with seeded random writes; the HTTP test lists through the emulator
(paged, small pages) after PUTs that re-derive or remove deny assignments, a create, a delete, a
reset and a state reload, and compares with a filter over the admin state dump.
"""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import pytest

from orchestrator.emulator.index import EXACT, ScopedIndex, place_by_id, place_by_scope
from orchestrator.emulator.testing import EmulatorHandle
from tests.emulator.conftest import PAGE_SIZE, raw, tenant_of, token_for

SOLUTIONS = "api-version=2023-12-01-preview"
AUTHZ = "api-version=2022-04-01"

# ---- pure: ScopedIndex against a plain dict -------------------------------------------------------

SUBS = ["s1", "s2", "s10"]
SCOPES = [
    "",
    "/providers/microsoft.management/managementgroups/mg",
    *[f"/subscriptions/{s}" for s in SUBS],
    *[f"/subscriptions/{s}/resourcegroups/{rg}" for s in SUBS for rg in ("rg", "rg-2", "rg2", "rg.x")],
]


def _deny(scope: str, name: str) -> dict[str, Any]:
    return {"id": f"{scope}/providers/x/denyassignments/{name}", "properties": {"scope": scope}}


def _bucket(scope: str) -> str:
    return scope.split("/")[2] if scope.startswith("/subscriptions/") else ""


def _check_scans(index: ScopedIndex, truth: dict[str, dict[str, Any]]) -> None:
    assert dict(index.items()) == truth
    assert len(index) == len(truth)
    for scope in SCOPES:
        for prefix in (scope + "/", scope + EXACT):
            bucket = _bucket(scope)
            want = sorted(
                (v["properties"]["scope"] + EXACT + k, k)
                for k, v in truth.items()
                if (v["properties"]["scope"] + EXACT + k).startswith(prefix)
                and _bucket(v["properties"]["scope"]) == bucket
            )
            got = [(sk, body["id"]) for sk, body in index.scan([(bucket, prefix)])]
            assert got == [(sk, truth[k]["id"]) for sk, k in want]
            # Resuming after any key gives exactly the rest: paging never skips or repeats.
            for cut in range(len(got)):
                rest = [sk for sk, _ in index.scan([(bucket, prefix)], after=got[cut][0])]
                assert rest == [sk for sk, _ in got[cut + 1 :]]


def test_scoped_index_follows_random_writes() -> None:
    rng = random.Random(7)
    truth: dict[str, dict[str, Any]] = {}
    index = ScopedIndex(place_by_scope)
    for step in range(400):
        roll = rng.random()
        if roll < 0.55 or not truth:
            scope, name = rng.choice(SCOPES), f"d{rng.randrange(30)}"
            body = _deny(scope, name)
            key = body["id"].lower() if rng.random() < 0.7 or not truth else rng.choice(list(truth))
            # Replacing a key with a body at another scope moves it between ranges and buckets.
            index[key] = body
            truth[key] = body
        elif roll < 0.8:
            key = rng.choice(list(truth))
            del index[key]
            del truth[key]
        else:
            key = rng.choice(list(truth))
            assert index.pop(key) is truth.pop(key)
        if step % 20 == 0:
            _check_scans(index, truth)
    _check_scans(index, truth)
    reloaded = ScopedIndex(place_by_scope, list(truth.items()))  # the bulk-load path
    _check_scans(reloaded, truth)
    with pytest.raises(KeyError):
        del index["missing"]


def test_scan_merges_ranges_in_order_without_duplicates() -> None:
    index = ScopedIndex(place_by_id)
    ids = [f"/subscriptions/s{i % 3}/resourcegroups/rg{i % 2}/providers/p/a/{i:03d}" for i in range(30)]
    for key in reversed(ids):
        index[key] = {"id": key}
    ranges = [("s0", "/subscriptions/s0/"), ("s0", "/subscriptions/s0/resourcegroups/rg1/"), ("s2", "")]
    got = [k for k, _ in index.scan(ranges)]
    want = sorted(k for k in ids if k.startswith(("/subscriptions/s0/", "/subscriptions/s2/")))
    assert got == want
    assert index.bucket_keys("s1") == sorted(k for k in ids if k.startswith("/subscriptions/s1/"))


# ---- through HTTP: listings against a brute-force filter over the state dump ---------------------


def _within(child: str, parent: str) -> bool:
    return child == parent or parent == "" or child.startswith(parent + "/")


def _list_ids(emu: EmulatorHandle, token: str, path: str) -> list[str]:
    status, _, body = raw(emu, "GET", path, token)
    assert status == 200, body
    ids: list[str] = []
    while True:
        assert len(body["value"]) <= PAGE_SIZE
        ids += [item["id"].lower() for item in body["value"]]
        if "nextLink" not in body:
            break
        status, _, body = raw(emu, "GET", body["nextLink"], token)
        assert status == 200, body
    assert len(ids) == len(set(ids)), "a page repeated an item"
    return ids


def _assert_listings_match_state(emu: EmulatorHandle, token: str, subs: list[str]) -> None:
    state = emu.state()
    apps = [a["id"].lower() for a in state["applications"]]
    denies = [(d["id"].lower(), d["properties"]["scope"].lower()) for d in state["deny_assignments"]]
    tenant_subs = {s.lower() for s in subs}
    checked_deny = 0
    for sub in subs:
        base = f"/subscriptions/{sub}".lower()
        got = _list_ids(emu, token, f"{base}/providers/Microsoft.Solutions/applications?{SOLUTIONS}")
        assert sorted(got) == sorted(a for a in apps if a.startswith(base + "/"))
        rg = f"{base}/resourcegroups/rg-managedapps"
        got = _list_ids(emu, token, f"{rg}/providers/Microsoft.Solutions/applications?{SOLUTIONS}")
        assert sorted(got) == sorted(a for a in apps if a.startswith(rg + "/providers/"))
        scopes = {base, rg} | {s for _, s in denies if s.startswith(base + "/")}
        for scope in sorted(scopes):
            url = f"{scope}/providers/Microsoft.Authorization/denyAssignments?{AUTHZ}"
            got = _list_ids(emu, token, url)
            want = [i for i, s in denies if _within(s, scope) or _within(scope, s)]
            assert sorted(got) == sorted(want), scope
            got = _list_ids(emu, token, url + "&$filter=atScope()")
            assert sorted(got) == sorted(i for i, s in denies if _within(scope, s)), scope
            checked_deny += 1
    # Root scope: the caller's tenant's subscriptions and whatever sits above subscriptions.
    got = _list_ids(emu, token, f"/providers/Microsoft.Authorization/denyAssignments?{AUTHZ}")
    want = [i for i, s in denies if not s.split("/")[2:3] or s.split("/")[2] in tenant_subs]
    assert sorted(got) == sorted(want)
    assert checked_deny > 2 * len(subs)


def _wait_idle(emu: EmulatorHandle, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while emu.stats()["operations_in_flight"]:
        assert time.monotonic() < deadline, "operations did not finish"
        time.sleep(0.05)


def _put(emu: EmulatorHandle, token: str, app: dict[str, Any], **changes: Any) -> None:
    body: dict[str, Any] = {
        "kind": app["kind"],
        "location": app["location"],
        "properties": {
            "managedResourceGroupId": app["properties"]["managedResourceGroupId"],
            **changes.get("properties", {}),
        },
    }
    if "applicationDefinitionId" in app["properties"] and "properties" not in changes:
        body["properties"]["applicationDefinitionId"] = app["properties"]["applicationDefinitionId"]
    if app["kind"] == "MarketPlace":
        body["plan"] = changes.get("plan", app["plan"])
    status, _, err = raw(emu, "PUT", f"{app['id']}?{SOLUTIONS}", token, body)
    assert status in (200, 201), err


@pytest.mark.integration
def test_listings_equal_a_filter_over_the_state(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    token = token_for(emulator, tenant)
    subs = tenant.subscriptions
    _assert_listings_match_state(emulator, token, subs)

    after_writes, new_mrg = _write_some(emulator, token, fleet, subs[0])
    _assert_listings_match_state(emulator, token, subs)

    emulator.reset()
    ids = {a["id"].lower() for a in after_writes["applications"]}
    assert {a["id"].lower() for a in emulator.state()["applications"]} != ids
    _assert_listings_match_state(emulator, token, subs)

    status, _, body = raw(
        emulator, "POST", "/_emulator/state", None, _moved_scopes(after_writes, subs[0], new_mrg)
    )
    assert status == 200, body
    _assert_listings_match_state(emulator, token, subs)


def _write_some(
    emulator: EmulatorHandle, token: str, fleet: dict[str, Any], sub: str
) -> tuple[dict[str, Any], str]:
    """Updates, a create and a delete in one subscription, run to the end: the state after, and the
    new app's MRG."""
    apps = [
        a
        for a in emulator.state()["applications"]
        if a["id"].split("/")[2] == sub and a["properties"]["provisioningState"] == "Succeeded"
    ]
    catalog = [a for a in apps if a["kind"] == "ServiceCatalog"]
    market = next(a for a in apps if a["kind"] == "MarketPlace")
    defs = fleet["publisher"]["definitions"]
    # Lock level None: the app's system deny assignment goes away; v2: it is re-derived in place.
    _put(emulator, token, catalog[0], properties={"applicationDefinitionId": defs["app-v1-unlocked"]})
    _put(emulator, token, catalog[1], properties={"applicationDefinitionId": defs["app-v2"]})
    _put(emulator, token, market, plan={**market["plan"], "version": "2.0.0"})
    # A new app (new MRG, new deny assignment) and a deleted one (its MRG and deny assignments go).
    new_mrg = f"/subscriptions/{sub}/resourceGroups/mrg-indexed-new"
    status, _, err = raw(
        emulator,
        "PUT",
        f"/subscriptions/{sub}/resourceGroups/rg-managedapps/providers/Microsoft.Solutions/applications/"
        f"indexed-new?{SOLUTIONS}",
        token,
        {
            "kind": "ServiceCatalog",
            "location": "eastus",
            "properties": {"managedResourceGroupId": new_mrg, "applicationDefinitionId": defs["app-v1"]},
        },
    )
    assert status == 201, err
    status, _, _ = raw(emulator, "DELETE", f"{catalog[2]['id']}?{SOLUTIONS}", token)
    assert status == 202
    _wait_idle(emulator)
    after_writes = emulator.state()
    ids = {a["id"].lower() for a in after_writes["applications"]}
    assert catalog[2]["id"].lower() not in ids and any(i.endswith("/indexed-new") for i in ids)
    assert any(d["properties"]["scope"].lower() == new_mrg.lower() for d in after_writes["deny_assignments"])
    return after_writes, new_mrg


def _moved_scopes(state: dict[str, Any], sub: str, new_mrg: str) -> dict[str, Any]:
    """The state with deny assignments at other scopes: one moved from its MRG up to the
    subscription, one at the root, one at a resource below an MRG."""
    dump = copy.deepcopy(state)
    moved = next(d for d in dump["deny_assignments"] if d["id"].split("/")[2] == sub)
    moved["properties"]["scope"] = f"/subscriptions/{sub}"
    moved["id"] = f"/subscriptions/{sub}/providers/Microsoft.Authorization/denyAssignments/{moved['name']}"
    root = copy.deepcopy(moved)
    root["properties"]["scope"] = ""
    root["id"] = f"/providers/Microsoft.Authorization/denyAssignments/{root['name']}-root"
    leaf = copy.deepcopy(moved)
    leaf["properties"]["scope"] = new_mrg + "/providers/Microsoft.Web/sites/func1"
    leaf["id"] = f"{leaf['properties']['scope']}/providers/Microsoft.Authorization/denyAssignments/leaf"
    dump["deny_assignments"] += [root, leaf]
    return dump


# ---- the operation timeline: advance() touches only what is due, and survives a reload ----------


def test_timeline_drives_operations_across_a_state_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    from bisect import insort

    from orchestrator.emulator import lro
    from orchestrator.emulator.fleet import generate
    from orchestrator.emulator.runtime import Runtime, Settings
    from orchestrator.emulator.state import PendingDeny, State

    rt = Runtime(Settings(time_scale=0.01), generate("tenants=1,subscriptions=1,apps=3", 1))
    apps = [a for a in rt.state.applications.values() if a["properties"]["provisioningState"] == "Succeeded"]
    ops = []
    for app in apps[:2]:
        op = lro.start_operation(rt, kind="update", method="PUT", app=app, previous=None, faults=[])
        app["properties"]["provisioningState"] = "Accepted"
        ops.append(op)
    clock = ops[0].start
    monkeypatch.setattr(lro, "now", lambda: clock)
    lro.advance(rt)
    assert all(a["properties"]["provisioningState"] == "Accepted" for a in apps[:2])

    clock = ops[1].quarter() + 1e-6  # both past a quarter, neither done
    lro.advance(rt)
    assert [a["properties"]["provisioningState"] for a in apps[:2]] == ["Updating", "Updating"]
    assert len(rt.state.in_flight) == 2

    # Two pending deny changes to one key, queued out of order: the later one must win.
    busy_mrgs = {a["properties"]["managedResourceGroupId"].lower() for a in apps[:2]}
    key = next(
        k for k, d in rt.state.deny_assignments.items() if d["properties"]["scope"].lower() not in busy_mrgs
    )
    first, second = {**rt.state.deny_assignments[key], "tag": 1}, {**rt.state.deny_assignments[key], "tag": 2}
    insort(rt.state.pending_deny, PendingDeny(clock + 2, key, second), key=lambda p: p.apply_at)
    insort(rt.state.pending_deny, PendingDeny(clock + 1, key, first), key=lambda p: p.apply_at)

    rt.state = State.from_json(json.loads(json.dumps(rt.state.to_json())))  # the timeline is rebuilt
    assert len(rt.state.timeline) == 4
    clock = max(op.end for op in ops) + 3
    lro.advance(rt)
    assert rt.state.in_flight == {} and rt.state.timeline == [] and rt.state.pending_deny == []
    assert all(rt.state.operations[op.id].status == "Succeeded" for op in ops)
    for app in apps[:2]:
        assert rt.state.applications[app["id"].lower()]["properties"]["provisioningState"] == "Succeeded"
    assert rt.state.deny_assignments[key].get("tag") == 2
