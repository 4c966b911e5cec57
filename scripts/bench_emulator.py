"""Throughput of the emulator on simple GETs, throttling off.

The emulator runs in a subprocess (so it does not share a GIL with the client); concurrent aiohttp
clients hammer one route for a fixed time: GET application by id (default), or the first page of the
application or deny-assignment listing of each subscription (`--route apps|deny`; with a large
`--generate` fleet this shows a page's cost does not grow with the fleet). Prints requests/s, p50/p99
latency, the emulator's peak RSS and CPU, and requests per emulator CPU-second. A figure, not a test.

    .venv/bin/python scripts/bench_emulator.py [--seconds 10] [--concurrency 32] [--clients 2]
        [--route app|apps|deny] [--generate tenants=2,subscriptions=2,apps=10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import ssl
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.emulator.testing import EmulatorHandle, run_emulator

API = "api-version=2023-12-01-preview"
AUTHZ = "api-version=2022-04-01"
ROUTES = {
    "app": "GET application by id",
    "apps": "GET applications by subscription (first page)",
    "deny": "GET deny assignments by subscription (first page)",
}


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _token(emu: EmulatorHandle, route: str) -> tuple[str, list[str]]:
    from azure.identity.aio import ClientSecretCredential

    fleet = emu.fleet()
    tenant = fleet["tenants"][0]
    async with ClientSecretCredential(
        tenant["id"], tenant["client_id"], emu.secret_for(tenant["id"]),
        authority=emu.url, disable_instance_discovery=True, connection_verify=str(emu.ca_bundle),
    ) as cred:  # fmt: skip
        token = (await cred.get_token(emu.url + ".default")).token
    subs = tenant["subscriptions"]
    if route == "apps":
        return token, [
            f"{emu.url}subscriptions/{s}/providers/Microsoft.Solutions/applications?{API}" for s in subs
        ]
    if route == "deny":
        return token, [
            f"{emu.url}subscriptions/{s}/providers/Microsoft.Authorization/denyAssignments?{AUTHZ}"
            for s in subs
        ]
    apps = [a["id"] for a in fleet["applications"] if a["id"].split("/")[2] in subs]
    return token, [f"{emu.url}{a.lstrip('/')}?{API}" for a in apps]


def _warm(_index: int) -> None:
    import aiohttp  # noqa: F401


def _client_process(args: tuple[str, str, list[str], float, int]) -> tuple[float, list[float], int]:
    ca, token, urls, seconds, concurrency = args
    return asyncio.run(_bench(ca, token, urls, seconds, concurrency))


async def _bench(
    ca: str, token: str, urls: list[str], seconds: float, concurrency: int
) -> tuple[float, list[float], int]:
    ctx = ssl.create_default_context(cafile=ca)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with session.get(urls[i % len(urls)]) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)
            i += 1

    connector = aiohttp.TCPConnector(ssl=ctx, limit=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        # Warm up connections (TLS handshakes) before the clock starts counting.
        await asyncio.gather(*(session.get(urls[0]) for _ in range(concurrency)))
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(worker(session, n) for n in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client process")
    parser.add_argument(
        "--clients", type=int, default=2, help="client processes (a Python client is CPU-bound)"
    )
    parser.add_argument("--route", choices=sorted(ROUTES), default="app")
    parser.add_argument("--generate", default="tenants=2,subscriptions=2,apps=10", help="emulator fleet")
    args = parser.parse_args()
    with run_emulator(generate=args.generate, subprocess=True, throttle=False) as emu:
        assert emu.pid is not None
        token, urls = asyncio.run(_token(emu, args.route))
        job = (str(emu.ca_bundle), token, urls, args.seconds, args.concurrency)
        with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
            pool.map(_warm, range(args.clients))  # imports done before the clock starts
            cpu0, wall0 = emu.stats()["process_cpu_seconds"], time.perf_counter()
            results = pool.map(_client_process, [job] * args.clients)
            wall = time.perf_counter() - wall0
            cpu = emu.stats()["process_cpu_seconds"] - cpu0
        rps = int(sum(r[0] for r in results))
        latencies = [x for r in results for x in r[1]]
        errors = sum(r[2] for r in results)
        busy = cpu / wall
        rss = _peak_rss_mib(emu.pid)
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{ROUTES[args.route]}, fleet {args.generate}, {args.clients} client processes x "
        f"{args.concurrency} connections, {args.seconds:.0f} s, throttling off"
    )
    print(f"requests/s: {rps}   (target >= 1500 on one core)")
    print(f"latency p50: {q[49] * 1000:.2f} ms   p99: {q[98] * 1000:.2f} ms")
    print(f"errors: {errors}   requests: {len(latencies)}")
    print(f"emulator peak RSS: {rss:.1f} MiB   emulator CPU busy: {busy * 100:.0f}% of one core")
    print(f"requests/s per emulator core-second: {rps / max(busy, 1e-9):.0f}")


if __name__ == "__main__":
    main()
