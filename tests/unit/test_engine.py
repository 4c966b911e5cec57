"""The executor against an in-memory gateway: waves, tolerance, staleness, verification, resume, caps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.executor import ExecutorSettings, Progress, RetryPolicy, Tolerance, run_plan, run_rollback
from orchestrator.executor.pacing import CallKind, Pacer, PacingPolicy
from orchestrator.journal import Journal
from orchestrator.models import (
    App,
    AppState,
    Decision,
    Definition,
    DenyAssignment,
    Plan,
    PlanItem,
    PlanOptions,
    RunState,
    Target,
    Wave,
)
from orchestrator.planning.fingerprint import fingerprint, summarize
from tests.fakes import Crash, FakeArm

V1 = "/subscriptions/pub/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/app-v1"
V2 = "/subscriptions/pub/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/app-v2"
OLD = ("*/read", "Microsoft.Web/sites/restart/action")
NEW = (
    "*/read",
    "Microsoft.Web/sites/restart/action",
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
)


async def no_sleep(_: float) -> None:
    return None


FAST = RetryPolicy(attempts=4, deadline_seconds=3600, initial_seconds=0, max_seconds=0, jitter_seconds=0)


def settings(**overrides: Any) -> ExecutorSettings:
    base: dict[str, Any] = {
        "concurrency": 8,
        "per_subscription": 2,
        "failure_tolerance": Tolerance.parse("100%"),
        "operation_retry": FAST,
        "verify_retry": FAST,
        "settle_retry": FAST,
        "pacing": PacingPolicy(send_grace=0, default_retry_after=0, decrease_gap=0),
    }
    base.update(overrides)
    return ExecutorSettings(**base)


def make_app(i: int, tenant: str, sub: str) -> App:
    app_id = f"/subscriptions/{sub}/resourceGroups/rg{i}/providers/Microsoft.Solutions/applications/app{i}"
    mrg = f"/subscriptions/{sub}/resourceGroups/mrg{i}"
    return App(
        id=app_id,
        name=f"app{i}",
        tenant_id=tenant,
        subscription_id=sub,
        resource_group=f"rg{i}",
        location="westeurope",
        kind="ServiceCatalog",
        managed_resource_group_id=mrg,
        definition_id=V1,
        provisioning_state="Succeeded",
        lock_level="ReadOnly",
        deny_assignment=DenyAssignment(
            id=f"{mrg}/providers/Microsoft.Authorization/denyAssignments/sys{i}",
            name=f"sys{i}",
            scope=mrg,
            description=f"Created by managed application '{app_id}'.",
            actions=("*",),
            not_actions=OLD,
            is_system_protected=True,
        ),
    )


def fleet(n: int = 12, tenants: int = 2, subs_per_tenant: int = 2) -> tuple[FakeArm, list[App]]:
    arm = FakeArm(exclusions={V1.lower(): (OLD, ()), V2.lower(): (NEW, ())})
    apps = []
    for i in range(n):
        t = i % tenants
        s = (i // tenants) % subs_per_tenant
        app = make_app(i, f"tenant-{t}", f"sub-{t}-{s}")
        arm.add_app(app)
        apps.append(app)
    return arm, apps


def make_plan(apps: Sequence[App], wave_sizes: Sequence[int] = (2,), digest: str = "sha256:plan") -> Plan:
    items = []
    waves: list[list[str]] = []
    remaining = list(apps)
    sizes = list(wave_sizes)
    while remaining:
        size = sizes.pop(0) if sizes else len(remaining)
        waves.append([a.id for a in remaining[:size]])
        remaining = remaining[size:]
    wave_of = {app_id: w for w, ids in enumerate(waves) for app_id in ids}
    for app in apps:
        items.append(
            PlanItem(
                app_id=app.id,
                app_name=app.name,
                tenant_id=app.tenant_id,
                tenant_name=app.tenant_id.upper(),
                subscription_id=app.subscription_id,
                resource_group=app.resource_group,
                kind=app.kind,
                decision=Decision.UPDATE,
                reason="new exclusions",
                wave=wave_of[app.id],
                from_definition_id=V1,
                to_definition_id=V2,
                expected_not_actions=tuple(a.upper() for a in NEW),  # case must not matter
                fingerprint=fingerprint(app),
                as_read=summarize(app),
            )
        )
    return Plan(
        tool_version="test",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        target=Target(name="v2", definition_id=V2, definition=Definition(id=V2, lock_level="ReadOnly")),
        options=PlanOptions(),
        items=tuple(items),
        waves=tuple(
            Wave(index=w, name="canary" if w == 0 else f"wave-{w}", app_ids=tuple(ids))
            for w, ids in enumerate(waves)
        ),
        digest=digest,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db")
    yield j
    j.close()


def states(journal: Journal, run_id: str) -> dict[str, AppState]:
    return {a.app_id: a.state for a in journal.run_view(run_id).apps}


async def test_all_apps_upgrade_verify_and_are_journaled(journal: Journal) -> None:
    arm, apps = fleet(12)
    seen: list[Progress] = []
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep, progress=seen.append)
    assert view.state == RunState.COMPLETED
    assert set(states(journal, view.run_id).values()) == {AppState.SUCCEEDED}
    assert all(arm.writes[a.id.lower()] == 1 for a in apps)
    assert all(arm.app(a.id).definition_id == V2 for a in apps)
    assert arm.violations == []
    # Every app's events tell its story in order, with the operation URL and ARM request id.
    events = journal.events(view.run_id, apps[0].id)
    assert [e.state for e in events] == ["pending", "submitted", "submitted", "verifying", "succeeded"]
    assert events[2].operation_url and events[2].request_id
    assert {p.state for p in seen} >= {AppState.SUBMITTED, AppState.VERIFYING, AppState.SUCCEEDED}
    records = journal.apps(view.run_id)
    assert records[0].before is not None and records[0].before.definition_id == V1
    assert records[0].after_fingerprint is not None


async def test_waves_run_in_order_canary_first(journal: Journal) -> None:
    arm, apps = fleet(9)
    order: list[str] = []
    arm.before_call = lambda method, key: order.append(key) if method == "submit_upgrade" else None
    await run_plan(make_plan(apps, (1, 3)), arm, journal, settings(), sleep=no_sleep)
    assert order[0] == apps[0].id
    assert set(order[1:4]) == {a.id for a in apps[1:4]}
    assert set(order[4:]) == {a.id for a in apps[4:]}


async def test_every_request_waits_for_the_pacer_and_each_write_goes_on_its_reserved_place(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pacer mirrors ARM's buckets by the requests it lets go: one that did not wait would
    # overdraw the bucket the mirror says is there. An app's write is admitted before its re-read,
    # so its PUT goes right after that read, on the place reserved for it.
    arm, apps = fleet(6, tenants=2)
    calls: Counter[str] = Counter()
    arm.before_call = lambda method, key: calls.update([method])
    let_go: Counter[str] = Counter()
    sending, take = Pacer.sending, Pacer._take_reservation
    reserved_writes: list[bool] = []

    async def counting(self: Pacer, tenant_id: str, subscription_id: str | None, method: str) -> None:
        await sending(self, tenant_id, subscription_id, method)
        let_go[method] += 1

    def taking(self: Pacer, subscription_id: str, kind: CallKind) -> bool:
        held = take(self, subscription_id, kind)
        if kind == "write":
            reserved_writes.append(held)
        return held

    monkeypatch.setattr(Pacer, "sending", counting)
    monkeypatch.setattr(Pacer, "_take_reservation", taking)
    pacing = PacingPolicy(default_retry_after=0, decrease_gap=0)  # the send grace as shipped
    view = await run_plan(make_plan(apps), arm, journal, settings(pacing=pacing), sleep=no_sleep)
    assert view.state == RunState.COMPLETED
    # A re-read (the app, its deny assignment), the operation's poll and the poller's final read, a
    # verification: each one waited.
    reads = calls["get_application"] + calls["list_deny_assignments_at"] + 2 * calls["wait_operation"]
    assert reads >= 5 * len(apps)
    assert let_go == Counter({"GET": reads, "PUT": len(apps)})
    assert reserved_writes.count(True) == len(apps)  # each PUT on its place; none given back


async def test_concurrency_caps_are_never_exceeded(journal: Journal) -> None:
    arm, apps = fleet(40, tenants=2, subs_per_tenant=3)
    await run_plan(
        make_plan(apps, (40,)), arm, journal, settings(concurrency=5, per_subscription=2), sleep=no_sleep
    )
    # Operations in flight respect both caps; reads after an operation are bounded by the same number.
    assert arm.peak_ops <= 5
    assert max(arm.peak_ops_by_sub.values()) <= 2
    assert arm.peak_ops >= 2  # and there was real concurrency
    assert arm.peak_active <= 2 * 5


async def test_stale_app_is_not_written_and_says_what_changed(journal: Journal) -> None:
    arm, apps = fleet(4)
    plan = make_plan(apps)
    changed = apps[1].id
    arm.apps[changed.lower()] = arm.app(changed).model_copy(update={"definition_id": V2})
    view = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    app = next(a for a in view.apps if a.app_id == changed)
    assert app.state == AppState.STALE
    assert "definition" in (app.error_message or "") and "app-v2" in (app.error_message or "")
    assert arm.writes[changed.lower()] == 0
    assert sum(1 for a in view.apps if a.state == AppState.SUCCEEDED) == 3


async def test_non_update_items_keep_their_decision_and_the_plan_reason(journal: Journal) -> None:
    arm, apps = fleet(3)
    plan = make_plan(apps)
    item = plan.items[2].model_copy(
        update={"decision": Decision.CURRENT, "reason": "already on v2", "wave": None}
    )
    plan = plan.model_copy(
        update={
            "items": (*plan.items[:2], item),
            "waves": tuple(
                w.model_copy(update={"app_ids": tuple(a for a in w.app_ids if a != item.app_id)})
                for w in plan.waves
            ),
        }
    )
    view = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    current = next(a for a in view.apps if a.app_id == item.app_id)
    # Current apps are `current` in the journal (not lumped with skipped ones): status tells them apart.
    assert current.state == AppState.CURRENT and "already on v2" in (current.error_message or "")
    assert arm.writes[item.app_id.lower()] == 0


async def test_transient_operation_failure_is_retried(journal: Journal) -> None:
    arm, apps = fleet(2)
    arm.script[apps[0].id.lower()] = [
        "fail:InternalServerError",
        "raise:409:AnotherOperationInProgress",
        "ok",
    ]
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    assert states(journal, view.run_id)[apps[0].id] == AppState.SUCCEEDED
    assert arm.writes[apps[0].id.lower()] == 2
    assert journal.apps(view.run_id)[0].attempts == 3
    assert arm.violations == []


async def test_permanent_errors_fail_fast_with_the_cause(journal: Journal) -> None:
    arm, apps = fleet(3)
    arm.script[apps[0].id.lower()] = ["raise:403:AuthorizationFailed", "ok"]
    arm.script[apps[1].id.lower()] = ["fail:InvalidApplicationDefinition", "ok"]
    view = await run_plan(make_plan(apps, (3,)), arm, journal, settings(), sleep=no_sleep)
    by_id = {a.app_id: a for a in view.apps}
    assert by_id[apps[0].id].state == AppState.FAILED
    assert by_id[apps[0].id].error_code == "AuthorizationFailed"
    assert by_id[apps[0].id].attempts == 1
    assert by_id[apps[1].id].state == AppState.FAILED
    assert by_id[apps[1].id].error_code == "InvalidApplicationDefinition"
    assert arm.writes[apps[1].id.lower()] == 1
    assert by_id[apps[2].id].state == AppState.SUCCEEDED


async def test_retries_stop_at_the_attempt_cap(journal: Journal) -> None:
    arm, apps = fleet(1)
    arm.script[apps[0].id.lower()] = ["fail:InternalServerError"] * 10
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    assert view.apps[0].state == AppState.FAILED
    assert view.apps[0].error_code == "InternalServerError"
    assert arm.writes[apps[0].id.lower()] == FAST.attempts


async def test_lost_answer_is_reconciled_not_rewritten(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    arm, apps = fleet(1)
    key = apps[0].id.lower()
    arm.script[key] = ["lost"]

    # ARM finishes the operation on its own while we do not hear back.
    original = arm.get_application

    async def get_and_finish(tenant_id: str, app_id: str) -> App | None:
        for op_id, op in arm.ops.items():
            if op.app_id == app_id.lower():
                arm.finish(op_id)
        return await original(tenant_id, app_id)

    view_calls = 0

    async def counting(tenant_id: str, app_id: str) -> App | None:
        nonlocal view_calls
        view_calls += 1
        # The first read is the pre-write check; from the reconcile on, ARM has completed the write.
        return await (original if view_calls == 1 else get_and_finish)(tenant_id, app_id)

    monkeypatch.setattr(arm, "get_application", counting)
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    assert view.apps[0].state == AppState.SUCCEEDED
    assert arm.writes[key] == 1
    assert arm.violations == []


def finishing_reads(arm: FakeArm, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ARM completes every operation on its own, by the time the engine next reads the app."""
    original = arm.get_application
    reads: list[str] = []

    async def get_and_finish(tenant_id: str, app_id: str) -> App | None:
        reads.append(app_id)
        for op_id, op in list(arm.ops.items()):
            if op.app_id == app_id.lower() and len(reads) > 1:
                arm.finish(op_id)
        return await original(tenant_id, app_id)

    monkeypatch.setattr(arm, "get_application", get_and_finish)
    return reads


