"""The emulator sends the documented events to a running receiver (a real process, killed mid-stream
and restarted); after the fleet is announced and one rollout runs, the registry holds every app with
the version the emulator has, and no event is lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.notifications.registry import Registry
from tests.integration.conftest import REPO, Fleet, make_fleet, run_cli

pytestmark = pytest.mark.integration

SECRET = "webhook-secret-for-tests-42"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """`orchestrator notifications serve` as its own process, on a fixed port so it can come back."""

    def __init__(self, tmp_path: Path, journal: Path) -> None:
        self.port = _free_port()
        self.journal = journal
        self.secret_file = tmp_path / "notify.secret"
        self.secret_file.write_text(SECRET, encoding="utf-8")
        self.secret_file.chmod(0o600)
        self.ready = tmp_path / "receiver.ready"
        self.log = tmp_path / "receiver.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/?sig={SECRET}"

    def start(self) -> None:
        self.ready.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ORCHESTRATOR_"))}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "orchestrator", "notifications", "serve", "--plain-http",
                    "--host", "127.0.0.1", "--port", str(self.port), "--secret-file", str(self.secret_file),
                    "--journal", str(self.journal), "--ready-file", str(self.ready),
                ],
                cwd=REPO, env=env, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path, time_scale=0.01)


def _settled(fleet: Fleet, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats: dict[str, Any] = fleet.emulator.stats()["notifications"]
        if stats["pending"] == 0 and fleet.emulator.stats()["operations_in_flight"] == 0:
            return stats
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)


def _version(app: dict[str, Any]) -> str:
    if app.get("plan"):
        p = app["plan"]
        return f"{p['publisher']}/{p['product']}/{p['name']}@{p['version']}"
    return str(app["properties"]["applicationDefinitionId"])


def test_registry_follows_the_fleet_through_a_rollout_and_a_killed_receiver(
    fleet: Fleet, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.db"
    receiver = Receiver(tmp_path, journal)
    receiver.start()
    announced = fleet.emulator.set_notification_endpoint(receiver.endpoint, announce=True)
    assert announced > 0

    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    plan = tmp_path / "plan.json"
    planned = run_cli("plan", "-c", str(fleet.config_path), "--target-definition", v2, "-o", str(plan))
    assert planned.code == 0, planned.stderr
    apply = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "apply", str(plan), "-c", str(fleet.config_path),
         "--journal", str(journal), "--yes"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    # Kill the receiver while the rollout's events are arriving; bring it back a little later.
    deadline = time.monotonic() + 60
    while fleet.emulator.stats()["notifications"]["delivered"] <= announced:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    receiver.kill()
    while fleet.emulator.stats()["notifications"]["answers"].get("unreachable", 0) < 3:
        assert time.monotonic() < deadline, "no event was sent while the receiver was down"
        time.sleep(0.05)
    receiver.start()
    _, err = apply.communicate(timeout=240)
    assert apply.returncode == 0, err.decode()

    stats = _settled(fleet)
    assert stats["retries"] > 0 and stats["gave_up"] == 0 and stats["rejected"] == 0
    assert stats["delivered"] == stats["events"]
    assert receiver.stop() == 0

    state = fleet.emulator.state()
    with Registry(journal) as registry:
        assert registry.count_events() == stats["events"]  # every event, once
        instances = {i.app_id.lower(): i for i in registry.instances()}
    apps = {a["id"].lower(): a for a in state["applications"]}
    assert set(instances) == set(apps)
    for key, app in apps.items():
        inst = instances[key]
        assert inst.version == _version(app), key
        assert inst.kind.lower() == app["kind"].lower() and not inst.deleted
        assert inst.last_state == app["properties"]["provisioningState"], key
    assert any(i.definition_id == v2 for i in instances.values())

    shown = run_cli("notifications", "show", next(iter(apps.values()))["id"], "--journal", str(journal),
                    "-f", "json")  # fmt: skip
    assert shown.code == 0, shown.stderr
    assert json.loads(shown.stdout)["events"]
    exported = run_cli("notifications", "export", "--journal", str(journal), "-f", "csv")
    assert exported.code == 0 and len(exported.stdout.strip().splitlines()) == len(apps) + 1
    # The secret is in no log line the receiver wrote, and not in the journal's file.
    assert SECRET not in receiver.log.read_text()
    assert SECRET.encode() not in journal.read_bytes()
