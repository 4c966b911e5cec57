"""The plan file: canonical form, digest, atomic write, and one-line refusals of anything not as sealed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from orchestrator.errors import PlanFileError
from orchestrator.models import Plan
from orchestrator.planning.planfile import canonical_json, plan_schema, read_plan, seal, write_plan
from orchestrator.planning.target import target_file_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "plans" / "examples" / "example-plan.json"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plan() -> Plan:
    built: Plan = _script("gen_example_plan").build()
    return built


@pytest.fixture
def plan_path(plan: Plan, tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    write_plan(plan, path)
    return path


def _rewrite(path: Path, change: Any) -> None:
    body = json.loads(path.read_text())
    change(body)
    path.write_text(json.dumps(body, indent=2))


def test_round_trip(plan: Plan, plan_path: Path) -> None:
    assert plan.digest.startswith("sha256:") and len(plan.digest) == len("sha256:") + 64
    assert read_plan(plan_path) == plan
    assert list(plan_path.parent.iterdir()) == [plan_path]  # no temp file left behind
    assert plan_path.read_text().startswith('{\n  "schema_version": 1,')


def test_digest_covers_the_body_but_not_itself(plan: Plan) -> None:
    assert seal(plan) == plan
    assert seal(plan.model_copy(update={"digest": "sha256:whatever"})).digest == plan.digest
    assert seal(plan.model_copy(update={"tool_version": "other"})).digest != plan.digest


def test_canonical_json_is_compact_sorted_utf8(plan: Plan) -> None:
    text = canonical_json(plan).decode("utf-8")
    body = json.loads(text)
    assert text == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert list(body) == sorted(body)
    # Reordering keys or whitespace does not change the canonical form.
    reordered = Plan.model_validate(dict(reversed(list(body.items()))))
    assert canonical_json(reordered) == canonical_json(plan)


def test_one_byte_change_is_a_digest_mismatch(plan_path: Path) -> None:
    raw = plan_path.read_bytes()
    index = raw.index(b"readMetadata")
    plan_path.write_bytes(raw[:index] + b"R" + raw[index + 1 :])
    with pytest.raises(PlanFileError) as caught:
        read_plan(plan_path)
    assert str(caught.value) == f"{plan_path}: digest mismatch: the plan was modified after it was written"


def test_reformatting_whitespace_is_not_a_modification(plan: Plan, plan_path: Path) -> None:
    plan_path.write_text(json.dumps(json.loads(plan_path.read_text()), separators=(",", ":")))
    assert read_plan(plan_path) == plan


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda b: b.update(schema_version=2), "plan was written by a newer orchestrator (schema version 2;"),
        (lambda b: b.update(schema_version=0), "plan was written by an older orchestrator"),
        (lambda b: b.pop("schema_version"), "schema_version is missing"),
        (
            lambda b: b.pop("target"),
            "does not match the plan schema at (top level): 'target' is a required property",
        ),
        (lambda b: b["items"][0].pop("fingerprint"), "at items/0: 'fingerprint' is a required property"),
        (lambda b: b["items"][0].update(decision="maybe"), "at items/0/decision: 'maybe' is not one of"),
        (lambda b: b.update(surprise=1), "Additional properties are not allowed ('surprise' was unexpected)"),
        (lambda b: b.update(digest=""), "the plan is not sealed"),
    ],
)
def test_invalid_plans_are_refused_in_one_line(plan_path: Path, change: Any, problem: str) -> None:
    _rewrite(plan_path, change)
    with pytest.raises(PlanFileError) as caught:
        read_plan(plan_path)
    message = str(caught.value)
    assert message.startswith(f"{plan_path}: ")
    assert problem in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            b"{not json",
            "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (b"", "not valid JSON"),
        (b"[1, 2]", "the top level must be a JSON object"),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    with pytest.raises(PlanFileError, match="^" + str(path).replace(".", r"\.") + ": ") as caught:
        read_plan(path)
    assert problem in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match=r"nope\.json: cannot read: no such file"):
        read_plan(tmp_path / "nope.json")


def test_write_refuses_an_unsealed_plan(plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sealed"):
        write_plan(plan.model_copy(update={"digest": ""}), tmp_path / "p.json")


def test_write_into_a_missing_directory_is_one_line(plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match=r"cannot write"):
        write_plan(plan, tmp_path / "missing" / "p.json")


def test_write_replaces_an_existing_plan(plan: Plan, plan_path: Path) -> None:
    other = seal(plan.model_copy(update={"tool_version": "9.9.9"}))
    write_plan(other, plan_path)
    assert read_plan(plan_path).tool_version == "9.9.9"


# --- generated files never drift from the models -------------------------------------------------------


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_committed_schemas_match_the_models() -> None:
    hint = "regenerate with: .venv/bin/python scripts/gen_schemas.py"
    assert _json(ROOT / "plans" / "plan.schema.json") == plan_schema(), hint
    assert _json(ROOT / "orchestrator" / "schemas" / "plan.schema.json") == plan_schema(), hint
    assert _json(ROOT / "plans" / "target.schema.json") == target_file_schema(), hint


def test_committed_example_plan_is_what_the_planner_makes(plan: Plan) -> None:
    assert read_plan(EXAMPLE) == plan, "regenerate with: .venv/bin/python scripts/gen_example_plan.py"


def test_simplified_schema_accepts_exactly_what_the_model_schema_accepts(plan_path: Path) -> None:
    from jsonschema import Draft202012Validator

    raw = Draft202012Validator(Plan.model_json_schema())
    simplified = Draft202012Validator(plan_schema())
    body = json.loads(plan_path.read_text())
    item = body["items"][0]
    variants: list[Any] = [body]
    item_changes: list[tuple[str, Any]] = [
        ("wave", None),
        ("wave", "1"),
        ("wave", 1.5),
        ("from_definition_id", None),
        ("from_definition_id", 5),
        ("from_plan", None),
        ("from_plan", {"publisher": "p"}),
        ("as_read", None),
        ("as_read", "x"),
        ("decision", None),
        ("risks", [{"code": "c", "severity": None, "message": "m"}]),
    ]
    for key, value in item_changes:
        variants.append({**body, "items": [{**item, key: value}]})
    plan_changes: list[tuple[str, Any]] = [
        ("counts", None),
        ("counts", "x"),
        ("digest", None),
        ("notes", [None]),
    ]
    for key, value in plan_changes:
        variants.append({**body, key: value})
    verdicts = [(raw.is_valid(v), simplified.is_valid(v)) for v in variants]
    assert all(a == b for a, b in verdicts), verdicts
    assert verdicts[0] == (True, True) and (False, False) in verdicts


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("wave", "1"),
        ("decision", "maybe"),
        ("fingerprint", None),
        ("risks", [{"code": "c"}]),
        ("unexpected", 1),
        ("from_plan", {"publisher": "p"}),
        ("change", {"actions_added": [1]}),
        ("as_read", {"provisioning_state": "Succeeded"}),
    ],
)
def test_items_breaking_the_schema_are_refused_even_when_resealed(
    plan_path: Path, key: str, value: Any
) -> None:
    from orchestrator.planning.planfile import _digest_of

    body = json.loads(plan_path.read_text())
    body["items"][0][key] = value
    body["digest"] = _digest_of(body)  # a forger recomputing the digest still fails the schema
    plan_path.write_text(json.dumps(body))
    with pytest.raises(PlanFileError, match=r"does not match the plan schema at items/0"):
        read_plan(plan_path)


def test_the_fast_digest_check_never_decides_against_the_definition() -> None:
    """orjson checks the digest first; where its bytes differ from the canonical form's (floats: 1e-5
    against 1e-05), the canonical form decides, so a sealed body is never refused for it."""
    from orchestrator.planning.planfile import _digest_matches, _digest_of

    for body in ({"x": 1e-05, "name": "ü\u2028"}, {"big": 2**70}, {"a": [1, 2.5, None, True]}):
        assert _digest_matches(body, _digest_of(body))
        assert not _digest_matches(body, "sha256:" + "0" * 64)
        assert not _digest_matches({**body, "extra": 1}, _digest_of(body))


def test_a_valid_plan_is_accepted_without_a_jsonschema_pass(plan_path: Path, plan: Plan) -> None:
    """A valid plan is accepted by the strict model alone (no jsonschema pass): the same plan back."""
    from unittest import mock

    from orchestrator.planning import planfile

    with mock.patch.object(planfile, "_schema_problem", side_effect=AssertionError("jsonschema ran")):
        assert read_plan(plan_path) == plan
