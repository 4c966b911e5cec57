"""The local CA (made once per state dir, like Azurite's) and a fresh server certificate per start."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsMaterial:
    ca_bundle: Path
    ssl_context: ssl.SSLContext


def ensure_tls(state_dir: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")) -> TlsMaterial:
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = state_dir / "ca.pem", state_dir / "ca-key.pem"
    if ca_cert.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="managedapp-orchestrator emulator")
        ca.cert_pem.write_to_path(str(ca_cert))
        ca.private_key_pem.write_to_path(str(ca_key))
        ca_key.chmod(0o600)
    # The server certificate is re-issued every start, so a new host list never needs a new CA.
    leaf = ca.issue_cert(*hosts)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    return TlsMaterial(ca_bundle=ca_cert.resolve(), ssl_context=ctx)
