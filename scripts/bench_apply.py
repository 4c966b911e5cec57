#!/usr/bin/env python3
"""Benchmark `orchestrator apply` on the emulator against two naive baselines. Not a test: prints figures.

For each contender a fresh emulator subprocess (same seed, ARM-like token-bucket throttling, time-scaled
operations) serves the same generated fleet, and the same sealed plan is executed:

- ours:        `orchestrator apply` (async, capped, paced, journaled, verified), run as a subprocess;
- sequential:  one app at a time, GET + PUT + poll with the sync SDK (what a loop of `az resource
               update` does); timed on a sample of apps and extrapolated linearly (said so);
- threadpool:  a plain ThreadPoolExecutor, same worker count as our global cap, sync SDK clients with
               their default retries; no pacing, no journal, no verification.

Reported: makespan and its ratio to the lower bound (waves run one after another; within a wave the
operation duration times the number of rounds the global and per-subscription caps force, or the
write-bucket refill, whichever is longer), writes and reads per app, 429s, apps lost (an app planned for
update that neither ended on the target nor was reported failed), and peak RSS of the contender process.

    .venv/bin/python scripts/bench_apply.py            # 2,000 apps (about 7 minutes with the baselines)
    .venv/bin/python scripts/bench_apply.py --large    # 10,000 apps
    .venv/bin/python scripts/bench_apply.py --large --only ours

Time scale 0.05 (an emulated 300 s update takes 15 s, ARM's 10 s poll hint 0.5 s) keeps the request
rate realistic relative to the operations; at 0.01 the fixed costs (process start, plan load, request
latency on a small shared machine) weigh against a 21 s bound and the ratio is worse.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.config import load_config  # noqa: E402
from orchestrator.models import Decision, Plan, PlanOptions, WaveSpec  # noqa: E402

CPU_SECONDS: dict[int, float] = {}
WRITE_BUCKET, WRITE_REFILL = 200.0, 10.0  # ARM's per-subscription write bucket (the emulator's too)


@dataclass
class Result:
    name: str
    makespan: float
    apps: int
    writes: int
    reads: int
    throttled: int
    conflicting: int
    lost: int
    failed: int
    peak_rss_mb: float
    note: str = ""


# --- plan ------------------------------------------------------------------------------------------


def make_plan(config_path: Path, definition_id: str, out: Path) -> Plan:
    from orchestrator.arm import AzureGateway
    from orchestrator.inventory import collect_snapshot
    from orchestrator.planfile import seal, write_plan
    from orchestrator.planner import build_plan
    from orchestrator.target import target_from_definition

    config = load_config(config_path)

    async def read() -> Plan:
        async with AzureGateway(config) as gateway:
            snapshot = await collect_snapshot(config, gateway, concurrency=64)
            owner = next(
                t.tenant_id
                for t in snapshot.tenants
                for s in t.subscriptions
                if definition_id.lower().startswith(f"/subscriptions/{s.id}/".lower())
            )
            definition = await gateway.get_definition(owner, definition_id)
        plan = build_plan(
            snapshot,
            target_from_definition(definition),
            PlanOptions(waves=WaveSpec(steps=("100%",))),
            tool_version="bench",
            now=datetime.now(UTC),
            rings={t.id: t.ring for t in config.tenants},
        )
        return seal(plan)

    plan = asyncio.run(read())
    write_plan(plan, out)
    return plan


def lower_bound(
    plan: Plan, writable: set[str], op_seconds: float, cap: int, per_sub: int, scale: float
) -> float:
    """Waves in sequence; per wave: rounds forced by the caps × operation time, or write-bucket refill."""
    total = 0.0
    items = {i.app_id: i for i in plan.items}
    for wave in plan.waves:
        apps = [items[a] for a in wave.app_ids if a in writable]
        if not apps:
            continue
        per_subscription = Counter(i.subscription_id for i in apps)
        rounds = max(
            math.ceil(len(apps) / cap), max(math.ceil(n / per_sub) for n in per_subscription.values())
        )
        refill = WRITE_REFILL / scale
        bucket = max(max(0.0, (n - WRITE_BUCKET) / refill) for n in per_subscription.values())
        total += max(rounds * op_seconds, bucket + op_seconds)
    return total


# --- contenders ------------------------------------------------------------------------------------


def _wait_child(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    CPU_SECONDS[proc.pid] = usage.ru_utime + usage.ru_stime
    return proc.returncode, usage.ru_maxrss / 1024  # kB → MB on Linux


def run_ours(
    cfg: Path, plan_path: Path, journal: Path, concurrency: int, per_sub: int, scale: float, log: Path
) -> tuple[float, float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ORCHESTRATOR_"))}
    env["ORCHESTRATOR_TIME_SCALE"] = str(scale)
    argv = [
        sys.executable,
        "-m",
        "orchestrator",
        "apply",
        str(plan_path),
        "-c",
        str(cfg),
        "--journal",
        str(journal),
        "--yes",
        "--concurrency",
        str(concurrency),
        "--per-subscription",
        str(per_sub),
        "--failure-tolerance",
        "100%",
        "--log-format",
        "json",
    ]
    with log.open("w") as out:
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        code, rss = _wait_child(proc)
        print(f"ours: {time.monotonic() - start:.1f}s wall, {CPU_SECONDS[proc.pid]:.1f}s CPU")
        return time.monotonic() - start, rss, code


def run_baseline(
    kind: str, cfg: Path, plan_path: Path, workers: int, limit: int | None, out: Path
) -> tuple[float, float]:
    argv = [
        sys.executable,
        __file__,
        "--baseline",
        kind,
        "--config",
        str(cfg),
        "--plan",
        str(plan_path),
        "--workers",
        str(workers),
        "--out",
        str(out),
    ]
    if limit:
        argv += ["--limit", str(limit)]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT)
    code, rss = _wait_child(proc)
    if code != 0:
        raise SystemExit(f"baseline {kind} failed with exit code {code}")
    return time.monotonic() - start, rss


def baseline_main(
    kind: str, config_path: Path, plan_path: Path, workers: int, limit: int | None, out: Path
) -> None:
    """The naive loop: GET, change the definition or plan version, PUT, wait (sync SDK, default retries)."""
    from azure.identity import ClientSecretCredential
    from azure.mgmt.managedapplications import ManagedApplicationsMgmtClient

    from orchestrator.config import ClientSecretCredentialConfig
    from orchestrator.planfile import read_plan

    config = load_config(config_path)
    plan = read_plan(plan_path)
    items = [i for i in plan.items if i.decision == Decision.UPDATE]
    if limit:
        items = items[:limit]
    credentials: dict[str, Any] = {}
    clients: dict[tuple[str, str], Any] = {}
    ca = str(config.cloud.ca_bundle) if config.cloud.ca_bundle else True

    def client(tenant_id: str, sub: str) -> Any:
        key = (tenant_id.lower(), sub.lower())
        if key not in clients:
            if tenant_id.lower() not in credentials:
                tenant = config.tenant(tenant_id)
                cred = tenant.credential
                if not isinstance(cred, ClientSecretCredentialConfig):
                    raise SystemExit(f"baseline: tenant {tenant.id} needs a client_secret credential")
                if cred.secret_file is not None:
                    secret = cred.secret_file.read_text().strip()
                elif cred.secret_env is not None:
                    secret = os.environ[cred.secret_env]
                else:
                    assert cred.secret is not None  # the config allows exactly one of the three
                    secret = cred.secret.get_secret_value()
                credentials[tenant_id.lower()] = ClientSecretCredential(
                    tenant.id,
                    cred.client_id,
                    secret,
                    authority=config.cloud.authority,
                    disable_instance_discovery=True,
                    connection_verify=ca,
                )
            clients[key] = ManagedApplicationsMgmtClient(
                credentials[tenant_id.lower()],
                sub,
                base_url=config.cloud.arm,
                credential_scopes=[config.cloud.scope],
                connection_verify=ca,
                api_version="2023-12-01-preview",
            )
        return clients[key]

    def upgrade(item: Any) -> str:
        parts = item.app_id.split("/")
        rg, name = parts[4], parts[-1]
        try:
            c = client(item.tenant_id, item.subscription_id)
            app = c.applications.get(rg, name)
            if item.to_definition_id:
                app.properties.application_definition_id = item.to_definition_id
            else:
                app.plan.version = item.to_plan.version
            c.applications.begin_create_or_update(rg, name, app, polling_interval=1).result()
            return "ok"
        except Exception as exc:
            return f"failed: {type(exc).__name__}"

    # Every client is built up front, as a script would before its loop (tokens are fetched lazily).
    for item in items:
        client(item.tenant_id, item.subscription_id)
    start = time.monotonic()
    if kind == "sequential":
        outcomes = [upgrade(i) for i in items]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(upgrade, items))
    elapsed = time.monotonic() - start
    out.write_text(
        json.dumps(
            {"elapsed": elapsed, "outcomes": dict(zip([i.app_id for i in items], outcomes, strict=True))}
        )
    )


# --- measuring -------------------------------------------------------------------------------------


def emulator_truth(handle: Any, plan: Plan) -> dict[str, bool]:
    """App id → whether the emulator has it on the plan's target."""
    state = handle.state()
    apps = {a["id"].lower(): a for a in state["applications"]}
    target_def = (plan.target.definition_id or "").lower()
    target_version = plan.target.plan.version if plan.target.plan else None
    out: dict[str, bool] = {}
    for item in plan.items:
        if item.decision != Decision.UPDATE:
            continue
        app = apps[item.app_id.lower()]
        if item.to_definition_id:
            out[item.app_id] = app["properties"].get("applicationDefinitionId", "").lower() == (
                item.to_definition_id.lower() or target_def
            )
        else:
            out[item.app_id] = (app.get("plan") or {}).get("version") == (
                item.to_plan.version if item.to_plan else target_version
            )
    return out