async def test_a_lost_write_that_did_not_land_is_written_again_after_arm_had_time_to_show_it(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    arm, apps = fleet(1)
    key = apps[0].id.lower()
    arm.script[key] = ["unsent"]
    reads = finishing_reads(arm, monkeypatch)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    view = await run_plan(make_plan(apps), arm, journal, settings(write_visibility_seconds=7.0), sleep=sleep)
    assert view.apps[0].state == AppState.SUCCEEDED
    assert arm.writes[key] == 1 and arm.violations == []
    assert 7.0 in slept  # looked twice, the visibility delay apart, before writing again
    assert len(reads) >= 3  # the pre-write read, then two looks


async def test_a_lost_write_whose_operation_failed_fails_the_app_with_the_cause(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    arm, apps = fleet(1)
    key = apps[0].id.lower()
    arm.script[key] = ["lost-fail"]
    finishing_reads(arm, monkeypatch)
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    app = view.apps[0]
    assert app.state == AppState.FAILED and app.error_code == "WriteFailed"
    assert "provisioning state Failed" in (app.error_message or "")
    assert arm.writes[key] == 1  # it landed once; not written blind again


async def test_a_write_lost_on_the_last_attempt_is_still_followed_to_its_end(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    arm, apps = fleet(1)
    key = apps[0].id.lower()
    arm.script[key] = ["unsent"] * (FAST.attempts - 1) + ["lost"]
    finishing_reads(arm, monkeypatch)
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    assert view.apps[0].state == AppState.SUCCEEDED, view.apps[0].error_message
    assert arm.writes[key] == 1 and arm.violations == []


async def test_a_lost_write_whose_operation_outlasts_the_settle_wait_is_never_written_again(
    journal: Journal,
) -> None:
    arm, apps = fleet(1)
    key = apps[0].id.lower()
    arm.script[key] = ["lost"]  # it landed; its operation keeps running (nobody finishes it)
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    app = view.apps[0]
    assert app.state == AppState.FAILED and app.error_code == "NotConverged"
    assert "still running" in (app.error_message or "")
    assert arm.writes[key] == 1 and arm.violations == []  # no write while the operation ran


async def test_verification_waits_for_convergence(journal: Journal) -> None:
    arm, apps = fleet(3)
    arm.converge_after_reads = 2
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}


async def test_verification_that_never_converges_is_unverified(journal: Journal) -> None:
    arm, apps = fleet(2)
    arm.never_converge = {apps[0].id.lower()}
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    app = next(a for a in view.apps if a.app_id == apps[0].id)
    assert app.state == AppState.UNVERIFIED
    assert "readmetadata" in (app.error_message or "").lower()
    assert arm.writes[apps[0].id.lower()] == 1


async def test_verification_that_cannot_tell_the_deny_assignment_apart_fails_with_the_cause(
    journal: Journal,
) -> None:
    arm, apps = fleet(2)
    arm.duplicate_after_write = {apps[0].id.lower()}
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    app = next(a for a in view.apps if a.app_id == apps[0].id)
    assert app.state == AppState.FAILED
    assert app.error_code == "DenyAssignmentUnidentified"
    assert "2 system-protected deny assignments" in (app.error_message or "")
    assert arm.writes[apps[0].id.lower()] == 1  # reported, never re-written
    assert next(a for a in view.apps if a.app_id == apps[1].id).state == AppState.SUCCEEDED


async def test_failure_tolerance_halts_and_leaves_the_rest_pending(journal: Journal) -> None:
    arm, apps = fleet(10)
    for app in apps[:2]:
        arm.script[app.id.lower()] = ["raise:403:AuthorizationFailed"]
    plan = make_plan(apps, (3,))
    view = await run_plan(
        plan, arm, journal, settings(failure_tolerance=Tolerance.parse("1")), sleep=no_sleep
    )
    assert view.state == RunState.HALTED
    later = {a.app_id: a.state for a in view.apps if a.wave and a.wave > 0}
    assert set(later.values()) == {AppState.PENDING}
    assert all(arm.writes[a.lower()] == 0 for a in later)


async def test_failure_tolerance_as_a_percentage() -> None:
    tolerance = Tolerance.parse("25%")
    assert tolerance.allowed(8) == 2
    assert not tolerance.exceeded(2, 8) and tolerance.exceeded(3, 8)
    assert Tolerance.parse("0").exceeded(1, 100)
    with pytest.raises(ValueError, match="count"):
        Tolerance.parse("ten")
    with pytest.raises(ValueError, match="at most 100"):
        Tolerance.parse("150%")


async def test_only_one_wave(journal: Journal) -> None:
    arm, apps = fleet(6)
    view = await run_plan(make_plan(apps, (2,)), arm, journal, settings(only_wave=1), sleep=no_sleep)
    assert view.state == RunState.INTERRUPTED
    assert {a.state for a in view.apps if a.wave == 1} == {AppState.SUCCEEDED}
    assert {a.state for a in view.apps if a.wave == 0} == {AppState.PENDING}


async def test_bake_time_between_waves(journal: Journal) -> None:
    arm, apps = fleet(6)
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    await run_plan(make_plan(apps, (2, 2)), arm, journal, settings(bake_seconds=600), sleep=record_sleep)
    assert slept.count(600) == 2  # after the canary and after wave-1, not after the last wave


async def test_resume_reattaches_to_submitted_operations_instead_of_resubmitting(journal: Journal) -> None:
    arm, apps = fleet(4)
    plan = make_plan(apps, (4,))
    crashing = apps[1].id.lower()
    arm.script[crashing] = ["crash-after-submit"]
    with pytest.raises(BaseExceptionGroup):
        await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    run_id = journal.latest_run_for(plan.digest)
    assert run_id is not None
    record = next(r for r in journal.apps(run_id) if r.app_id.lower() == crashing)
    assert record.state == AppState.SUBMITTED and record.resume_token and record.operation_url
    succeeded_before = {r.app_id for r in journal.apps(run_id) if r.state == AppState.SUCCEEDED}
    writes_before = dict(arm.writes)

    view = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)  # the same plan: the same run
    assert view.run_id == run_id
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}
    assert arm.writes[crashing] == 1  # re-attached, not re-submitted
    for app_id in succeeded_before:
        assert arm.writes[app_id.lower()] == writes_before[app_id.lower()]  # never touched again
    assert arm.violations == []


