"""azure-core exceptions → ArmError: status, ARM code, transient, call info; one line, no secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.core.rest import HttpRequest
from azure.core.rest._http_response_impl import HttpResponseImpl

from orchestrator.arm.errors import call_info, envelope, is_transient, to_arm_error

HEADERS = {
    "x-ms-request-id": "req-1",
    "x-ms-correlation-request-id": "corr-1",
    "x-ms-ratelimit-remaining-subscription-reads": "249",
}


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpResponseImpl:
    content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    resp = HttpResponseImpl(
        request=HttpRequest("GET", "https://management.example/x"),
        internal_response=None,
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or HEADERS)},
        reason="reason",
        content_type="application/json",
        stream_download_generator=None,
    )
    resp._content = content
    return resp


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (429, "TooManyRequests", True),
        (500, "InternalServerError", True),
        (503, "ServiceUnavailable", True),
        (408, "RequestTimeout", True),
        (409, "AnotherOperationInProgress", True),
        (409, "Conflict", False),
        (404, "ResourceNotFound", False),
        (403, "AuthorizationFailed", False),
        (400, "InvalidRequestContent", False),
    ],
)
def test_status_and_code_classify_transience(status: int, code: str, transient: bool) -> None:
    exc = HttpResponseError(
        response=response(status, {"error": {"code": code, "message": f"{code} happened\nmore"}})
    )
    err = to_arm_error(exc, "list applications in s1")
    assert (err.status, err.code, err.transient) == (status, code, transient)
    assert str(err) == f"list applications in s1: HTTP {status} {code}: {code} happened"
    assert err.info.request_id == "req-1" and err.info.remaining_reads == 249


def test_an_entra_failure_is_authentication_failed_not_an_arm_status() -> None:
    body = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}
    exc = ClientAuthenticationError(
        message="ClientSecretCredential.get_token failed: AADSTS7000215", response=response(401, body)
    )
    err = to_arm_error(exc, "list subscriptions of tenant t1")
    assert err.code == "AuthenticationFailed" and not err.transient
    assert "authentication failed" in str(err)


def test_an_arm_401_keeps_arms_code() -> None:
    body = {"error": {"code": "InvalidAuthenticationTokenTenant", "message": "wrong issuer"}}
    err = to_arm_error(ClientAuthenticationError(response=response(401, body)), "x")
    assert (err.status, err.code) == (401, "InvalidAuthenticationTokenTenant")


def test_connection_errors_are_transient() -> None:
    err = to_arm_error(ServiceRequestError("Cannot connect to host"), "x")
    assert err.transient and err.code == "ConnectionError" and err.status is None


def test_secrets_in_messages_are_redacted() -> None:
    body = {"error": {"code": "Bad", "message": "got client_secret=hunter2 and Bearer eyJabc.def.ghi"}}
    err = to_arm_error(HttpResponseError(response=response(400, body)), "x")
    assert "hunter2" not in str(err) and "eyJabc" not in str(err)


def test_helpers() -> None:
    assert envelope('{"error": {"code": "A", "message": "m"}}') == ("A", "m")
    assert envelope(b"not json") == (None, None)
    assert envelope({"code": "B"}) == ("B", None)
    assert (
        call_info({"X-MS-REQUEST-ID": "r", "x-ms-ratelimit-remaining-subscription-writes": "x"}).request_id
        == "r"
    )
    assert call_info(None).request_id is None
    assert not is_transient(None, None)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "7", "retry-after-ms": "250"}, 0.25),  # the finer one wins
        ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),  # ARM does not send dates
        ({}, None),
    ],
)
def test_a_throttled_response_carries_how_long_arm_asked_to_wait(
    headers: dict[str, str], seconds: float | None
) -> None:
    body = {"error": {"code": "TooManyRequests", "message": "slow down"}}
    exc = HttpResponseError(response=response(429, body, {**HEADERS, **headers}))
    assert to_arm_error(exc, "list").retry_after == seconds
