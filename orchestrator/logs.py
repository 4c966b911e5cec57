"""structlog setup: readable on a terminal, JSON lines for machines, and never a secret.

Bind run context with `structlog.contextvars.bind_contextvars(run_id=..., tenant=..., app=...)`; every
line logged in that task then carries it. `redact_secrets` runs last before rendering, so nothing a
caller passes by mistake (a token, a client secret, an Authorization header) reaches the output.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

from orchestrator.untrusted import clean

LogFormat = Literal["console", "json"]

_SECRET_KEYS = re.compile(r"secret|password|token|authorization|assertion|credential|sig", re.IGNORECASE)
# Bearer tokens / JWTs, and `client_secret=...` inside free text such as an exception message.
_SECRET_TEXT = [
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9\-_.~+/]+=*"), "Bearer ***"),
    (re.compile(r"eyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*"), "***jwt***"),
    (re.compile(r"(?i)(client_secret|client_assertion|password|sig)=([^&\s\"']+)"), r"\1=***"),
]
# Keys that merely mention a secret's *location* or a non-secret id may pass.
_ALLOWED_KEYS = frozenset({"secret_env", "secret_file", "token_file", "resume_token_present"})


def redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key not in _ALLOWED_KEYS and _SECRET_KEYS.search(key):
            event_dict[key] = "***"
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


def clean_for_terminal(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Text from outside (names from ARM, paths, ids) reaches the console without control characters."""
    for key, value in list(event_dict.items()):
        if isinstance(value, str):
            event_dict[key] = clean(value)
    return event_dict


def configure(fmt: LogFormat = "console", *, level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog (and stdlib logging, which the Azure SDK uses) once per process."""
    out = stream or sys.stderr
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            *([] if fmt == "json" else [clean_for_terminal]),  # JSON lines escape controls already
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # The SDK logs request URLs and headers at DEBUG, and azure-identity warns about every failed token
    # request, which the orchestrator already reports once per tenant with its cause: keep both quiet
    # unless asked for debug.
    logging.basicConfig(level=logging.WARNING, stream=out, format="%(levelname)s %(name)s: %(message)s")
    sdk_level = logging.DEBUG if level.lower() == "debug" else logging.ERROR
    for name in ("azure", "azure.core.pipeline.policies.http_logging_policy", "azure.identity", "msal"):
        logging.getLogger(name).setLevel(sdk_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_redact_stdlib)


def _redact_stdlib(record: logging.LogRecord) -> bool:
    record.msg = clean(redact_text(record.getMessage()))
    record.args = None
    return True


def get_logger(**initial: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(**initial)
    return logger