async def test_resume_of_a_submitted_app_without_a_token_rereads_first(journal: Journal) -> None:
    arm, apps = fleet(2)
    plan = make_plan(apps, (2,))
    target = apps[0].id

    def crash_on_submit(method: str, key: str) -> None:
        if method == "submit_upgrade" and key == target:
            raise Crash("died right after journaling the intent")

    arm.before_call = crash_on_submit
    with pytest.raises(BaseExceptionGroup):
        await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    run_id = journal.latest_run_for(plan.digest)
    assert run_id is not None
    assert states(journal, run_id)[target] == AppState.SUBMITTED
    arm.before_call = None
    view = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}
    assert arm.writes[target.lower()] == 1  # the write never happened before; now exactly once


async def test_resume_of_verifying_reverifies_without_writing(journal: Journal) -> None:
    arm, apps = fleet(1)
    plan = make_plan(apps)

    def crash_on_verify(method: str, key: str) -> None:
        if method == "list_deny_assignments_at" and arm.writes[apps[0].id.lower()] == 1:
            raise Crash("died while verifying")

    arm.before_call = crash_on_verify
    with pytest.raises(BaseExceptionGroup):
        await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    run_id = journal.latest_run_for(plan.digest)
    assert run_id is not None
    assert states(journal, run_id)[apps[0].id] == AppState.VERIFYING
    arm.before_call = None
    view = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    assert view.apps[0].state == AppState.SUCCEEDED
    assert arm.writes[apps[0].id.lower()] == 1


