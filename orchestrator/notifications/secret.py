"""The webhook secret: from an environment variable or a file only its owner can read. Never logged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.errors import InputError

DEFAULT_ENV = "ORCHESTRATOR_NOTIFY_SECRET"


def load_secret(*, env: str | None, file: Path | None, environ: dict[str, str] | None = None) -> str:
    source = os.environ if environ is None else environ
    if file is not None:
        try:
            mode = file.stat().st_mode
        except OSError as exc:
            raise InputError(f"--secret-file {file}: cannot read: {exc.strerror or exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InputError(
                f"--secret-file {file}: readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
            )
        try:
            value = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--secret-file {file}: cannot read: {type(exc).__name__}") from None
        if not value:
            raise InputError(f"--secret-file {file}: is empty")
        return value
    name = env or DEFAULT_ENV
    value = source.get(name, "").strip()
    if not value:
        raise InputError(f"--secret-env: ${name} is not set (or give --secret-file, mode 0600)")
    return value
