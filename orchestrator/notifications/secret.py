"""The webhook secret: from an environment variable or a file only its owner can read. Never logged."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.fields import check_private

DEFAULT_ENV = "ORCHESTRATOR_NOTIFY_SECRET"


def load_secret(*, env: str | None, file: Path | None, environ: dict[str, str] | None = None) -> str:
    source = os.environ if environ is None else environ
    if file is not None:
        try:
            check_private(file, file.stat().st_mode)  # the config's rule for secret files
        except OSError as exc:
            raise InputError(f"--secret-file {file}: cannot read: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise InputError(f"--secret-file {exc}") from None
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