async def test_new_run_flag_starts_a_fresh_run(journal: Journal) -> None:
    arm, apps = fleet(2)
    plan = make_plan(apps)
    first = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    second = await run_plan(plan, arm, journal, settings(), sleep=no_sleep, new_run=True)
    assert second.run_id != first.run_id
    # The apps moved to the target since the plan was made: a fresh run finds them current, writes nothing.
    assert {a.state for a in second.apps} == {AppState.CURRENT}
    assert all("already on the target" in (a.error_message or "") for a in second.apps)
    assert all(arm.writes[a.id.lower()] == 1 for a in apps)


async def test_rollback_puts_apps_back_and_marks_the_original(journal: Journal) -> None:
    arm, apps = fleet(3)
    applied = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    rolled = await run_rollback(
        applied.run_id, arm, journal, settings(), app_ids=[apps[0].id, apps[1].id], sleep=no_sleep
    )
    assert rolled.kind == "rollback"
    assert {a.state for a in rolled.apps} == {AppState.SUCCEEDED}
    assert len(rolled.apps) == 2
    assert arm.app(apps[0].id).definition_id == V1
    restored = arm.app(apps[0].id).deny_assignment
    assert restored is not None
    assert set(restored.not_actions) == set(OLD)
    assert arm.app(apps[2].id).definition_id == V2
    after = states(journal, applied.run_id)
    assert after[apps[0].id] == after[apps[1].id] == AppState.ROLLED_BACK
    assert after[apps[2].id] == AppState.SUCCEEDED
    assert journal.run(rolled.run_id).parent_run_id == applied.run_id
    # Running the same rollback again continues that run and writes nothing more.
    again = await run_rollback(
        applied.run_id, arm, journal, settings(), app_ids=[apps[0].id, apps[1].id], sleep=no_sleep
    )
    assert again.run_id == rolled.run_id
    assert arm.writes[apps[0].id.lower()] == 2


