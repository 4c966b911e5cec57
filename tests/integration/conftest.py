"""Fixtures for driving the real SDK (and the CLI) against the HTTPS emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import FleetConfig, load_config
from orchestrator.emulator.testing import EmulatorHandle, run_emulator

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Fleet:
    """A running emulator and a fleet config (with 0600 secret files) pointing at it."""

    emulator: EmulatorHandle
    config_path: Path

    @property
    def config(self) -> FleetConfig:
        return load_config(self.config_path)

    def secrets(self) -> list[str]:
        """Every client secret the config's secret files hold (to prove none leaks)."""
        return [
            p.read_text(encoding="utf-8").strip()
            for p in (self.config_path.parent / "secrets").glob("*.secret")
        ]

    def customer_tenants(self) -> list[dict[str, Any]]:
        tenants: list[dict[str, Any]] = self.emulator.fleet()["tenants"]
        return tenants

    def break_secret(self, tenant_id: str) -> None:
        (self.config_path.parent / "secrets" / f"{tenant_id}.secret").write_text(
            "not-the-secret", encoding="utf-8"
        )


def make_fleet(tmp_path: Path, **emulator_options: Any) -> Iterator[Fleet]:
    with run_emulator(**emulator_options) as handle:
        path = handle.write_config(tmp_path / "fleet" / "fleet.toml")
        yield Fleet(handle, path)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """The emulator's default generated fleet: 3 customer tenants × 2 subscriptions × 4 apps."""
    yield from make_fleet(tmp_path)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None) -> CliResult:
    """Run `python -m orchestrator ...` as an operator would; returns exit code and both streams."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ORCHESTRATOR_"))}
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
        timeout=240,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
