"""ARM's response conventions: the error envelope, request-id headers, JSON bodies, Retry-After."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from orchestrator.emulator.errors import ArmError

# Per-request storage: the request's kind (read/list/write/poll) and the operation faults that fired.
KIND_KEY = web.RequestKey("emulator_kind", str)
OPERATION_FAULTS_KEY: web.RequestKey[list[Any]] = web.RequestKey("emulator_operation_faults", list)
RATE_HEADERS_KEY: web.RequestKey[dict[str, str]] = web.RequestKey("emulator_rate_headers", dict)


def envelope(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": [], "additionalInfo": []}}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(err: ArmError) -> web.Response:
    return json_response(envelope(err.code, err.message), err.status, err.headers)


def retry_after_headers(seconds: float) -> dict[str, str]:
    """Retry-After for azure-core: it must be an int (the generated SDKs deserialize it as int on
    201/202), and "0" makes the poller fall back to its 30 s default interval. So under one second
    only `retry-after-ms` is sent, which azure-core also reads (azure/core/pipeline/policies/_utils.py)."""
    seconds = max(seconds, 0.0)
    ms = max(1, math.ceil(seconds * 1000))
    if seconds >= 1:
        return {"Retry-After": str(round(seconds)), "retry-after-ms": str(ms)}
    return {"retry-after-ms": str(ms)}