async def test_rollback_marks_both_runs_in_one_transaction(journal: Journal) -> None:
    arm, apps = fleet(2)
    applied = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    commits: list[set[tuple[str, str, AppState]]] = []
    original = journal.record_many

    def spy(transitions: Any) -> None:
        batch = list(transitions)
        commits.append({(t.run_id, t.app_id, t.state) for t in batch})
        original(batch)

    journal.record_many = spy  # type: ignore[method-assign]
    rolled = await run_rollback(applied.run_id, arm, journal, settings(), sleep=no_sleep)
    for app in apps:
        mark = (applied.run_id, app.id, AppState.ROLLED_BACK)
        [commit] = [c for c in commits if mark in c]
        # The parent's mark shares its commit with the rollback run's success of that app.
        assert (rolled.run_id, app.id, AppState.SUCCEEDED) in commit


async def test_resume_repairs_a_parent_an_older_version_left_claiming_the_app_is_upgraded(
    journal: Journal,
) -> None:
    from orchestrator.executor.runs import rollback_digest, rollback_work
    from orchestrator.journal import Transition

    arm, apps = fleet(2)
    applied = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    # What an older version left after a crash between its two commits: the rollback run says the
    # app is back on v1 (and it is), the parent still says succeeded.
    rows, _ = rollback_work(journal.apps(applied.run_id), None)
    rollback_id = journal.create_run(
        kind="rollback",
        plan_digest=rollback_digest(applied.run_id, None),
        plan_path=None,
        target_name=f"rollback of {applied.run_id}",
        apps=rows,
        wave_names={0: "rollback"},
        parent_run_id=applied.run_id,
    )
    first = apps[0].id
    arm.apps[first.lower()] = arm.app(first).model_copy(update={"definition_id": V1})
    journal.record(Transition(run_id=rollback_id, app_id=first, state=AppState.SUCCEEDED))
    assert states(journal, applied.run_id)[first] == AppState.SUCCEEDED  # inconsistent
    writes = dict(arm.writes)

    view = await run_rollback(applied.run_id, arm, journal, settings(), sleep=no_sleep, run_id=rollback_id)
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}
    after = states(journal, applied.run_id)
    assert after[first] == after[apps[1].id] == AppState.ROLLED_BACK
    assert arm.writes[first.lower()] == writes[first.lower()]  # repaired in the journal, not rewritten
    events = journal.events(applied.run_id, first)
    assert "repaired" in (events[-1].message or "")
    assert journal.repair_rollbacks() == []  # nothing left to repair


