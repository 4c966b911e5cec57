#!/usr/bin/env python3
"""Time the pure planning path on a large fleet: build, seal, write, read (validate + verify), render.

    .venv/bin/python scripts/bench_planner.py [--apps 10000]

The fleet repeats the example snapshot's apps (scripts/gen_example_plan.py) with distinct ids, so every
decision and risk kind is present in the same proportions as in plans/examples/example-plan.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# A sibling script: its directory is on sys.path when this one runs.
import gen_example_plan as example  # noqa: E402

from orchestrator.models import PlanOptions  # noqa: E402
from orchestrator.planning.planfile import read_plan, seal, write_plan  # noqa: E402
from orchestrator.planning.planner import build_plan  # noqa: E402
from orchestrator.planning.target import load_target  # noqa: E402
from orchestrator.render.plan_review import render_markdown  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    args = parser.parse_args()

    target = load_target(example.TARGET_FILE)
    assert target.definition_id is not None  # the example target is a service-catalog release
    base = example.snapshot(target.definition_id, target.definition.allowed_actions)
    apps = tuple(
        a.model_copy(update={"id": f"{a.id}-{i}", "name": f"{a.name}-{i}"})
        for i in range(args.apps)
        for a in (base.apps[i % len(base.apps)],)
    )
    snapshot = base.model_copy(update={"apps": apps})

    timings: dict[str, float] = {}
    start = time.perf_counter()
    plan = build_plan(snapshot, target, PlanOptions(), tool_version="bench", now=example.NOW, rings={})
    timings["build_plan"] = time.perf_counter() - start
    start = time.perf_counter()
    plan = seal(plan)
    timings["seal"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        start = time.perf_counter()
        write_plan(plan, path)
        timings["write_plan"] = time.perf_counter() - start
        size = path.stat().st_size
        start = time.perf_counter()
        read_plan(path)
        timings["read_plan"] = time.perf_counter() - start
    start = time.perf_counter()
    render_markdown(plan)
    timings["render_markdown"] = time.perf_counter() - start

    print(f"apps: {args.apps}  plan file: {size / 1e6:.1f} MB ({size / args.apps:.0f} bytes/app)")
    for name, seconds in timings.items():
        print(f"{name:>16}: {seconds:6.2f} s  ({seconds / args.apps * 1e6:6.0f} µs/app)")


if __name__ == "__main__":
    main()
