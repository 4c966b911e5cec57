"""Long-running operations on applications, advanced lazily from the clock on every request.

An operation runs `operation_seconds x time_scale`; its app shows Accepted, then Updating/Running,
then Succeeded or Failed. On success the app's system deny assignment is re-derived (possibly after
a fault-injected convergence delay); on failure the app's previous properties are restored.
"""

from __future__ import annotations

import copy
import heapq
import uuid
from bisect import bisect_right, insort
from typing import Any

from orchestrator.emulator.derive import Policy, deny_assignment_id, derive_for
from orchestrator.emulator.faults import PERMANENT_FAILURE, TRANSIENT_FAILURE, FaultRule
from orchestrator.emulator.index import subscription_bucket
from orchestrator.emulator.runtime import Runtime
from orchestrator.emulator.state import Json, Operation, PendingDeny, State, WriteRecord, iso, now


class PolicyError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def policy_for(state: State, app: Json) -> Policy:
    """The lock policy and authorization principals of an app's offer (MarketPlace) or definition."""
    if str(app.get("kind", "")).lower() == "marketplace":
        plan = app.get("plan") or {}
        offer = state.find_offer(plan)
        if offer is None:
            raise PolicyError(
                "InvalidMarketplacePlan",
                f"The marketplace plan publisher '{plan.get('publisher')}', product '{plan.get('product')}', "
                f"plan '{plan.get('name')}', version '{plan.get('version')}' was not found.",
            )
        principals = [a["principalId"] for a in offer.get("authorizations", [])]
        return Policy(offer["lockLevel"], offer["allowedActions"], offer["allowedDataActions"], principals)
    def_id = str((app.get("properties") or {}).get("applicationDefinitionId") or "")
    definition = state.definitions.get(def_id.lower()) if def_id else None
    if definition is None:
        raise PolicyError(
            "ApplicationDefinitionNotFound",
            f"The application definition '{def_id}' could not be found.",
        )
    props = definition["properties"]
    locking = props.get("lockingPolicy") or {}
    principals = [a["principalId"] for a in props.get("authorizations", [])]
    return Policy(
        props.get("lockLevel", "None"),
        list(locking.get("allowedActions", [])),
        list(locking.get("allowedDataActions", [])),
        principals,
    )


def rederive(rt: Runtime, app: Json, delay: float = 0.0) -> None:
    """Put the app's system deny assignment in line with its definition or plan."""
    state = rt.state
    mrg = app["properties"]["managedResourceGroupId"]
    body = derive_for(app["id"], mrg, policy_for(state, app))
    key = deny_assignment_id(mrg, app["id"]).lower()
    if delay > 0:
        insort(state.pending_deny, PendingDeny(now() + delay, key, body), key=_apply_at)
    else:
        _apply_deny(state, key, body)


def _apply_at(pending: PendingDeny) -> float:
    return pending.apply_at


def _apply_deny(state: State, key: str, body: Json | None) -> None:
    if body is None:
        state.deny_assignments.pop(key, None)
    else:
        state.deny_assignments[key] = body


def start_operation(
    rt: Runtime,
    *,
    kind: str,
    method: str,
    app: Json,
    previous: Json | None,
    faults: list[FaultRule],
) -> Operation:
    state = rt.state
    key = app["id"].lower()
    t0 = now()
    sub = app["id"].split("/")[2]
    op = Operation(
        id=str(uuid.uuid4()),
        kind=kind,
        app_key=key,
        app_id=app["id"],
        subscription_id=sub,
        location=str(app.get("location", "")).replace(" ", "").lower() or "global",
        start=t0,
        end=t0 + rt.scaled(rt.settings.operation_seconds),
        running_state="Running" if kind == "create" else "Updating",
        previous=copy.deepcopy(previous) if previous is not None else None,
    )
    for rule in faults:
        if rule.action == "fail_transient":
            op.fail_code, op.fail_message = TRANSIENT_FAILURE
        elif rule.action == "fail_permanent":
            op.fail_code, op.fail_message = PERMANENT_FAILURE
        elif rule.action == "deny_delay":
            op.deny_delay = rt.scaled(rule.deny_delay)
    if kind == "update" and previous is not None and _repeats_a_success(state, key, previous, app):
        rt.stats.writes_after_success[app["id"]] += 1
    state.operations[op.id] = op
    state.in_flight[key] = op.id
    state.schedule(op)
    rt.stats.writes_per_app[app["id"]] += 1
    rt.stats.max_concurrent_ops_per_app[app["id"]] = max(
        rt.stats.max_concurrent_ops_per_app.get(app["id"], 0), int(key in state.in_flight)
    )
    state.writes.setdefault(key, []).append(WriteRecord(method, t0, None, 0, op.id))
    return op


