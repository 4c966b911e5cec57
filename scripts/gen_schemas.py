#!/usr/bin/env python3
"""Regenerate the JSON Schemas from the models: plans/plan.schema.json (also shipped in the package as
orchestrator/schemas/plan.schema.json) and plans/target.schema.json. Run after changing the models:

    .venv/bin/python scripts/gen_schemas.py

tests/unit/test_planfile.py fails when the committed files differ from what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.planning.planfile import plan_schema  # noqa: E402
from orchestrator.planning.target import target_file_schema  # noqa: E402


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    plan = render(plan_schema())
    return {
        ROOT / "plans" / "plan.schema.json": plan,
        ROOT / "orchestrator" / "schemas" / "plan.schema.json": plan,
        ROOT / "plans" / "target.schema.json": render(target_file_schema()),
    }


def main() -> None:
    for path, text in outputs().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
