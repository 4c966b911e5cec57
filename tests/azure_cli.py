"""The stock Azure CLI from PyPI, in its own virtual environment (never the project's), cached.

The environment lives under a stable path (`$ORCHESTRATOR_TEST_TOOLS`, default
`~/.cache/orchestrator-tests/azure-cli-<version>`), so only the first run pays for the install; it is
built beside that path and renamed into place when complete, under a file lock (pytest-xdist workers
share it). `az` is run as `<venv>/bin/python -m azure.cli`, which does not depend on script shebangs.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The stock CLI the issue was reported against; override to try another release.
VERSION = os.environ.get("ORCHESTRATOR_AZURE_CLI_VERSION", "2.91.0")
INSTALL_TIMEOUT = 1500.0


def tools_dir() -> Path:
    default = Path.home() / ".cache" / "orchestrator-tests"
    return Path(os.environ.get("ORCHESTRATOR_TEST_TOOLS", default))


def _works(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import azure.cli.core, azure.cli.command_modules.resource"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return probe.returncode == 0


def ensure() -> tuple[Path | None, str]:
    """(the CLI environment's python, "") or (None, why it could not be installed)."""
    root = tools_dir()
    venv = root / f"azure-cli-{VERSION}"
    python = venv / "bin" / "python"
    if _works(python):
        return python, ""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with (root / "azure-cli.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _works(python):  # another worker finished it while we waited
                return python, ""
            partial = root / f"azure-cli-{VERSION}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(venv, ignore_errors=True)
            steps = [
                [sys.executable, "-m", "venv", str(partial)],
                [
                    str(partial / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    f"azure-cli=={VERSION}",
                ],
            ]
            for step in steps:
                done = subprocess.run(
                    step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
                )
                if done.returncode != 0:
                    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                    return None, f"installing azure-cli=={VERSION} failed: {tail[0]}"
            partial.rename(venv)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"installing azure-cli=={VERSION} failed: {exc}"
    if not _works(python):
        return None, f"azure-cli=={VERSION} installed into {venv} but does not import"
    return python, ""