def _repeats_a_success(state: State, key: str, previous: Json, app: Json) -> bool:
    """Whether an accepted update asks for what the app's last operation already gave it, successfully
    (the same write sent again after it succeeded: what a transport re-send produces)."""
    last = next((w for w in reversed(state.writes.get(key, [])) if w.operation_id), None)
    op = state.operations.get(last.operation_id or "") if last is not None else None
    if op is None or op.status != "Succeeded" or op.kind == "delete":
        return False

    def target(body: Json) -> tuple[str, str]:
        definition = str((body.get("properties") or {}).get("applicationDefinitionId") or "").lower()
        return definition, str((body.get("plan") or {}).get("version") or "")

    return target(previous) == target(app)


def record_write_status(rt: Runtime, op: Operation, status: int) -> None:
    records = rt.state.writes.get(op.app_key, [])
    if records and records[-1].operation_id == op.id:
        records[-1].status = status


def record_conflict(rt: Runtime, app_key: str, method: str) -> None:
    t = now()
    rt.state.writes.setdefault(app_key, []).append(WriteRecord(method, t, t, 409, None, conflict=True))
    rt.stats.conflicting_writes += 1


def advance(rt: Runtime) -> None:
    """Move every operation and pending deny assignment forward to the present."""
    state = rt.state
    t = now()
    pending = state.pending_deny
    if pending and pending[0].apply_at <= t:
        n = bisect_right(pending, t, key=_apply_at)
        state.pending_deny = pending[n:]
        for p in pending[:n]:
            _apply_deny(state, p.key, p.body)
    timeline = state.timeline
    while timeline and timeline[0][0] <= t:
        _, op_id = heapq.heappop(timeline)
        op = state.operations.get(op_id)
        if op is None or state.in_flight.get(op.app_key) != op_id:
            continue  # already finished
        app = state.applications.get(op.app_key)
        if t < op.end:
            if app is not None and app["properties"].get("provisioningState") == "Accepted":
                app["properties"]["provisioningState"] = op.running_state
            continue
        _finish(rt, op, app)
        del state.in_flight[op.app_key]
        rt.notifier.operation_finished(op, app)


def _finish(rt: Runtime, op: Operation, app: Json | None) -> None:
    state = rt.state
    op.ended_at = op.end
    for rec in state.writes.get(op.app_key, []):
        if rec.operation_id == op.id:
            rec.end = op.end
    if op.fail_code:
        op.status = "Failed"
        if op.previous is not None and op.kind != "delete":
            restored = copy.deepcopy(op.previous)
            restored["properties"]["provisioningState"] = "Failed"
            state.applications[op.app_key] = restored
        elif app is not None:
            app["properties"]["provisioningState"] = "Failed"
        return
    op.status = "Succeeded"
    if app is None:
        return
    if op.kind == "delete":
        mrg = app["properties"].get("managedResourceGroupId", "")
        state.applications.pop(op.app_key, None)
        state.resource_groups.pop(mrg.lower(), None)
        lmrg = mrg.lower()
        index = state.deny_assignments
        on_mrg = [index.key_of(sk) for sk, _ in index.scan([(subscription_bucket(lmrg), lmrg + "/")])]
        for da_key in on_mrg:
            index.pop(da_key, None)
        return
    app["properties"]["provisioningState"] = "Succeeded"
    try:
        rederive(rt, app, op.deny_delay)
    except Exception:  # the definition vanished mid-operation: leave the deny as it was
        return


def status_body(rt: Runtime, op: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"/subscriptions/{op.subscription_id}/providers/Microsoft.Solutions/locations/{op.location}"
        f"/operationStatuses/{op.id}",
        "name": op.id,
        "status": "Accepted"
        if op.status == "InProgress" and now() < op.start + (op.end - op.start) * 0.25
        else ("Running" if op.status == "InProgress" else op.status),
        "startTime": iso(op.start),
    }
    if op.status != "InProgress":
        body["endTime"] = iso(op.end)
    err = op.error()
    if err is not None:
        body["error"] = err
    return body
