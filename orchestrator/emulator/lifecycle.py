"""Build a runtime from options, run it until told to stop, save state on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import Any

from orchestrator.emulator import server
from orchestrator.emulator.faults import FaultEngine, load_rules, parse_rules
from orchestrator.emulator.fleet import generate
from orchestrator.emulator.notify import endpoint_secret, set_endpoint
from orchestrator.emulator.runtime import Runtime, Settings
from orchestrator.emulator.state import State
from orchestrator.emulator.writeconfig import write_config, write_notification_secret

DEFAULT_GENERATE = "tenants=3,subscriptions=2,apps=4"


def build_runtime(
    settings: Settings,
    *,
    fleet: Path | None = None,
    generate_spec: str | None = None,
    faults_file: Path | None = None,
    faults: Any = None,
    notify_url: str | None = None,
) -> Runtime:
    """State comes from --state (if the file exists), else --fleet, else the generator."""
    if settings.state_file is not None and settings.state_file.exists():
        state = State.load(settings.state_file)
    elif fleet is not None:
        state = State.load(fleet)
    else:
        state = generate(generate_spec or DEFAULT_GENERATE, settings.seed)
    if notify_url is not None:
        set_endpoint(state, notify_url)
    engine = FaultEngine(settings.seed)
    if faults_file is not None:
        engine.replace(load_rules(faults_file))
    if faults is not None:
        engine.replace(parse_rules(faults))
    return Runtime(settings, state, engine)


def ready_info(rt: Runtime) -> dict[str, str]:
    return {
        "url": rt.base_url,
        "ca_bundle": str(rt.ca_bundle),
        "admin_url": rt.base_url + "_emulator/",
    }


async def serve(
    rt: Runtime,
    host: str,
    port: int,
    *,
    ready_file: Path | None = None,
    config_file: Path | None = None,
    stop: asyncio.Event | None = None,
    on_ready: asyncio.Event | None = None,
    quiet: bool = False,
    announce: bool = False,
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    listening = await server.start(rt, host, port)
    info = ready_info(rt)
    if config_file is not None:
        assert rt.ca_bundle is not None
        info["config"] = str(write_config(rt.state, rt.base_url, rt.ca_bundle, config_file))
        secret = endpoint_secret(rt.state)
        if secret is not None:
            info["notification_secret_file"] = str(write_notification_secret(config_file, secret))
    if not quiet:
        print(f"emulator listening on {rt.base_url}", flush=True)  # noqa: T201
        print(f"CA bundle: {rt.ca_bundle}", flush=True)  # noqa: T201
        if "config" in info:
            print(f"fleet config: {info['config']}", flush=True)  # noqa: T201
    if announce:
        rt.notifier.announce()
    if ready_file is not None:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = ready_file.with_suffix(ready_file.suffix + ".tmp")
        tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
        tmp.replace(ready_file)  # atomic, so a watcher never reads half a line
    if on_ready is not None:
        on_ready.set()
    saver = asyncio.create_task(server.periodic_save(rt))
    try:
        await stop.wait()
    finally:
        saver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saver
        await listening.runner.cleanup()
        server.save_state(rt)
