#!/usr/bin/env python3
"""Benchmark `orchestrator apply` on the emulator against ARM's own bound and two baselines. Not a test.

For each contender a fresh emulator subprocess (same seed, ARM-like token-bucket throttling, time-scaled
operations) serves the same generated fleet, and the same sealed plan (two waves: the canary tenant, then
everyone else) is executed:

- ours:        `orchestrator apply` at its default settings (no concurrency cap unless --concurrency /
               --per-subscription are given), as a subprocess;
- threadpool:  a fair user script: per wave, a ThreadPoolExecutor with one worker per app of the wave;
               each worker GETs the app, PUTs it on the target, waits for the operation (sync SDK, default
               retries and polling) and then reads the MRG's deny assignments back until the system one
               carries the planned exclusions (a few tries); no journal;
- sequential:  the same per-app work one app at a time, timed on a sample of apps and extrapolated
               linearly to the whole plan (said so in its row).

The honest bound is set by ARM and the fleet alone, never by a client's setting. Per wave: the operation's
duration, plus the time the fullest write bucket needs to admit its writes (per subscription and per tenant:
burst 200, refill 10/s time-scaled, as the emulator models ARM; the emulator enforces no per-principal
bucket), and likewise for one read per app before its write (burst 250, refill 25/s), plus the bake time;
waves in sequence. Its terms are printed. With --faults the bound is recomputed for the faults' cost: a wave
in which an app needed k operations (a transient failure, then a new write) costs k operation durations.

Printed per contender, each line with the load average of this shared machine: makespan and its ratio to
the bound, writes/app, operation polls/app (against operation time / Retry-After + 3), other reads/app,
429s, 409s, apps lost (planned, neither on the target nor reported failed) and unverified, peak RSS and
client CPU (per app; both from the contender's own rusage, taken by a small launcher process so that the
benchmark's memory is not counted as the contender's), and the emulator's own CPU for the run. For ours
also: process start + plan load (a separate process that imports the CLI and reads the plan).

    .venv/bin/python scripts/bench_apply.py                 # 2,000 apps
    .venv/bin/python scripts/bench_apply.py --large         # 10,000 apps
    .venv/bin/python scripts/bench_apply.py --faults        # 429s, 5xx, resets, slow requests, failed ops
    .venv/bin/python scripts/bench_apply.py --only ours --concurrency 32 --per-subscription 4

Time scale 0.05: an emulated 300 s update takes 15 s and ARM's 10 s poll hint 0.5 s, so requests per
operation are as many as against Azure (only 20x denser in time, which costs this machine's CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.config import load_config  # noqa: E402
from orchestrator.models import Decision, Plan, PlanItem, PlanOptions, WaveSpec  # noqa: E402

# ARM's token buckets as the emulator models them (orchestrator/emulator/throttle.py): (burst, refill/s),
# per subscription and per tenant alike.
WRITE_BUCKET = (200.0, 10.0)
READ_BUCKET = (250.0, 25.0)
POLL_HINT_SECONDS = 10.0  # the emulator's Retry-After for operation polls, before time scaling

FAULTS: list[dict[str, Any]] = [
    {"kind": "write", "action": "429", "retry_after": 10, "probability": 0.05},
    {"kind": "poll", "action": "503", "probability": 0.02},
    {"kind": "read", "action": "reset", "probability": 0.01},
    {"kind": "write", "action": "reset", "probability": 0.01},
    {"kind": "read", "action": "slow", "delay_ms": 200, "probability": 0.02},
    {"kind": "write", "action": "fail_transient", "probability": 0.02},
]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"[load {one:.1f}/{five:.1f} on {os.cpu_count()} CPUs]"


@dataclass
class Result:
    name: str
    makespan: float
    apps: int
    writes: int
    polls: int
    reads: int
    throttled: int
    conflicting: int
    lost: int
    failed: int
    unverified: int
    peak_rss_mb: float
    cpu_seconds: float
    emulator_cpu: float  # the server's CPU for this contender's run: what this machine spent serving it
    load: str
    note: str = ""
    routes: str = ""


# --- plan ------------------------------------------------------------------------------------------


def make_plan(config_path: Path, definition_id: str, out: Path) -> Plan:
    from orchestrator.arm import AzureGateway
    from orchestrator.inventory import collect_snapshot
    from orchestrator.planning.planfile import seal, write_plan
    from orchestrator.planning.planner import build_plan
    from orchestrator.planning.target import target_from_definition

    config = load_config(config_path)

    async def read() -> Plan:
        async with AzureGateway(config) as gateway:
            snapshot = await collect_snapshot(config, gateway)
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


# --- the honest bound ------------------------------------------------------------------------------


def _drain(count: int, bucket: tuple[float, float], scale: float) -> float:
    """Seconds a full bucket needs to admit `count` calls at its (time-scaled) refill."""
    burst, refill = bucket
    return max(0.0, count - burst) / (refill / scale)


def honest_bound(
    plan: Plan,
    writable: set[str],
    op_seconds: float,
    scale: float,
    bake: float,
    operations: dict[str, int] | None = None,
) -> tuple[float, list[str]]:
    """ARM's bound for the plan (see the module doc) and one line per wave with its terms.

    `operations`: app id (lower) → operations ARM ran for it (with faults); default one each."""
    items = {i.app_id: i for i in plan.items}
    waves = [
        [items[a] for a in w.app_ids if a in writable] for w in sorted(plan.waves, key=lambda w: w.index)
    ]
    waves = [w for w in waves if w]
    total, lines = 0.0, []
    for index, apps in enumerate(waves):
        subs = Counter(i.subscription_id.lower() for i in apps)
        tenants = Counter(i.tenant_id.lower() for i in apps)
        drains = {
            "sub writes": max(_drain(n, WRITE_BUCKET, scale) for n in subs.values()),
            "tenant writes": max(_drain(n, WRITE_BUCKET, scale) for n in tenants.values()),
            "sub reads": max(_drain(n, READ_BUCKET, scale) for n in subs.values()),
            "tenant reads": max(_drain(n, READ_BUCKET, scale) for n in tenants.values()),
        }
        k = max((operations or {}).get(i.app_id.lower(), 1) for i in apps)
        wait = bake if index < len(waves) - 1 else 0.0
        wave_bound = k * op_seconds + max(drains.values()) + wait
        total += wave_bound
        lines.append(
            f"  wave {index}: {len(apps)} apps (max {max(subs.values())}/subscription, "
            f"{max(tenants.values())}/tenant): {k} x operation {op_seconds:.2f}s + bucket drain "
            + ", ".join(f"{name} {v:.2f}s" for name, v in drains.items())
            + f" + bake {wait:.2f}s = {wave_bound:.2f}s"
        )
    return total, lines


# --- contenders ------------------------------------------------------------------------------------


# Spawns the measured process and reports its rusage. Linux counts a process's pre-exec memory in its
# ru_maxrss, and subprocess spawns with vfork: a child started from this process inherits *this*
# process's peak RSS (the fleet, the plan, the emulator's client) as its own. From this small launcher
# it inherits the launcher's few MB instead.
_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"rss_kib": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}, out)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run_measured(argv: list[str], **popen: Any) -> tuple[int, float, float]:
    """Run a child to its end: exit code, its own peak RSS (MiB) and CPU seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-rusage-") as tmp:
        report = Path(tmp) / "rusage.json"
        code = subprocess.call([sys.executable, "-c", _LAUNCHER, str(report), *argv], **popen)
        if not report.exists():  # the launcher itself failed: no figure rather than a zero
            raise SystemExit(f"the measuring launcher failed (exit code {code}) for {argv[:4]}")
        usage = json.loads(report.read_text())
    return code, usage["rss_kib"] / 1024, usage["cpu"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ORCHESTRATOR_"))}


def startup_seconds(plan_path: Path) -> tuple[float, float]:
    """A fresh interpreter importing the CLI and reading (digest-checking) the plan: apply's fixed cost.
    Wall and CPU seconds (the CPU figure does not depend on how busy the shared machine is)."""
    code = (
        "import sys; import orchestrator.cli, orchestrator.executor, orchestrator.arm; "
        "from orchestrator.planning.planfile import read_plan; read_plan(sys.argv[1])"
    )
    start = time.monotonic()
    status, _, cpu = _run_measured([sys.executable, "-c", code, str(plan_path)], cwd=ROOT, env=_clean_env())
    if status != 0:
        raise SystemExit("the start-up probe failed")
    return time.monotonic() - start, cpu


def run_ours(
    cfg: Path, plan_path: Path, journal: Path, args: argparse.Namespace, log: Path
) -> tuple[float, float, float, int]:
    env = _clean_env()
    env["ORCHESTRATOR_TIME_SCALE"] = str(args.time_scale)
    profile = ["-m", "cProfile", "-o", str(log.with_suffix(".prof"))] if args.profile else []
    argv = [sys.executable, *profile, "-m", "orchestrator", "apply", str(plan_path), "-c", str(cfg)]
    argv += ["--journal", str(journal), "--yes", "--failure-tolerance", "100%", "--log-format", "json"]
    if args.concurrency:
        argv += ["--concurrency", str(args.concurrency)]
    if args.per_subscription:
        argv += ["--per-subscription", str(args.per_subscription)]
    if args.bake:
        argv += ["--bake", str(args.bake)]
    with log.open("w") as out:
        start = time.monotonic()
        code, rss, cpu = _run_measured(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        return time.monotonic() - start, rss, cpu, code


def run_baseline(
    kind: str, cfg: Path, plan_path: Path, writable: set[str], limit: int | None, scale: float, out: Path
) -> tuple[float, float]:
    (out.parent / "writable.json").write_text(json.dumps(sorted(writable)))
    argv = [sys.executable, __file__, "--baseline", kind, "--config", str(cfg), "--plan", str(plan_path)]
    argv += ["--out", str(out), "--time-scale", str(scale)]
    if limit:
        argv += ["--limit", str(limit)]
    code, rss, cpu = _run_measured(argv, cwd=ROOT, env=_clean_env())
    if code != 0:
        raise SystemExit(f"baseline {kind} failed with exit code {code}")
    return rss, cpu


def baseline_main(
    kind: str, config_path: Path, plan_path: Path, limit: int | None, scale: float, out: Path
) -> None:
    """The user script: GET, set the definition or plan version, PUT, wait, read the deny assignment back."""
    from azure.identity import ClientSecretCredential
    from azure.mgmt.authorization.v2022_04_01 import AuthorizationManagementClient
    from azure.mgmt.managedapplications import ManagedApplicationsMgmtClient

    from orchestrator.config import ClientSecretCredentialConfig
    from orchestrator.planning.planfile import read_plan

    config = load_config(config_path)
    plan = read_plan(plan_path)
    writable = set(json.loads((out.parent / "writable.json").read_text()))
    items = [i for i in plan.items if i.decision == Decision.UPDATE and i.app_id in writable]
    if limit:
        items = items[:limit]
    credentials: dict[str, Any] = {}
    clients: dict[tuple[str, str], tuple[Any, Any]] = {}
    ca = str(config.cloud.ca_bundle) if config.cloud.ca_bundle else True

    def client(tenant_id: str, sub: str) -> tuple[Any, Any]:
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
            common: dict[str, Any] = {
                "base_url": config.cloud.arm,
                "credential_scopes": [config.cloud.scope],
                "connection_verify": ca,
            }
            clients[key] = (
                ManagedApplicationsMgmtClient(
                    credentials[tenant_id.lower()], sub, api_version="2023-12-01-preview", **common
                ),
                AuthorizationManagementClient(credentials[tenant_id.lower()], sub, **common),
            )
        return clients[key]

    def verified(authz: Any, mrg: str, item: PlanItem) -> bool:
        want = {a.lower() for a in item.expected_not_actions}
        rg = mrg.rstrip("/").split("/")[-1]
        for attempt in range(5):
            for da in authz.deny_assignments.list_for_resource_group(rg, filter="atScope()"):
                have = {a.lower() for perm in da.permissions or [] for a in perm.not_actions or []}
                if da.is_system_protected and have == want:
                    return True
            time.sleep(2 * scale * (attempt + 1))  # converges shortly after the operation
        return False

    def upgrade(item: PlanItem) -> str:
        parts = item.app_id.split("/")
        rg, name = parts[4], parts[-1]
        try:
            apps, authz = client(item.tenant_id, item.subscription_id)
            app = apps.applications.get(rg, name)
            if item.to_definition_id:
                app.properties.application_definition_id = item.to_definition_id
            else:
                assert item.to_plan is not None
                app.plan.version = item.to_plan.version
            apps.applications.begin_create_or_update(rg, name, app).result()
            return "ok" if verified(authz, app.properties.managed_resource_group_id, item) else "unverified"
        except Exception as exc:
            return f"failed: {type(exc).__name__}: {str(exc)[:80]}"

    # Every client is built up front, as a script would before its loop (tokens are fetched lazily).
    for item in items:
        client(item.tenant_id, item.subscription_id)
    waves: dict[int, list[PlanItem]] = defaultdict(list)
    for item in items:
        waves[item.wave or 0].append(item)
    outcomes: dict[str, str] = {}
    start = time.monotonic()
    for index in sorted(waves):
        wave = waves[index]
        if kind == "sequential":
            outcomes.update((i.app_id, upgrade(i)) for i in wave)
        else:
            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                outcomes.update(zip([i.app_id for i in wave], pool.map(upgrade, wave), strict=True))
    elapsed = time.monotonic() - start
    out.write_text(json.dumps({"elapsed": elapsed, "outcomes": outcomes}))


# --- measuring -------------------------------------------------------------------------------------


def on_target(handle: Any, plan: Plan) -> dict[str, bool]:
    """App id → whether the emulator has it on the plan's target."""
    apps = {a["id"].lower(): a for a in handle.state()["applications"]}
    out: dict[str, bool] = {}
    for item in plan.items:
        if item.decision != Decision.UPDATE:
            continue
        app = apps[item.app_id.lower()]
        if item.to_definition_id:
            have = app["properties"].get("applicationDefinitionId", "").lower()
            out[item.app_id] = have == item.to_definition_id.lower()
        else:
            out[item.app_id] = (app.get("plan") or {}).get("version") == (
                item.to_plan.version if item.to_plan else None
            )
    return out


def counts(stats: dict[str, Any]) -> tuple[int, int, int, int]:
    """Writes, operation polls, other reads, 429s so far."""
    totals: Counter[str] = Counter()
    for key, n in stats["requests"].items():
        totals[key.split(" ")[0]] += n
    return totals["write"], totals["poll"], totals["read"] + totals["list"], int(stats["throttled_429"])


def operations_per_app(stats: dict[str, Any]) -> dict[str, int]:
    """App id (lower) → operations ARM started for it (accepted writes, conflicts excluded)."""
    out: dict[str, int] = {}
    for key, records in stats.get("writes", {}).items():
        n = sum(1 for w in records if w.get("operation_id") and not w.get("conflict"))
        out[key.lower()] = n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large", action="store_true", help="10,000 apps instead of 2,000")
    parser.add_argument(
        "--generate", help="another fleet, e.g. tenants=3,subscriptions=2,apps=10 (quick checks)"
    )
    parser.add_argument("--time-scale", type=float, default=0.05, help="emulated seconds → real seconds")
    parser.add_argument(
        "--operation-seconds", type=float, default=300.0, help="unscaled duration of an update"
    )
    parser.add_argument("--concurrency", type=int, help="a cap for ours (default: none, like apply's)")
    parser.add_argument(
        "--per-subscription", type=int, help="a per-subscription cap for ours (default: none)"
    )
    parser.add_argument("--bake", type=float, default=0.0, help="real seconds between waves (ours only)")
    parser.add_argument(
        "--faults", action="store_true", help="inject 429s, 5xx, resets, slow calls, failed ops"
    )
    parser.add_argument("--sequential-sample", type=int, default=10)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--only", choices=["ours", "threadpool", "sequential"], action="append")
    parser.add_argument("--keep", type=Path, help="keep journals, logs and plans in this folder")
    parser.add_argument("--profile", action="store_true", help="run ours under cProfile (apply.prof; slower)")
    parser.add_argument("--baseline", choices=["sequential", "threadpool"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        baseline_main(args.baseline, args.config, args.plan, args.limit, args.time_scale, args.out)
        return

    from orchestrator.emulator.testing import run_emulator
    from orchestrator.journal import Journal
    from orchestrator.models import AppState

    spec = "tenants=20,subscriptions=25,apps=20" if args.large else "tenants=10,subscriptions=10,apps=20"
    spec = args.generate or spec
    emu: dict[str, Any] = {
        "generate": spec,
        "seed": 7,
        "time_scale": args.time_scale,
        "throttle": True,
        "subprocess": True,
        "operation_seconds": args.operation_seconds,
        "page_size": 100,
    }
    if args.faults:
        emu["faults"] = FAULTS
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-apply-"))
    op = args.operation_seconds * args.time_scale
    poll = POLL_HINT_SECONDS * args.time_scale
    caps = (
        f"{args.concurrency or 'no'} global, {args.per_subscription or 'no'} per subscription"
        if args.concurrency or args.per_subscription
        else "none (apply's defaults)"
    )
    print(
        f"fleet {spec}; operation {args.operation_seconds:g}s x time scale {args.time_scale:g} = {op:.2f}s, "
        f"poll hint {poll:.2f}s; caps for ours: {caps}; faults: {'on' if args.faults else 'off'} {load()}",
        flush=True,
    )
    results: list[Result] = []
    bounds: list[tuple[str, float, list[str]]] = []
    try:
        contenders = args.only or ["ours"] + ([] if args.skip_baselines else ["threadpool", "sequential"])
        for name in contenders:
            (work / name).mkdir(parents=True, exist_ok=True)
            with run_emulator(**emu) as handle:
                cfg = handle.write_config(work / name / "fleet.toml")
                definition = handle.fleet()["publisher"]["definitions"]["app-v2"]
                t0 = time.monotonic()
                plan_path = work / name / "plan.json"
                plan = make_plan(cfg, definition, plan_path)
                updates = [i for i in plan.items if i.decision == Decision.UPDATE]
                read_only = {
                    t["id"].lower() for t in handle.fleet()["tenants"] if t["publisher_access"] == "read-only"
                }
                writable = {i.app_id for i in updates if i.tenant_id.lower() not in read_only}
                if not bounds:
                    print(
                        f"plan: {len(plan.items)} apps, {len(updates)} to update ({len(writable)} writable; "
                        f"the rest in a read-only tenant), {len(plan.waves)} waves; inventory + plan took "
                        f"{time.monotonic() - t0:.1f}s {load()}",
                        flush=True,
                    )
                    bound, lines = honest_bound(plan, writable, op, args.time_scale, args.bake)
                    bounds.append(("without faults", bound, lines))
                    if name == "ours":
                        wall, cpu = min(startup_seconds(plan_path) for _ in range(2))
                        print(
                            f"ours: process start + plan load {wall:.2f}s wall, {cpu:.2f}s CPU (best of 2) "
                            f"{load()}",
                            flush=True,
                        )
                # The fault rules' counters restart with each emulator; the same seed draws the same faults.
                first = handle.stats()
                before, routes_before = counts(first), first.get("routes", {})
                if name == "ours":
                    journal = work / name / "journal.db"
                    elapsed, rss, cpu, code = run_ours(
                        cfg, plan_path, journal, args, work / name / "apply.log"
                    )
                    with Journal(journal) as j:
                        rid = j.latest_run()
                        assert rid is not None
                        view = j.run_view(rid)
                    state = {a.app_id: a.state for a in view.apps}
                    truth = on_target(handle, plan)
                    failed = sum(1 for a in updates if state.get(a.app_id) == AppState.FAILED)
                    unverified = sum(1 for a in updates if state.get(a.app_id) == AppState.UNVERIFIED)
                    lost = sum(
                        1
                        for a in updates
                        if state.get(a.app_id)
                        not in (AppState.SUCCEEDED, AppState.FAILED, AppState.UNVERIFIED)
                        or (state.get(a.app_id) == AppState.SUCCEEDED and not truth[a.app_id])
                    )
                    verified = sum(1 for s in state.values() if s == AppState.SUCCEEDED)
                    note = f"exit {code}; {verified} verified; failed = the read-only tenant's apps (403)"
                    sample = len(updates)
                else:
                    limit = args.sequential_sample if name == "sequential" else None
                    out = work / name / "outcomes.json"
                    rss, cpu = run_baseline(name, cfg, plan_path, writable, limit, args.time_scale, out)
                    report = json.loads(out.read_text())
                    elapsed, outcomes = report["elapsed"], report["outcomes"]
                    truth = on_target(handle, plan)
                    failed = sum(1 for v in outcomes.values() if v.startswith("failed"))
                    unverified = sum(1 for v in outcomes.values() if v == "unverified")
                    lost = sum(1 for a, v in outcomes.items() if v == "ok" and not truth[a])
                    sample = len(outcomes)
                    ok = sum(1 for v in outcomes.values() if v == "ok")
                    note = f"{len(writable)} writable apps only; verified {ok}"
                    if name == "sequential":
                        elapsed = elapsed * len(writable) / max(sample, 1)
                        note = f"EXTRAPOLATED from a sample of {sample} apps to {len(writable)}"
                stats = handle.stats()
                routes = Counter(stats.get("routes", {})) - Counter(routes_before)
                after = counts(stats)
                writes, polls, reads, throttled = (a - b for a, b in zip(after, before, strict=True))
                if name == "ours" and args.faults:
                    fb, flines = honest_bound(
                        plan, writable, op, args.time_scale, args.bake, operations_per_app(stats)
                    )
                    bounds.append(("ours, with the faults' cost", fb, flines))
                    note += f"; faults injected {stats.get('faults_injected')}"
                answered = Counter(stats["requests"]) - Counter(first["requests"])
                refused = {k.split()[0]: v for k, v in sorted(answered.items()) if k.endswith(" 429")}
                if refused:
                    note += "; 429s by call: " + ", ".join(f"{k} {v}" for k, v in refused.items())
                served = float(stats["process_cpu_seconds"]) - float(first["process_cpu_seconds"])
                print(f"{name}: done in {elapsed:.1f}s {load()}", flush=True)
                results.append(
                    Result(
                        name,
                        elapsed,
                        sample,
                        writes,
                        polls,
                        reads,
                        throttled,
                        int(stats["conflicting_writes"]),
                        lost,
                        failed,
                        unverified,
                        rss,
                        cpu,
                        served,
                        load(),
                        note,
                        ", ".join(f"{k} {v / max(sample, 1):.2f}" for k, v in sorted(routes.items())),
                    )
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    for label, value, lines in bounds:
        print(f"honest bound ({label}): {value:.2f}s = sum over waves of:")
        for line in lines:
            print(line)
    bound = bounds[-1][1] if bounds else float("nan")
    print(
        f"poll budget: operation {op:.2f}s / Retry-After {poll:.2f}s + 3 = {op / poll + 3:.1f} reads per app"
    )
    print(
        f"{'contender':<11} {'makespan':>9} {'xbound':>7} {'apps':>5} {'writes/app':>10} {'polls/app':>9} "
        f"{'reads/app':>9} {'429s':>5} {'409s':>5} {'lost':>5} {'failed':>6} {'unverif':>7} {'peak RSS':>9} "
        f"{'CPU':>7} {'CPU/app':>8} {'emu CPU':>8}  load; note"
    )
    for r in results:
        ratio = r.makespan / bound if bound else float("nan")
        n = max(r.apps, 1)
        print(
            f"{r.name:<11} {r.makespan:>8.1f}s {ratio:>7.2f} {r.apps:>5} {r.writes / n:>10.2f} "
            f"{r.polls / n:>9.1f} {r.reads / n:>9.1f} {r.throttled:>5} {r.conflicting:>5} {r.lost:>5} "
            f"{r.failed:>6} {r.unverified:>7} {r.peak_rss_mb:>7.0f}MB {r.cpu_seconds:>6.1f}s "
            f"{1000 * r.cpu_seconds / n:>6.1f}ms {r.emulator_cpu:>7.1f}s  {r.load}; {r.note}"
        )
    print(
        "emu CPU: the emulator's own CPU for the contender's run (one process, on the same "
        f"{os.cpu_count()} CPUs as the client): ARM serves in parallel; here the two share the cores"
    )
    for r in results:
        print(f"{r.name}: calls per app by route: {r.routes}")
    print(
        f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}MB) {load()}"
    )


if __name__ == "__main__":
    main()
