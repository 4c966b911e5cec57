"""Customer-run kits from a plan: contents, escaping, refusal of unsafe values, checksums."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.handoff import KitError, build_kits, kit_items
from orchestrator.models import Decision, Plan
from orchestrator.planning.planfile import read_plan

ROOT = Path(__file__).resolve().parents[2]
MADE = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def plan() -> Plan:
    """The committed example plan, with one tenant's updates moved to the customer-run path."""
    example = read_plan(ROOT / "plans" / "examples" / "example-plan.json")
    updates = [i for i in example.items if i.decision == Decision.UPDATE]
    tenant = updates[0].tenant_id
    items = tuple(
        i.model_copy(update={"path": "customer-run", "wave": None, "app_name": i.app_name + " <b>|`x`"})
        if i.decision == Decision.UPDATE and i.tenant_id == tenant
        else i
        for i in example.items
    )
    return example.model_copy(update={"items": items})


def test_one_kit_per_customer_with_every_file_and_checksums(plan: Plan, tmp_path: Path) -> None:
    kits = build_kits(plan, made_at=MADE, tool_version="0.1.0")
    assert [k.tenant_id for k in kits] == list({i.tenant_id: 0 for v in kit_items(plan).values() for i in v})
    kit = kits[0]
    names = set(kit.files)
    assert {"README.md", "README.html", "update.sh", "update.ps1", "SHA256SUMS"} <= names
    assert sum(1 for n in names if n.startswith("templates/") and n.endswith(".parameters.json")) == len(
        kit.items
    )
    for line in kit.files["SHA256SUMS"].splitlines():
        digest, path = line.split("  ", 1)
        assert hashlib.sha256(kit.files[path].encode()).hexdigest() == digest
    script = tmp_path / "update.sh"
    script.write_text(kit.files["update.sh"], encoding="utf-8")
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    for item in kit.items:
        assert item.app_id in kit.files["update.sh"] and item.app_id in kit.files["update.ps1"]
        assert (item.to_definition_id or "") in kit.files["update.sh"]
    template = json.loads(
        next(v for k, v in kit.files.items() if k.startswith("templates/") and "parameters" not in k)
    )
    assert template["resources"][0]["type"] == "Microsoft.Solutions/applications"


def test_untrusted_names_are_escaped_in_markdown_and_html(plan: Plan) -> None:
    kit = build_kits(plan, made_at=MADE, tool_version="0.1.0")[0]
    assert "<b>" not in kit.files["README.html"] and "&lt;b&gt;" in kit.files["README.html"]
    # In Markdown: inside a code span fence longer than any backtick run, the pipe escaped for tables.
    assert "`` " in kit.files["README.md"] and "\\|" in kit.files["README.md"]
    assert "<b>" not in kit.files["update.sh"]  # names never go into scripts, only checked ids


def test_an_id_with_shell_metacharacters_is_refused(plan: Plan) -> None:
    bad = tuple(
        i.model_copy(update={"app_id": i.app_id + "';rm -rf ~;'"}) if i.path == "customer-run" else i
        for i in plan.items
    )
    with pytest.raises(KitError, match="characters a kit script will not carry"):
        build_kits(plan.model_copy(update={"items": bad}), made_at=MADE, tool_version="0.1.0")


def test_control_characters_from_outside_never_reach_the_kit_readmes(plan: Plan) -> None:
    items = tuple(
        i.model_copy(update={"app_name": i.app_name + "\x1b[31m\x9b"}) if i.path == "customer-run" else i
        for i in plan.items
    )
    kit = build_kits(plan.model_copy(update={"items": items}), made_at=MADE, tool_version="0.1.0")[0]
    page = kit.files["README.html"]
    assert "\x1b" not in page and "\x9b" not in page and "\\x1b[31m" in page
    readme = kit.files["README.md"]
    assert "\x1b" not in readme and "\x9b" not in readme
