"""The run service: the rollback's preview, its review and its execution take the same apps; a run
continues only the plan it was made from."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.errors import PlanFileError
from orchestrator.executor import run_plan, run_rollback, runs
from orchestrator.executor.rollback_plan import rollback_plan
from orchestrator.journal import Journal, Transition
from orchestrator.models import AppState
from tests.unit.test_engine import fleet, journal, make_plan, no_sleep, settings

__all__ = ["journal"]  # the fixture, imported for pytest


@pytest.mark.parametrize("chosen", [None, "some"])
async def test_rollback_preview_review_and_run_choose_the_same_apps(
    journal: Journal, chosen: str | None
) -> None:
    arm, apps = fleet(5)
    plan = make_plan(apps, (5,))
    # One app is the customer's to update (a kit): verify later journals it succeeded, but the
    # orchestrator never wrote it, so there is nothing of its own to roll back.
    kit_app = apps[3].id
    plan = plan.model_copy(
        update={
            "items": tuple(
                i.model_copy(update={"path": "customer-run"}) if i.app_id == kit_app else i
                for i in plan.items
            )
        }
    )
    arm.script[apps[4].id.lower()] = ["raise:403:AuthorizationFailed"]
    applied = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    journal.record(Transition(run_id=applied.run_id, app_id=kit_app, state=AppState.SUCCEEDED))
    by_state = {a.app_id: a.state for a in journal.run_view(applied.run_id).apps}
    assert by_state[kit_app] == AppState.SUCCEEDED and by_state[apps[4].id] == AppState.FAILED
    app_ids = [apps[0].id, kit_app, apps[4].id] if chosen else None

    parent = journal.run_view(applied.run_id)
    previewed = {a.app_id for a in runs.rollback_preview(journal, parent, app_ids).apps}
    rows, _ = runs.rollback_work(journal.apps(applied.run_id), app_ids)
    review = rollback_plan(
        plan, applied.run_id, journal.apps(applied.run_id), app_ids, tool_version="t", now=datetime.now(UTC)
    )
    rolled = await run_rollback(applied.run_id, arm, journal, settings(), app_ids=app_ids, sleep=no_sleep)

    expected = {apps[0].id} if chosen else {apps[0].id, apps[1].id, apps[2].id}
    assert previewed == expected
    assert {r.app_id for r in rows} == expected
    assert {i.app_id for i in review.items} == expected
    assert {a.app_id for a in rolled.apps} == expected
    assert runs.rollback_run(journal, applied.run_id, app_ids) == rolled.run_id


async def test_a_run_continues_only_the_plan_it_was_made_from(journal: Journal) -> None:
    arm, apps = fleet(2)
    plan = make_plan(apps)
    applied = await run_plan(plan, arm, journal, settings(), sleep=no_sleep)
    assert runs.choose_apply_run(journal, plan) == applied.run_id
    assert runs.choose_apply_run(journal, plan, new_run=True) is None
    other = make_plan(apps, digest="sha256:other")
    with pytest.raises(PlanFileError, match=f"is not the plan run {applied.run_id} was started from"):
        runs.choose_apply_run(journal, other, run_id=applied.run_id)
    with pytest.raises(PlanFileError, match="the file changed"):
        await run_plan(other, arm, journal, settings(), sleep=no_sleep, run_id=applied.run_id)
