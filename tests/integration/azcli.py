"""The stock Azure CLI (tests/azure_cli.py: PyPI azure-cli in its own cached venv) signed in as a
customer of the emulator, with an `az` on PATH for the kits' scripts.

Each `AzCli` has its own AZURE_CONFIG_DIR, a cloud registered with explicit endpoints and trusts the
emulator's CA through REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.emulator.testing import EmulatorHandle
from tests import azure_cli


def find_az(bin_dir: Path) -> tuple[str | None, str]:
    """(an `az` in `bin_dir` running the cached stock CLI, "") or (None, why there is none)."""
    python, why = azure_cli.ensure()
    if python is None:
        return None, why
    bin_dir.mkdir(parents=True, exist_ok=True)
    az = bin_dir / "az"
    # `python -m azure.cli`, as tests/azure_cli.py runs it (the venv's own scripts name another path).
    az.write_text(f'#!/usr/bin/env bash\nexec "{python}" -m azure.cli "$@"\n', encoding="utf-8")
    az.chmod(0o755)
    return str(az), ""


@dataclass
class AzCli:
    az: str
    config_dir: Path
    ca_bundle: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ORCHESTRATOR_"))}
        env.update(
            AZURE_CONFIG_DIR=str(self.config_dir),
            REQUESTS_CA_BUNDLE=str(self.ca_bundle),
            AZURE_CORE_COLLECT_TELEMETRY="0",
            AZURE_CORE_NO_COLOR="1",
            PATH=f"{Path(self.az).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.az, *args], capture_output=True, text=True, env=self.env(), timeout=300, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"az {' '.join(args[:3])} failed: {proc.stderr[-2000:]}")
        return proc

    def script(self, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(path), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=path.parent,
            timeout=600,
            check=False,
        )


def sign_in_as_customer(az: str, emulator: EmulatorHandle, tenant_id: str, config_dir: Path) -> AzCli:
    """`az cloud register` + `az login --service-principal` with the customer's own credential."""
    cli = AzCli(az, config_dir, emulator.ca_bundle)
    base = emulator.url.rstrip("/")
    cli.run(
        "cloud",
        "register",
        "-n",
        "Emulator",
        "--skip-endpoint-discovery",
        "--endpoint-resource-manager",
        emulator.url,
        "--endpoint-active-directory",
        base,
        # az appends "/" to the resource id for the token scope: give it without, so the audience is the
        # ARM endpoint exactly (the emulator's audience check).
        "--endpoint-active-directory-resource-id",
        base,
    )
    cli.run("cloud", "set", "-n", "Emulator")
    # MSAL's instance discovery asks login.microsoftonline.com about any other authority: off.
    cli.run("config", "set", "core.instance_discovery=false", "--only-show-errors")
    cred = emulator.customer_credential(tenant_id)
    cli.run(
        "login",
        "--service-principal",
        "-u",
        cred["client_id"],
        "-p",
        cred["client_secret"],
        "--tenant",
        cred["tenant_id"],
        "-o",
        "none",
    )
    return cli