def counts(stats: dict[str, Any]) -> tuple[int, int, int]:
    writes = reads = 0
    for key, n in stats["requests"].items():
        kind = key.split(" ")[0]
        if kind == "write":
            writes += n
        elif kind in ("read", "list", "poll"):
            reads += n
    return writes, reads, int(stats["throttled_429"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large", action="store_true", help="10,000 apps instead of 2,000")
    parser.add_argument("--time-scale", type=float, default=0.05, help="emulated seconds → real seconds")
    parser.add_argument(
        "--operation-seconds", type=float, default=300.0, help="unscaled duration of an update"
    )
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--per-subscription", type=int, default=8)
    parser.add_argument("--sequential-sample", type=int, default=10)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument(
        "--only",
        choices=["ours", "threadpool", "sequential"],
        action="append",
        help="run only these contenders",
    )
    parser.add_argument("--keep", type=Path, help="keep journals, logs and plans in this folder")
    parser.add_argument("--baseline", choices=["sequential", "threadpool"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        baseline_main(args.baseline, args.config, args.plan, args.workers, args.limit, args.out)
        return

    from orchestrator.emulator.testing import run_emulator
    from orchestrator.journal import Journal
    from orchestrator.models import AppState

    spec = "tenants=20,subscriptions=25,apps=20" if args.large else "tenants=10,subscriptions=10,apps=20"
    emu = {
        "generate": spec,
        "seed": 7,
        "time_scale": args.time_scale,
        "throttle": True,
        "subprocess": True,
        "operation_seconds": args.operation_seconds,
        "page_size": 100,
    }
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-apply-"))
    op = args.operation_seconds * args.time_scale
    results: list[Result] = []
    print(
        f"fleet {spec}; operation {args.operation_seconds:g}s × time scale {args.time_scale:g} = {op:.2f}s; "
        f"caps: {args.concurrency} global, {args.per_subscription} per subscription"
    )
    bound = 0.0
    try:
        contenders = args.only or ["ours"] + ([] if args.skip_baselines else ["threadpool", "sequential"])
        for name in contenders:
            with run_emulator(**emu) as handle:
                cfg = handle.write_config(work / name / "fleet.toml")
                definition = handle.fleet()["publisher"]["definitions"]["app-v2"]
                t0 = time.monotonic()
                plan = make_plan(cfg, definition, work / name / "plan.json")
                updates = [i for i in plan.items if i.decision == Decision.UPDATE]
                read_only = {
                    t["id"].lower() for t in handle.fleet()["tenants"] if t["publisher_access"] == "read-only"
                }
                writable = {i.app_id for i in updates if i.tenant_id.lower() not in read_only}
                if not bound:
                    took = time.monotonic() - t0
                    print(
                        f"plan: {len(plan.items)} apps, {len(updates)} to update ({len(writable)} writable; "
                        f"the rest in a read-only tenant), {len(plan.waves)} waves; planned in {took:.1f}s"
                    )
                    bound = lower_bound(
                        plan, writable, op, args.concurrency, args.per_subscription, args.time_scale
                    )
                before = counts(handle.stats())
                if name == "ours":
                    journal = work / name / "journal.db"
                    elapsed, rss, code = run_ours(
                        cfg,
                        work / name / "plan.json",
                        journal,
                        args.concurrency,
                        args.per_subscription,
                        args.time_scale,
                        work / name / "apply.log",
                    )
                    with Journal(journal) as j:
                        rid = j.latest_run()
                        assert rid is not None
                        view = j.run_view(rid)
                    state = {a.app_id: a.state for a in view.apps}
                    truth = emulator_truth(handle, plan)
                    failed = sum(1 for a in updates if state.get(a.app_id) == AppState.FAILED)
                    lost = sum(
                        1
                        for a in updates
                        if state.get(a.app_id) not in (AppState.SUCCEEDED, AppState.FAILED)
                        or (state.get(a.app_id) == AppState.SUCCEEDED and not truth[a.app_id])
                    )
                    note = (
                        f"exit {code}; {sum(1 for s in state.values() if s == AppState.SUCCEEDED)} verified"
                    )
                    sample = len(updates)
                else:
                    limit = args.sequential_sample if name == "sequential" else None
                    out = work / name / "outcomes.json"
                    _, rss = run_baseline(name, cfg, work / name / "plan.json", args.concurrency, limit, out)
                    report = json.loads(out.read_text())
                    elapsed = report["elapsed"]
                    outcomes = report["outcomes"]
                    truth = emulator_truth(handle, plan)
                    failed = sum(1 for v in outcomes.values() if v != "ok")
                    lost = sum(1 for a, v in outcomes.items() if v == "ok" and not truth[a])
                    sample = len(outcomes)
                    note = "no verification, no journal"
                    if name == "sequential":
                        elapsed = elapsed * len(updates) / max(sample, 1)
                        note = f"extrapolated from {sample} apps; " + note
                after = counts(handle.stats())
                writes, reads, throttled = (a - b for a, b in zip(after, before, strict=True))
                stats = handle.stats()
                print(f"{name}: done in {elapsed:.1f}s", flush=True)
                results.append(
                    Result(
                        name,
                        elapsed,
                        sample,
                        writes,
                        reads,
                        throttled,
                        int(stats["conflicting_writes"]),
                        lost,
                        failed,
                        rss,
                        note,
                    )
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"lower bound for our run (waves in sequence, caps, write buckets): {bound:.1f}s")
    print(
        f"{'contender':<11} {'makespan':>9} {'×bound':>7} {'apps':>5} {'writes/app':>10} {'reads/app':>9} "
        f"{'429s':>5} {'409s':>5} {'lost':>5} {'failed':>6} {'peak RSS':>9}  note"
    )
    for r in results:
        ratio = r.makespan / bound if bound else float("nan")
        print(
            f"{r.name:<11} {r.makespan:>8.1f}s {ratio:>7.2f} {r.apps:>5} {r.writes / max(r.apps, 1):>10.2f} "
            f"{r.reads / max(r.apps, 1):>9.1f} {r.throttled:>5} {r.conflicting:>5} {r.lost:>5} {r.failed:>6} "
            f"{r.peak_rss_mb:>7.0f}MB  {r.note}"
        )
    print(f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}MB)")


if __name__ == "__main__":
    main()
