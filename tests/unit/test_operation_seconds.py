"""`operation_seconds`: an operation's duration by ARM's own clock, from its status body (untrusted)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from orchestrator.arm.convert import operation_seconds
from orchestrator.arm.gateway import _OperationCapture


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        (
            {"status": "Succeeded", "startTime": "2026-11-30T09:00:00Z", "endTime": "2026-11-30T09:05:00Z"},
            300.0,
        ),
        # ARM writes seven fractional digits; offsets other than Z are the same instant.
        ({"startTime": "2026-11-30T09:00:00.1234567Z", "endTime": "2026-11-30T10:00:15.1234567+01:00"}, 15.0),
        ({"startTime": "2026-11-30T09:00:00.25Z", "endTime": "2026-11-30T09:00:01.75Z"}, 1.5),
    ],
)
def test_the_duration_is_end_minus_start(body: dict[str, Any], seconds: float) -> None:
    assert operation_seconds(body) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "body",
    [
        {"status": "Running", "startTime": "2026-11-30T09:00:00Z"},  # not ended
        {"status": "Succeeded", "endTime": "2026-11-30T09:00:00Z"},  # no start
        {"startTime": "2026-11-30T09:05:00Z", "endTime": "2026-11-30T09:00:00Z"},  # ends before it starts
        {"startTime": "2026-11-30T09:00:00Z", "endTime": "2026-11-30T09:00:00Z"},  # took no time
        {"startTime": "2026-11-30T09:00:00", "endTime": "2026-11-30T09:05:00"},  # no time zone: whose?
        {"startTime": "2026-11-30T09:00:00", "endTime": "2026-11-30T09:05:00Z"},  # naive against aware
        {"startTime": "yesterday", "endTime": "today"},
        {"startTime": 1, "endTime": 2},
        {"startTime": None, "endTime": None},
        {"startTime": "2026-11-30T09:00:00Z\x1b[2J", "endTime": "2026-11-30T09:05:00Z"},
        ["startTime", "endTime"],
        "not an object",
        None,
    ],
)
def test_anything_else_says_nothing(body: Any) -> None:
    assert operation_seconds(body) is None


class _Response:
    """The slice of azure-core's PipelineResponse a raw_response_hook reads."""

    def __init__(self, content: bytes) -> None:
        self.http_response = self
        self.headers = {"x-ms-request-id": "req-1"}
        self.content = content


@pytest.mark.parametrize(
    "content",
    [
        b'{"startTime": "2026-11-30T09:00:00Z", "endTime": ',  # cut mid-body
        b'{"endTime": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # nested past the stack
        b'"endTime" \xff\xfe',  # not UTF-8
    ],
)
def test_a_hostile_status_body_never_breaks_following_the_operation(content: bytes) -> None:
    capture = _OperationCapture()
    capture(cast(Any, _Response(b'{"startTime": "2026-11-30T09:00:00Z", "endTime": "2026-11-30T09:05:00Z"}')))
    capture(cast(Any, _Response(content)))
    assert capture.seconds == 300.0  # the last status that said both still counts
    assert capture.info.request_id == "req-1"
