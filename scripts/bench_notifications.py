"""A burst of notification events against `orchestrator notifications serve`: all stored, how fast.

The receiver runs as its own process (plain HTTP on loopback, journal on this machine's disk); one
client process POSTs N distinct events over C concurrent connections, as fast as the receiver
answers, then checks that every event is in the registry. Prints events/s, p50/p99 latency, the
receiver's CPU and peak RSS, and the load average. The outside-world bound is the disk: one durable
commit per event could go no faster than one fsync each, so the fsync rate measured on the journal's
disk is printed, and the ratio to it (group commit puts many events in one fsync). A figure, not a test.

    .venv/bin/python scripts/bench_notifications.py [--events 2000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.notifications.registry import Registry  # noqa: E402

SECRET = "bench-secret-0123456789"
SUB = "00000000-0000-0000-0000-00000000b0b0"
DEFINITION = f"/subscriptions/{SUB}/resourceGroups/pub/providers/Microsoft.Solutions/applicationDefinitions/x"


def _event(n: int) -> bytes:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=n)
    return json.dumps(
        {
            "eventType": "PUT",
            "applicationId": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Solutions/"
            f"applications/ma-{n % 500:04d}",
            "eventTime": at.isoformat().replace("+00:00", "Z"),
            "provisioningState": ("Accepted", "Succeeded")[n % 2],
            "applicationDefinitionId": DEFINITION,
        }
    ).encode()


def _fsyncs_per_second(folder: Path, seconds: float = 1.0) -> float:
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.write(fd, b"x" * 512)
            os.fsync(fd)
            count += 1
        return count / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def _proc(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = next(
        int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    return cpu, rss


async def _burst(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    queue = list(reversed(bodies))

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                statuses.append(resp.status)
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    state = REPO / ".state"  # the journal's usual disk (not a tmpfs /tmp)
    state.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-notify-", dir=state) as tmp:
        folder = Path(tmp)
        journal, ready, secret = folder / "journal.db", folder / "ready", folder / "secret"
        secret.write_text(SECRET)
        secret.chmod(0o600)
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "notifications", "serve", "--plain-http",
             "--host", "127.0.0.1", "--port", "0", "--secret-file", str(secret), "--journal", str(journal),
             "--ready-file", str(ready), "--log-level", "warning"],
            cwd=REPO,
        )  # fmt: skip
        try:
            while not ready.exists():
                if proc.poll() is not None:
                    raise SystemExit("receiver did not start")
                time.sleep(0.05)
            url = json.loads(ready.read_text())["url"] + f"/resource?sig={SECRET}"
            load_before = os.getloadavg()
            cpu0, _ = _proc(proc.pid)
            elapsed, latencies, statuses = asyncio.run(
                _burst(url, [_event(n) for n in range(args.events)], args.concurrency)
            )
            cpu1, rss = _proc(proc.pid)
            load_after = os.getloadavg()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        with Registry(journal) as registry:
            stored = registry.count_events()
        fsyncs = _fsyncs_per_second(folder)
    rate = args.events / elapsed
    q = statistics.quantiles(latencies, n=100)
    print(f"events sent            {args.events} over {args.concurrency} connections")
    print(f"answers                {dict(sorted((s, statuses.count(s)) for s in set(statuses)))}")
    print(f"stored in the registry {stored} ({'all' if stored == args.events else 'MISSING SOME'})")
    print(f"wall time              {elapsed:.2f} s")
    print(f"events/s               {rate:.0f}")
    print(f"latency p50 / p99      {q[49] * 1000:.1f} ms / {q[98] * 1000:.1f} ms")
    print(f"receiver CPU           {cpu1 - cpu0:.2f} s ({(cpu1 - cpu0) / args.events * 1e3:.2f} ms/event)")
    print(f"events per CPU-second  {args.events / max(cpu1 - cpu0, 1e-9):.0f} (receiver, not load-bound)")
    print(f"receiver peak RSS      {rss:.0f} MiB")
    print(f"fsyncs/s on this disk  {fsyncs:.0f} (one commit per event could not beat this)")
    print(f"events/s ÷ fsyncs/s    {rate / fsyncs:.1f}")
    print(f"load average           {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)")
    if stored != args.events or set(statuses) != {200}:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
