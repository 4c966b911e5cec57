"""azure-core exceptions → `ArmError`, classified for the operation-level retry layer.

By the time an exception reaches here azure-core's transport retries are spent, so `transient` means
"worth trying again later as a whole operation", not "retry right now".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from orchestrator.errors import ArmError
from orchestrator.gateway import CallInfo
from orchestrator.logs import redact_text

T = TypeVar("T")

# 409 codes ARM returns while another operation holds the resource: retrying later succeeds.
_BUSY_CODES = frozenset(
    {
        "anotheroperationinprogress",
        "operationinprogress",
        "conflictingoperationinprogress",
        "resourcebusy",
        "applicationupdateinprogress",
    }
)


def call_info(headers: Mapping[str, str] | None) -> CallInfo:
    """What ARM said about a call, from its response headers (case-insensitive)."""
    if not headers:
        return CallInfo()
    lower = {k.lower(): v for k, v in headers.items()}
    return replace(
        rate_info(lower),
        request_id=lower.get("x-ms-request-id"),
        correlation_id=lower.get("x-ms-correlation-request-id"),
    )


def rate_info(headers: Mapping[str, str]) -> CallInfo:
    """The rate-limit part of `call_info`. `headers` must look names up case-insensitively: the
    transport's own headers (this runs for every response: no copy of the whole set) or lower-cased."""

    def as_int(name: str) -> int | None:
        value = headers.get(name)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    return CallInfo(
        remaining_reads=as_int("x-ms-ratelimit-remaining-subscription-reads"),
        remaining_writes=as_int("x-ms-ratelimit-remaining-subscription-writes"),
        tenant_remaining_reads=as_int("x-ms-ratelimit-remaining-tenant-reads"),
        tenant_remaining_writes=as_int("x-ms-ratelimit-remaining-tenant-writes"),
        retry_after=_wait(headers),
    )


def is_transient(status: int | None, code: str | None) -> bool:
    if status is None:
        return False
    if status in (408, 429) or status >= 500:
        return True
    return status == 409 and (code or "").lower() in _BUSY_CODES


def envelope(body: Any) -> tuple[str | None, str | None]:
    """(code, message) from an ARM error envelope `{"error": {"code", "message"}}` or a bare error."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return None, None
    if not isinstance(body, dict):
        return None, None
    err = body.get("error", body)
    if not isinstance(err, dict):
        return None, None
    code = err.get("code")
    message = err.get("message")
    return (str(code) if code else None, str(message) if message else None)


def to_arm_error(exc: BaseException, what: str) -> ArmError:
    """An `ArmError` whose message is one line: what was attempted, the status, ARM's code and message."""
    if isinstance(exc, ArmError):
        return exc
    if isinstance(exc, ClientAuthenticationError) and not _from_arm(exc):
        # Raised by azure-identity: no token could be obtained (bad secret, unknown client, ...).
        return ArmError(
            f"{what}: authentication failed: {_one_line(exc.message)}",
            code="AuthenticationFailed",
            transient=False,
        )
    if isinstance(exc, HttpResponseError):
        response = exc.response
        status = exc.status_code if exc.status_code is not None else getattr(response, "status_code", None)
        code: str | None = None
        message: str | None = None
        if exc.error is not None:
            code, message = exc.error.code, exc.error.message
        if (code is None or message is None) and response is not None:
            try:
                body_code, body_message = envelope(response.text())
            except Exception:  # a streamed body that is gone; keep what we have
                body_code, body_message = None, None
            code = code or body_code
            message = message or body_message
        headers = dict(getattr(response, "headers", None) or {})
        return ArmError(
            f"{what}: HTTP {status}{' ' + code if code else ''}: "
            f"{_one_line(message or exc.reason or str(exc))}",
            status=status,
            code=code,
            transient=is_transient(status, code),
            info=call_info(headers),
            retry_after=retry_after(headers),
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, OSError, TimeoutError)):
        return ArmError(
            f"{what}: connection failed: {_one_line(str(exc))}", code="ConnectionError", transient=True
        )
    return ArmError(f"{what}: {type(exc).__name__}: {_one_line(str(exc))}", transient=False)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait: `retry-after-ms`, else `Retry-After` in seconds (ARM does not
    send the HTTP-date form)."""
    return _wait({k.lower(): v for k, v in headers.items()})


def _wait(headers: Mapping[str, str]) -> float | None:
    """`retry_after` over headers that look names up case-insensitively."""
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


async def arm_call(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """`await call()`, its failures as `ArmError` (`what` says what was attempted)."""
    try:
        return await call()
    except ArmError:
        raise
    except Exception as exc:
        raise to_arm_error(exc, what) from None


def _from_arm(exc: HttpResponseError) -> bool:
    """Whether the response carries ARM's error envelope (a 401/403 from ARM, not from Entra)."""
    if exc.response is None:
        return False
    try:
        body = json.loads(exc.response.text())
    except Exception:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def _one_line(text: str | None) -> str:
    first = (text or "").strip().splitlines()
    line = first[0] if first else ""
    if len(line) > 400:
        line = line[:400] + "…"
    return redact_text(line)