async def test_apply_rechecks_the_product_lineage_per_app(journal: Journal) -> None:
    monitoring = V1.replace("/app-v1", "/monitoring-v1")
    arm, apps = fleet(2)
    theirs = apps[1].model_copy(update={"definition_id": monitoring})
    arm.add_app(theirs)
    arm.exclusions[monitoring.lower()] = (OLD, ())
    # A plan made by a version that did not check lineage: it would move the other product's app.
    plan = make_plan([apps[0], theirs])
    assert plan.target.lineage is None
    view = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    by_id = {a.app_id: a for a in view.apps}
    assert by_id[apps[0].id].state == AppState.SUCCEEDED
    skipped = by_id[theirs.id]
    assert skipped.state == AppState.SKIPPED and skipped.error_code == "DifferentProduct"
    assert (skipped.error_message or "").startswith("different product: definition")
    assert arm.writes[theirs.id.lower()] == 0 and arm.app(theirs.id).definition_id == monitoring


async def test_closed_maintenance_window_leaves_apps_pending_and_later_waves_waiting(
    journal: Journal,
) -> None:
    arm, apps = fleet(8, tenants=2)
    closed = {"tenant-1"}

    def gate(tenant_id: str) -> str | None:
        return "outside maintenance window; next window Sat 02:00 UTC" if tenant_id in closed else None

    plan = make_plan(apps, (4,))
    view = await run_plan(plan, arm, journal, settings(window_gate=gate), sleep=no_sleep)
    assert view.state == RunState.WAITING
    canary = [a for a in view.apps if a.wave == 0]
    assert {a.state for a in canary if a.tenant_id == "tenant-0"} == {AppState.SUCCEEDED}
    waiting = [a for a in canary if a.tenant_id == "tenant-1"]
    assert waiting and all(a.state == AppState.PENDING and a.error_code == "WindowClosed" for a in waiting)
    assert {a.state for a in view.apps if a.wave == 1} == {AppState.PENDING}  # the next wave waits too
    assert all(arm.writes[a.app_id.lower()] == 0 for a in waiting)
    # The window opens: the same plan continues the same run and finishes it.
    closed.clear()
    view = await run_plan(plan, arm, journal, settings(window_gate=gate), sleep=no_sleep)
    assert view.state == RunState.COMPLETED
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}


