"""A webhook receiver (`orchestrator notifications serve`) in its own process, for integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.emulator.testing import EmulatorHandle
from tests.integration.conftest import REPO, Fleet

SECRET = "webhook-secret-for-tests-42"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """`orchestrator notifications serve` as its own process, on a fixed port so it can come back."""

    def __init__(self, tmp_path: Path, journal: Path, *options: str) -> None:
        """`options`: more `serve` options, e.g. `--confirm -c FLEET`."""
        self.port = _free_port()
        self.journal = journal
        self.options = options
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
                    "--journal", str(self.journal), "--ready-file", str(self.ready), *self.options,
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


def settled(emulator: EmulatorHandle, timeout: float = 120) -> dict[str, Any]:
    """The sender's counters once nothing is pending and no operation runs."""
    deadline = time.monotonic() + timeout
    while True:
        stats = emulator.stats()
        if stats["notifications"]["pending"] == 0 and stats["operations_in_flight"] == 0:
            result: dict[str, Any] = stats["notifications"]
            return result
        assert time.monotonic() < deadline, stats["notifications"]
        time.sleep(0.1)


def customer_config(fleet: Fleet, tmp: Path, tenant_id: str, subscriptions: list[str]) -> Path:
    """A [[tenants]] config for one customer with its own credential, naming the given subscriptions
    (maybe not its own): what a customer (or a test acting as one) signs in with."""
    text = fleet.config_path.read_text(encoding="utf-8")
    head = text.split("[[identities]]", 1)[0]
    cred = fleet.emulator.customer_credential(tenant_id)
    secret = tmp / f"customer-{tenant_id[:8]}.secret"
    secret.write_text(cred["client_secret"], encoding="utf-8")
    secret.chmod(0o600)
    listed = ", ".join(f'"{s}"' for s in subscriptions)
    credential = f'kind = "client_secret", client_id = "{cred["client_id"]}", secret_file = "{secret}"'
    path = tmp / f"customer-{tenant_id[:8]}.toml"
    path.write_text(
        f'{head}[[tenants]]\nid = "{tenant_id}"\nsubscriptions = [{listed}]\n'
        f"credential = {{ {credential} }}\n",
        encoding="utf-8",
    )
    return path
