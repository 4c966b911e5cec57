"""Annotated pydantic field types for config values Azure or the OS is strict about.

Checked when the config is loaded, so a bad value is one line naming the field there, not a failure
against Azure later. Use them in any config model: `client_id: Guid`, `arm_endpoint: HttpsEndpoint`,
`ca_bundle: PemBundle`, `secret_file: PrivateFile`, `apps: ConfigPath`.

A relative path is resolved against the config file's folder when the model is validated with
`context={"base": folder}` (as `load_config` does), else against the working directory.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, ValidationInfo

from orchestrator.untrusted import UnreadableFile, read_regular_file

# Set to 1 to accept a secret or certificate file that group or others may read (e.g. a mounted
# volume whose mode cannot be narrowed). Without it such a file is refused, as OpenSSH refuses a key.
OPT_OUT_ENV = "ORCHESTRATOR_ALLOW_SHARED_SECRET_FILES"
MAX_PEM_BYTES = 16 * 1024 * 1024

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _guid(value: str) -> str:
    if not _GUID.fullmatch(value):
        raise ValueError(f"{value!r} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    return value


def _https_endpoint(value: str) -> str:
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise ValueError(f"{value!r} is not a URL") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: the user-info part may hold a password.
        raise ValueError("must not carry a user name or password (https://host[:port]/)")
    if parts.scheme.lower() != "https":
        raise ValueError(f"{value!r} must be an https:// URL")
    if not parts.hostname or not port_ok:
        raise ValueError(f"{value!r} is not a URL with a host (https://host[:port]/)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{value!r} must have no path, query or fragment (https://host[:port]/)")
    return value


def _resolved(value: Path, info: ValidationInfo) -> Path:
    base = info.context.get("base") if isinstance(info.context, dict) else None
    if value.is_absolute() or base is None:
        return value
    return (Path(base) / value).resolve()


def _pem_bundle(value: Path, info: ValidationInfo) -> Path:
    from cryptography import x509

    path = _resolved(value, info)
    try:
        data = read_regular_file(path, limit=MAX_PEM_BYTES)
    except UnreadableFile as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError(f"{path}: not a PEM certificate bundle (-----BEGIN CERTIFICATE-----)") from None
    return path


def check_private(path: Path, mode: int) -> None:
    """ValueError unless `path` (whose `stat` gave `mode`) is a regular file only its owner can use:
    the one rule for every file holding a secret (config credentials, the webhook secret)."""
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path}: not a regular file")
    if mode & 0o077 and os.environ.get(OPT_OUT_ENV) != "1":
        raise ValueError(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}): "
            f"run `chmod 600 {path}` (or set {OPT_OUT_ENV}=1 if it cannot be narrowed)"
        )


def _private_file(value: Path, info: ValidationInfo) -> Path:
    path = _resolved(value, info)
    try:
        mode = path.stat().st_mode
    except OSError:
        return path  # missing or unreadable: reported where it is read, naming the tenant
    check_private(path, mode)
    return path


Guid = Annotated[str, AfterValidator(_guid)]
HttpsEndpoint = Annotated[str, AfterValidator(_https_endpoint)]
PemBundle = Annotated[Path, AfterValidator(_pem_bundle)]
PrivateFile = Annotated[Path, AfterValidator(_private_file)]
ConfigPath = Annotated[Path, AfterValidator(_resolved)]  # any other path the config names
