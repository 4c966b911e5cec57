"""verify.judge (pure): what ARM shows decides a customer-run update; Azure's PUT event gives a cause,
never the verdict."""

from __future__ import annotations

from pathlib import Path

from orchestrator.models import App, AppState, Decision, DenyAssignment, PlanItem
from orchestrator.notifications.signals import Signal
from orchestrator.planning.planfile import read_plan
from orchestrator.verify import judge

ROOT = Path(__file__).resolve().parents[2]
PLAN = read_plan(ROOT / "plans" / "examples" / "example-plan.json")
LOCK = PLAN.target.definition.lock_level


def _item() -> PlanItem:
    return next(i for i in PLAN.items if i.decision == Decision.UPDATE and i.to_definition_id)


def _app(item: PlanItem, *, on_target: bool, state: str, deny: bool) -> App:
    assert item.as_read is not None
    mrg = item.as_read.managed_resource_group_id
    assignment = DenyAssignment(
        id="d",
        name="d",
        scope=mrg,
        not_actions=item.expected_not_actions,
        not_data_actions=item.expected_not_data_actions,
    )
    return App(
        id=item.app_id,
        name=item.app_name,
        tenant_id=item.tenant_id,
        subscription_id=item.subscription_id,
        resource_group=item.resource_group,
        location="eastus",
        kind=item.kind,
        managed_resource_group_id=mrg,
        definition_id=item.to_definition_id if on_target else item.from_definition_id,
        provisioning_state=state,
        deny_assignment=assignment if deny else None,
    )


def test_judge_a_customer_run_app() -> None:
    item = _item()
    assert (
        judge(item, _app(item, on_target=False, state="Succeeded", deny=True), lock_level=LOCK).state is None
    )
    done = _app(item, on_target=True, state="Succeeded", deny=True)
    assert judge(item, done, lock_level=LOCK).state == AppState.SUCCEEDED
    assert done.deny_assignment is not None
    wrong = done.model_copy(
        update={"deny_assignment": done.deny_assignment.model_copy(update={"not_actions": ()})}
    )
    verdict = judge(item, wrong, lock_level=LOCK)
    assert verdict.state == AppState.FAILED and verdict.code == "VerifyDenyMismatch"
    failed = done.model_copy(update={"provisioning_state": "Failed"})
    assert judge(item, failed, lock_level=LOCK).code == "VerifyProvisioningFailed"
    assert judge(item, None, lock_level=LOCK, read_error="application x: not found").code == "VerifyAppGone"


FAILED = Signal("x", "Failed", "ApplicationDefinitionInvalid", "the main template is invalid")
SUCCEEDED = Signal("x", "Succeeded")


def test_a_put_failed_event_is_the_cause_when_arm_shows_the_app_failed() -> None:
    item = _item()
    for on_target in (True, False):  # a failed PUT may leave the app on its old definition
        app = _app(item, on_target=on_target, state="Failed", deny=False)
        verdict = judge(item, app, lock_level=LOCK, notified=FAILED)
        assert verdict.state == AppState.FAILED and verdict.code == "ApplicationDefinitionInvalid"
        assert verdict.message == "Azure notified PUT Failed: the main template is invalid"


def test_the_event_alone_decides_nothing() -> None:
    item = _item()
    # A stale PUT Failed event while ARM shows the update done, deny assignment as planned: succeeded.
    done = _app(item, on_target=True, state="Succeeded", deny=True)
    assert judge(item, done, lock_level=LOCK, notified=FAILED).state == AppState.SUCCEEDED
    # PUT Succeeded but ARM does not show the app on the target: it keeps waiting.
    before = _app(item, on_target=False, state="Succeeded", deny=True)
    assert judge(item, before, lock_level=LOCK, notified=SUCCEEDED).state is None
    # PUT Succeeded, on the target, but no deny assignment as planned: failed, whatever the event said.
    bare = _app(item, on_target=True, state="Succeeded", deny=False)
    verdict = judge(item, bare, lock_level=LOCK, notified=SUCCEEDED)
    assert verdict.state == AppState.FAILED and verdict.code == "VerifyDenyMismatch"
