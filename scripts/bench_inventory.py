#!/usr/bin/env python3
"""Benchmark: inventory a large fleet on the emulator, with per-request latency and ARM throttling on.

    .venv/bin/python scripts/bench_inventory.py            # 100 tenants × 10 subscriptions × 10 apps
    .venv/bin/python scripts/bench_inventory.py --small    # 10 × 5 × 10, a quick run

The emulator runs as a subprocess (its CPU is not ours); the inventory runs here through the real SDK,
credentials and HTTPS, exactly as `orchestrator inventory` does. Printed figures, all from this run:

- requests per app: every ARM request the emulator counted, and those beyond the application listing
  itself (subscription listings, deny-assignment listings, definition reads), divided by the app count;
- wall time against ARM's bound, which no client setting enters: the longest chain of requests that must
  follow one another, each costing the injected latency L (token → subscription pages → the longest
  run of application or deny-assignment pages in one subscription → a definition read), and the time
  ARM's read buckets need to admit the reads (per subscription and per tenant: burst 250, refill 25/s);
  whichever is larger. The inventory runs at its default (no concurrency limit of its own unless
  --concurrency is given); the connection pool's size is printed, since HTTP/1.1 runs one request per
  connection at a time;
- client CPU time, in total and per 1,000 apps; the load average of this shared machine with each figure;
- the emulator's CPU time: one process serves every request, so the inventory cannot take less wall
  time than that either; the ratio against the larger of the two bounds is printed too;
- peak memory: the process's peak RSS growth (resource.getrusage) during the inventory.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.arm import AzureGateway
from orchestrator.cli.options import run_async
from orchestrator.config import load_config
from orchestrator.emulator.testing import run_emulator
from orchestrator.inventory import collect_snapshot
from orchestrator.models import Snapshot


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of another process (Linux /proc), or None where unavailable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"[load {one:.1f}/{five:.1f} on {os.cpu_count()} CPUs]"


async def _inventory(
    config_path: Path, concurrency: int | None, per_tenant: int | None
) -> tuple[Snapshot, float, float, int]:
    config = load_config(config_path)
    start, cpu = time.perf_counter(), time.process_time()
    async with AzureGateway(config) as gateway:
        snapshot = await collect_snapshot(config, gateway, concurrency=concurrency, per_tenant=per_tenant)
        pool = gateway.max_connections
    return snapshot, time.perf_counter() - start, time.process_time() - cpu, pool


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="10 tenants × 5 subscriptions × 10 apps")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--subscriptions", type=int, default=10, help="per tenant")
    parser.add_argument("--apps", type=int, default=10, help="per subscription")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="added to every emulator request")
    parser.add_argument("--concurrency", type=int, help="a limit on ARM calls at once (default: none)")
    parser.add_argument(
        "--per-tenant", type=int, help="a limit on ARM calls at once per tenant (default: none)"
    )
    parser.add_argument("--page-size", type=int, default=100, help="items per ARM page")
    args = parser.parse_args()
    if args.small:
        args.tenants, args.subscriptions = 10, 5

    spec = f"tenants={args.tenants},subscriptions={args.subscriptions},apps={args.apps}"
    print(
        f"fleet: {spec} (+ the publisher tenant); latency {args.latency_ms:g} ms per request; "
        f"ARM throttling on; page size {args.page_size}; concurrency limit {args.concurrency or 'none'} "
        f"(per tenant {args.per_tenant or 'none'}) {_load()}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp,
        run_emulator(
            generate=spec,
            subprocess=True,
            throttle=True,
            time_scale=1.0,
            latency_ms=args.latency_ms,
            page_size=args.page_size,
        ) as emulator,
    ):
        config_path = emulator.write_config(Path(tmp) / "fleet.toml")
        pid = getattr(emulator, "pid", None)
        rss_before, emulator_cpu = _rss_mib(), _cpu_seconds(pid)
        snapshot, wall, client_cpu, pool = run_async(
            _inventory(config_path, args.concurrency, args.per_tenant)
        )
        rss_peak = _rss_mib()
        if emulator_cpu is not None:
            after = _cpu_seconds(pid)
            emulator_cpu = None if after is None else after - emulator_cpu
        stats = emulator.stats()
        deny_per_sub: dict[str, int] = {}
        for assignment in emulator.state()["deny_assignments"]:
            sub = str(assignment["id"]).split("/")[2].lower()
            deny_per_sub[sub] = deny_per_sub.get(sub, 0) + 1

    failed = [t for t in snapshot.tenants if t.error]
    apps = len(snapshot.apps)
    subs = [s for t in snapshot.tenants for s in t.subscriptions]
    per_sub: dict[str, int] = {}
    for app in snapshot.apps:
        per_sub[app.subscription_id.lower()] = per_sub.get(app.subscription_id.lower(), 0) + 1
    app_listing = sum(max(1, math.ceil(per_sub.get(s.id.lower(), 0) / args.page_size)) for s in subs)
    by_kind: dict[str, int] = {}
    for key, count in stats["requests"].items():
        kind = key.split()[0]
        by_kind[kind] = by_kind.get(kind, 0) + count
    total = sum(by_kind.values())
    arm = total - by_kind.get("token", 0)
    latency = args.latency_ms / 1000
    # ARM's read buckets (burst 250, refill 25/s; time scale 1): the reads each subscription and each
    # tenant must be served, beyond the burst, at the refill rate.
    reads_by_sub: dict[str, int] = {}
    reads_by_tenant: dict[str, int] = {}
    tenant_of = {s.id.lower(): t.tenant_id.lower() for t in snapshot.tenants for s in t.subscriptions}
    for sub, n in per_sub.items():
        das = deny_per_sub.get(sub, 0)
        reads = max(1, math.ceil(n / args.page_size)) + max(1, math.ceil(das / args.page_size))
        reads_by_sub[sub] = reads
        reads_by_tenant[tenant_of[sub]] = reads_by_tenant.get(tenant_of[sub], 0) + reads
    for tenant in snapshot.tenants:  # its subscription listing
        key = tenant.tenant_id.lower()
        reads_by_tenant[key] = reads_by_tenant.get(key, 0) + 1
    bucket = max(0.0, max(reads_by_tenant.values(), default=0) - 250) / 25
    bucket = max(bucket, max(0.0, max(reads_by_sub.values(), default=0) - 250) / 25)
    # token, subscription listing, then apps and deny listings side by side (pages in sequence), then
    # the definition read: the longest chain of requests that must follow one another.
    pages = max(
        1,
        max((math.ceil(n / args.page_size) for n in per_sub.values()), default=1),
        max((math.ceil(n / args.page_size) for n in deny_per_sub.values()), default=1),
    )
    chain = (1 + 1 + pages + 1) * latency
    bound = max(bucket, chain, 1e-9)

    print(
        f"apps read: {apps} in {len(subs)} subscriptions, {len(snapshot.tenants)} tenants "
        f"({len(failed)} failed); definitions read: {len(snapshot.definitions)}"
    )
    print(
        f"requests: {total} total = {arm} ARM + {by_kind.get('token', 0)} token; by kind: "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()))
    )
    print(
        f"  throttled (429): {stats['throttled_429']}; "
        f"cross-tenant attempts: {stats['cross_tenant_attempts']}"
    )
    print(
        f"requests per app: {arm / apps:.3f} ARM; beyond the app listing ({app_listing} requests): "
        f"{(arm - app_listing) / apps:.3f}  [target <= 0.2]"
    )
    print(
        f"wall time: {wall:.2f} s; ARM's bound {bound:.2f} s = max(dependent chain (1 token + 1 subscription "
        f"page + {pages} pages + 1 definition) x {args.latency_ms:g} ms = {chain:.2f} s, read-bucket drain "
        f"{bucket:.2f} s); ratio {wall / bound:.2f}  [target <= 1.5] {_load()}"
    )
    print(
        f"client CPU: {client_cpu:.2f} s = {1000 * client_cpu / max(apps, 1):.2f} s per 1,000 apps "
        f"({1000 * client_cpu / max(total, 1):.2f} ms per request); connection pool {pool} {_load()}"
    )
    if emulator_cpu is not None:
        # The emulator serves every request from one process: it cannot answer them all in less wall
        # time than the CPU it spent on them. That is the server's bound, not a client setting.
        served = max(bound, emulator_cpu)
        print(
            f"emulator CPU time during the inventory: {emulator_cpu:.2f} s (machine: {os.cpu_count()} CPUs); "
            f"with the server's own service time as a bound too: max({bound:.2f}, {emulator_cpu:.2f}) = "
            f"{served:.2f} s, ratio {wall / served:.2f} {_load()}"
        )
    print(f"peak memory: RSS {rss_peak:.0f} MiB (+{rss_peak - rss_before:.0f} MiB during the inventory)")
    for tenant in failed[:5]:
        print(f"  failed: {tenant.display_name}: {tenant.error}")
    return 0 if not failed else 3


if __name__ == "__main__":
    sys.exit(main())
