"""`status` (table and html) names the waves as the plan does, when the run's plan file is intact."""

from __future__ import annotations

from pathlib import Path

from orchestrator.executor.runs import wave_names
from orchestrator.planning.planfile import read_plan
from tests.html_samples import sample_run

EXAMPLE = Path(__file__).resolve().parents[2] / "plans" / "examples" / "example-plan.json"


def test_wave_names_come_from_the_intact_plan(tmp_path: Path) -> None:
    plan = read_plan(EXAMPLE)
    run = sample_run().model_copy(update={"plan_path": str(EXAMPLE), "plan_digest": plan.digest})
    assert wave_names(run) == {w.index: w.name for w in plan.waves}


def test_a_moved_or_edited_plan_leaves_wave_numbers(tmp_path: Path) -> None:
    plan = read_plan(EXAMPLE)
    moved = sample_run().model_copy(update={"plan_path": str(tmp_path / "gone.json")})
    assert wave_names(moved) == {}
    edited = tmp_path / "plan.json"
    edited.write_text(EXAMPLE.read_text().replace('"canary"', '"kanary"', 1))
    assert wave_names(sample_run().model_copy(update={"plan_path": str(edited)})) == {}
    other = sample_run().model_copy(update={"plan_path": str(EXAMPLE), "plan_digest": "sha256:other"})
    assert wave_names(other) == {} and plan.digest != "sha256:other"
