"""Write the orchestrator's fleet config (TOML) pointing at this emulator; secrets go to 0600 files.

The shape follows orchestrator/config.py (the authority), without importing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from orchestrator.emulator.state import State, Tenant


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string for these values


def _secret_file(secrets_dir: Path, tenant: Tenant) -> str:
    secret_file = secrets_dir / f"{tenant.id}.secret"
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(tenant.client_secret)
    secret_file.chmod(0o600)
    return f"secrets/{tenant.id}.secret"


def _customers(state: State, tenants: list[Tenant], base: Path, secrets_dir: Path) -> list[str]:
    """A mixed fleet: one publisher identity (delegated, publisher and locked customers), one identity
    per direct customer, and an application id list per customer the publisher reads by id."""
    lines: list[str] = []
    (base / "customers").mkdir(exist_ok=True)
    for tenant in tenants:
        if tenant.role != "publisher" and tenant.access != "direct":
            continue
        lines += [
            "[[identities]]",
            f"name = {_q('publisher' if tenant.role == 'publisher' else tenant.name)}",
            f"tenant_id = {_q(tenant.id)}",
            "[identities.credential]",
            'kind = "client_secret"',
            f"client_id = {_q(tenant.client_id)}",
            f"secret_file = {_q(_secret_file(secrets_dir, tenant))}",
            "",
        ]
    paths = {"direct": "direct", "delegated": "delegated", "publisher": "publisher", "locked": "customer-run"}
    for tenant in tenants:
        if tenant.role == "publisher":
            continue
        identity = tenant.name if tenant.access == "direct" else "publisher"
        lines += [
            f"# access in the emulator: {tenant.access}",
            "[[customers]]",
            f"id = {_q(tenant.id)}",
            f"name = {_q(tenant.name)}",
            f"ring = {_q(tenant.ring)}",
            f"path = {_q(paths[tenant.access])}",
            f"identity = {_q(identity)}",
        ]
        if tenant.access in ("publisher", "locked"):
            subs = {s.id.lower() for s in state.subscriptions_of(tenant.id)}
            ids = sorted(
                a["id"] for a in state.applications.values() if a["id"].split("/")[2].lower() in subs
            )
            list_file = base / "customers" / f"{tenant.id}.txt"
            list_file.write_text(
                f"# Application ids of {tenant.name}, one a line\n" + "".join(f"{i}\n" for i in ids),
                encoding="utf-8",
            )
            lines.append(f"apps = {_q(f'customers/{tenant.id}.txt')}")
        lines.append("")
    return lines


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
    if any(t.access != "direct" for t in tenants):
        lines += _customers(state, tenants, path.parent, secrets_dir)
        tenants = []
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
