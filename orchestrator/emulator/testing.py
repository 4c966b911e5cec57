"""Run the emulator from tests and scripts: in-process (own loop, daemon thread) or as a subprocess."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess as sp
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.emulator.lifecycle import build_runtime, serve
from orchestrator.emulator.runtime import Settings


class EmulatorHandle:
    """A running emulator: its URL and CA bundle, plus the admin surface as methods."""

    def __init__(self, url: str, ca_bundle: Path, workdir: Path) -> None:
        self.url = url
        self.ca_bundle = ca_bundle
        self.admin_url = url + "_emulator/"
        self._workdir = workdir
        self._ssl = ssl.create_default_context(cafile=str(ca_bundle))
        self.pid: int | None = None  # set in subprocess mode

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.admin_url + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=self._ssl, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def set_faults(self, rules: list[dict[str, Any]] | dict[str, Any]) -> None:
        self._call("POST", "faults", rules)

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def fleet(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "fleet")
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "state")
        return result

    def load_state(self, state: dict[str, Any]) -> None:
        """Replace the whole state (the format of `state()`, with real client secrets)."""
        self._call("POST", "state", state)

    def set_time_scale(self, value: float) -> None:
        self._call("POST", "time-scale", {"time_scale": value})

    def set_notification_endpoint(self, url: str | None, *, announce: bool = False) -> int:
        """Point every definition and offer at a webhook receiver; `announce` sends PUT Succeeded for
        every existing app. Returns how many apps were announced."""
        result = self._call("POST", "notifications", {"url": url, "announce": announce})
        return int(result["announced"])

    def write_config(self, path: Path) -> Path:
        """Write an orchestrator fleet config (and 0600 secret files next to it) for this emulator."""
        return Path(self._call("POST", "write-config", {"path": str(Path(path).resolve())})["path"])

    def customer_credential(self, tenant_id: str) -> dict[str, str]:
        """The tenant's own service principal (tenant_id, client_id, client_secret), to act as it."""
        result: dict[str, str] = self._call("GET", f"tenants/{tenant_id}/credential")
        return result

    def secret_for(self, tenant_id: str) -> str:
        """For tests only: read the tenant's secret from a config written to a private folder."""
        cfg = self._workdir / "handle-config" / "fleet.toml"
        self.write_config(cfg)
        return (cfg.parent / "secrets" / f"{tenant_id}.secret").read_text(encoding="utf-8")


@contextmanager
def run_emulator(
    *,
    generate: str | None = "tenants=3,subscriptions=2,apps=4",
    fleet: Path | None = None,
    seed: int = 1,
    time_scale: float = 0.01,
    throttle: bool = False,
    faults: dict[str, Any] | list[dict[str, Any]] | None = None,
    page_size: int = 5,
    latency_ms: float = 0,
    state_dir: Path | None = None,
    subprocess: bool = False,
    state_file: Path | None = None,
    operation_seconds: float = 120.0,
    token_lifetime: float = 3600.0,
) -> Iterator[EmulatorHandle]:
    """An emulator for a test: in this process (own loop, daemon thread) or, with `subprocess`, as
    `python -m orchestrator.emulator serve` with the same settings as flags."""
    settings = Settings.of(locals())
    workdir = Path(tempfile.mkdtemp(prefix="emulator-"))
    settings.state_dir = state_dir or workdir / "state"
    try:
        if subprocess:
            with _run_subprocess(workdir, settings, generate, fleet, faults) as handle:
                yield handle
        else:
            rt = build_runtime(settings, fleet=fleet, generate_spec=generate, faults=faults)
            with _run_thread(rt, workdir) as handle:
                yield handle
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _run_thread(rt: Any, workdir: Path) -> Iterator[EmulatorHandle]:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    errors: list[BaseException] = []

    async def main() -> None:
        listening = asyncio.Event()
        task = asyncio.create_task(serve(rt, "127.0.0.1", 0, stop=stop, on_ready=listening, quiet=True))
        waiter = asyncio.create_task(listening.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        ready.set()
        await task

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="emulator", daemon=True)
    thread.start()
    ready.wait(30)
    if errors or not rt.base_url:
        raise RuntimeError(f"emulator did not start: {errors[0] if errors else 'timeout'}")
    try:
        yield EmulatorHandle(rt.base_url, Path(rt.ca_bundle), workdir)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


@contextmanager
def _run_subprocess(
    workdir: Path, settings: Settings, generate: str | None, fleet: Path | None, faults: Any
) -> Iterator[EmulatorHandle]:
    ready = workdir / "ready.json"
    argv = [
        sys.executable,
        "-m",
        "orchestrator.emulator",
        "serve",
        *settings.argv(),
        "--ready-file",
        str(ready),
    ]
    if fleet is not None:
        argv += ["--fleet", str(fleet)]
    elif generate is not None:
        argv += ["--generate", generate]
    if faults is not None:
        faults_file = workdir / "faults.json"
        faults_file.write_text(json.dumps(faults), encoding="utf-8")
        argv += ["--faults", str(faults_file)]
    log = (workdir / "emulator.log").open("w")
    proc = sp.Popen(argv, stdout=log, stderr=sp.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    "emulator subprocess did not start:\n" + (workdir / "emulator.log").read_text()
                )
            time.sleep(0.05)
        info = json.loads(ready.read_text(encoding="utf-8"))
        handle = EmulatorHandle(info["url"], Path(info["ca_bundle"]), workdir)
        handle.pid = proc.pid
        yield handle
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except sp.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
