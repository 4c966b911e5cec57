"""Write the orchestrator's fleet config (TOML) pointing at this emulator; secrets go to 0600 files.

The shape follows orchestrator/config.py (the authority), without importing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from orchestrator.emulator.state import State


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string for these values


def write_config(state: State, base_url: str, ca_bundle: Path, path: Path) -> Path:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    secrets_dir = path.parent / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    lines = [
        "# Written by `orchestrator emulator serve --write-config`: a fleet served by the local emulator.",
        "[cloud]",
        'name = "custom"',
        f"arm_endpoint = {_q(base_url)}",
        f"authority_host = {_q(base_url)}",
        f"ca_bundle = {_q(str(ca_bundle))}",
        "",
    ]
    tenants = sorted(state.tenants.values(), key=lambda t: (t.role != "publisher", t.name))
    for tenant in tenants:
        secret_file = secrets_dir / f"{tenant.id}.secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(tenant.client_secret)
        secret_file.chmod(0o600)
        ring = "publisher" if tenant.role == "publisher" else tenant.ring
        lines += [
            "[[tenants]]",
            f"id = {_q(tenant.id)}",
            f"name = {_q(tenant.name)}",
            f"ring = {_q(ring)}",
            'subscriptions = "all"',
            "[tenants.credential]",
            'kind = "client_secret"',
            f"client_id = {_q(tenant.client_id)}",
            f"secret_file = {_q(f'secrets/{tenant.id}.secret')}",
            "",
        ]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
    return path


def write_notification_secret(config: Path, secret: str) -> Path:
    """The webhook secret for `orchestrator notifications serve --secret-file` (0600, beside the config)."""
    path = config.resolve().parent / "secrets" / "notifications.secret"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret)
    path.chmod(0o600)
    return path