@pytest.mark.parametrize("error", ["JournalError", "JournalUnavailable"])
async def test_a_journal_that_cannot_be_written_stops_the_run_with_its_one_line_error(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    from orchestrator import errors

    arm, apps = fleet(3)
    failure: type[errors.OrchestratorError] = getattr(errors, error)

    def broken(transitions: object) -> None:
        raise failure(f"{journal.path}: cannot write: disk I/O error")

    monkeypatch.setattr(journal, "record_many", broken)
    with pytest.raises(failure, match="disk I/O error"):
        await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    monkeypatch.undo()  # the journal writes again
    assert sum(arm.writes.values()) == 0  # nothing written that could not be journaled first


async def test_by_default_nothing_but_arm_limits_a_wave(journal: Journal) -> None:
    arm, apps = fleet(40, tenants=2, subs_per_tenant=2)
    base = settings()
    plain = ExecutorSettings(
        failure_tolerance=base.failure_tolerance,
        operation_retry=FAST,
        verify_retry=FAST,
        settle_retry=FAST,
        pacing=base.pacing,
    )
    assert plain.concurrency is None and plain.per_subscription is None
    view = await run_plan(make_plan(apps, (40,)), arm, journal, plain, sleep=no_sleep)
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}
    assert arm.peak_ops == 40  # the whole wave in flight at once: no cap of our own


