"""The second signal: a PUT event for an app being verified wakes verification at once; a PUT Failed
event gives the cause when ARM shows the app Failed; the event alone never marks an app succeeded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from orchestrator.executor import RetryPolicy, run_plan
from orchestrator.journal import Journal
from orchestrator.models import AppState
from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import parse_event
from orchestrator.notifications.signals import RegistryWatch, Signal
from tests.notifications.events import body
from tests.unit.test_engine import fleet, make_plan, no_sleep, settings

# Without a signal, each verification pause would last an hour: a test that ends did so by the signal.
HOUR = RetryPolicy(
    attempts=3, deadline_seconds=7200, initial_seconds=3600, max_seconds=3600, jitter_seconds=0
)

pytestmark = pytest.mark.timeout(60)


class FakeSignals:
    def __init__(self, signal: Signal, before: object = None) -> None:
        self.signal = signal
        self.waits = 0
        self.before = before

    def mark(self) -> int:
        return 0

    async def wait(self, app_id: str, *, after: int, timeout: float) -> Signal | None:
        self.waits += 1
        if callable(self.before):
            self.before()
        s = self.signal
        return Signal(app_id, s.provisioning_state, s.error_code, s.error_message)

    async def close(self) -> None:
        pass


def _event(app_id: str, state: str) -> bytes:
    return json.dumps(body(app=app_id, state=state)).encode()


async def test_a_succeeded_event_cuts_the_wait_but_the_deny_assignment_decides(tmp_path: Path) -> None:
    arm, apps = fleet(2)
    arm.converge_after_reads = 1
    signals = FakeSignals(Signal("", "Succeeded"))
    with Journal(tmp_path / "j.db") as journal:
        view = await run_plan(
            make_plan(apps), arm, journal, settings(verify_retry=HOUR), sleep=no_sleep, signals=signals
        )
    assert {a.state for a in view.apps} == {AppState.SUCCEEDED}
    assert signals.waits >= 2


async def test_a_succeeded_event_alone_never_marks_success(tmp_path: Path) -> None:
    arm, apps = fleet(1)
    arm.never_converge = {apps[0].id.lower()}
    signals = FakeSignals(Signal("", "Succeeded"))
    with Journal(tmp_path / "j.db") as journal:
        view = await run_plan(
            make_plan(apps), arm, journal, settings(verify_retry=HOUR), sleep=no_sleep, signals=signals
        )
    assert view.apps[0].state == AppState.UNVERIFIED


async def test_a_failed_event_is_the_cause_when_arm_shows_the_app_failed(tmp_path: Path) -> None:
    arm, apps = fleet(1)
    key = apps[0].id.lower()
    arm.never_converge = {key}

    def arm_fails() -> None:
        arm.apps[key] = arm.apps[key].model_copy(update={"provisioning_state": "Failed"})

    signals = FakeSignals(Signal("", "Failed", "ApplicationDefinitionInvalid", "template invalid"), arm_fails)
    with Journal(tmp_path / "j.db") as journal:
        view = await run_plan(
            make_plan(apps), arm, journal, settings(verify_retry=HOUR), sleep=no_sleep, signals=signals
        )
    app = view.apps[0]
    assert app.state == AppState.FAILED and app.error_code == "ApplicationDefinitionInvalid"
    assert app.error_message == "Azure notified PUT Failed: template invalid"


async def test_a_stale_failed_event_does_not_fail_an_app_arm_shows_succeeded(tmp_path: Path) -> None:
    arm, apps = fleet(1)
    arm.converge_after_reads = 1
    signals = FakeSignals(Signal("", "Failed", "Old", "an earlier attempt"))
    with Journal(tmp_path / "j.db") as journal:
        view = await run_plan(
            make_plan(apps), arm, journal, settings(verify_retry=HOUR), sleep=no_sleep, signals=signals
        )
    assert view.apps[0].state == AppState.SUCCEEDED


async def test_registry_watch_wakes_on_a_new_event_only(tmp_path: Path) -> None:
    app_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Solutions/applications/a1"
    with Registry(tmp_path / "j.db") as registry:
        registry.record(parse_event(_event(app_id, "Succeeded")))  # before the mark: ignored
        watch = RegistryWatch(registry, poll=0.01)
        mark = watch.mark()
        assert await watch.wait(app_id, after=mark, timeout=0.1) is None
        failed = parse_event(json.dumps(body(app=app_id, state="Failed", seconds=9)).encode())
        later = asyncio.get_running_loop().call_later(0.05, registry.record, failed)
        got = await watch.wait(app_id.upper(), after=mark, timeout=30)
        later.cancel()
        assert got is not None and got.failed and got.error_code == "ApplicationDefinitionInvalid"
        if watch._task is not None:
            watch._task.cancel()


async def test_apply_uses_the_registry_in_the_journal_file(tmp_path: Path) -> None:
    """No signals given: run_plan watches the journal's own registry; the receiver (here: a write to
    the registry from the side) stores the PUT Succeeded event, and verification goes at once."""
    arm, apps = fleet(1)
    arm.converge_after_reads = 1
    path = tmp_path / "journal.db"
    registry = Registry(path)

    async def receiver() -> None:
        while True:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(registry.record, parse_event(_event(apps[0].id, "Succeeded")))

    side = asyncio.create_task(receiver())
    try:
        with Journal(path) as journal:
            view = await run_plan(make_plan(apps), arm, journal, settings(verify_retry=HOUR), sleep=no_sleep)
    finally:
        side.cancel()
        registry.close()
    assert view.apps[0].state == AppState.SUCCEEDED