async def test_arm_pushback_narrows_the_subscriptions_window(journal: Journal) -> None:

    arm, apps = fleet(12, tenants=1, subs_per_tenant=1)
    arm.script[apps[0].id.lower()] = ["raise:503:ServiceUnavailable"]
    view = await run_plan(
        make_plan(apps, (12,)),
        arm,
        journal,
        settings(concurrency=None, per_subscription=None),
        sleep=no_sleep,
    )
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}  # the refused write was re-read, redone
    pacer = arm.observer  # the engine's pacer hears every answer
    assert isinstance(pacer, Pacer)
    assert pacer.pushbacks == 1
    window = pacer.window("sub-0-0")
    assert window is not None and window < 12  # halved from what was in flight, then widened again
    assert arm.writes[apps[0].id.lower()] == 1


def test_one_time_scale_helper_scales_every_duration_and_nothing_else() -> None:
    """`durations.scaled` serves the retry and the pacing policy alike (counts and shares unchanged)."""
    retry = RetryPolicy(attempts=7, deadline_seconds=100, initial_seconds=2, max_seconds=60, jitter_seconds=1)
    assert retry.scaled(0.5) == RetryPolicy(
        attempts=7, deadline_seconds=50, initial_seconds=1, max_seconds=30, jitter_seconds=0.5
    )
    pacing = PacingPolicy(
        reserve=20, send_grace=8, default_retry_after=2, decrease_gap=4, head_start_share=0.8
    )
    assert pacing.scaled(0.25) == PacingPolicy(
        reserve=20,
        send_grace=2,
        default_retry_after=0.5,
        decrease_gap=1,
        head_start_share=0.8,
    )


async def test_an_update_reads_the_app_once_and_puts_exactly_what_it_checked(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PUT is built from the re-read the stale check passed (no GET of its own), and verification
    starts from the operation's final read (no GET of its own): one read of each app."""
    arm, apps = fleet(6)
    original = arm.get_application
    app_reads: list[str] = []

    async def counting(tenant_id: str, app_id: str) -> App | None:
        app_reads.append(app_id.lower())
        return await original(tenant_id, app_id)

    monkeypatch.setattr(arm, "get_application", counting)
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}
    assert sorted(app_reads) == sorted(a.id.lower() for a in apps)
    assert all(arm.writes_from_read[a.id.lower()] == 1 == arm.writes[a.id.lower()] for a in apps)
    assert arm.violations == []


async def test_a_write_after_a_failed_operation_reads_the_resource_again(journal: Journal) -> None:
    """Only the read admitted with a fresh app's first write serves a PUT; a second write (after the
    operation failed) lets the gateway read the resource itself."""
    arm, apps = fleet(1)
    key = apps[0].id.lower()
    arm.script[key] = ["fail:InternalServerError", "ok"]
    view = await run_plan(make_plan(apps), arm, journal, settings(), sleep=no_sleep)
    assert view.apps[0].state == AppState.SUCCEEDED
    assert arm.writes[key] == 2 and arm.writes_from_read[key] == 1
    assert arm.violations == []


@pytest.mark.parametrize(
    ("reported", "head_start"),
    [
        (300.0, 300.0),  # ARM's account, shorter than the 330 s seen here: the exact one
        (None, 330.0),  # ARM does not say: as seen
        (400.0, 330.0),  # ARM says longer than seen (its clock started first): never later than seen
    ],
)
async def test_the_head_start_takes_the_operation_time_arm_reports(
    journal: Journal, reported: float | None, head_start: float
) -> None:
    """Seen from here an operation lasts until the poll that saw it end (up to one Retry-After late);
    its status's endTime - startTime is how long it really ran. The next writes' first polls wait the
    shorter of the two."""
    arm, apps = fleet(2)
    arm.operation_seconds = reported
    now = [0.0]

    def following_takes_330_seconds(method: str, _key: str) -> None:
        if method == "wait_operation":
            now[0] += 330.0

    arm.before_call = following_takes_330_seconds
    view = await run_plan(make_plan(apps), arm, journal, settings(), clock=lambda: now[0], sleep=no_sleep)
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}
    pacer = arm.observer
    assert isinstance(pacer, Pacer)
    assert pacer.head_start_seconds() == pytest.approx(head_start)
