"""The notification body Azure POSTs to `{endpoint}/resource` (Azure docs: "Azure managed applications
with notifications", Notification schema). Pure: bytes in, a `Notification` or one line of reason out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.models import MarketplacePlan

# Which provisioning states each event type carries (the documented combinations, nothing else).
STATES: dict[str, frozenset[str]] = {
    "PUT": frozenset({"Accepted", "Succeeded", "Failed"}),
    "PATCH": frozenset({"Succeeded"}),
    "DELETE": frozenset({"Deleting", "Deleted", "Failed"}),
}
_APP_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Solutions/applications/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_PLAN_KEYS = ("publisher", "product", "name", "version")


class InvalidEvent(ValueError):
    """The body is not a notification; `str()` is the one-line reason sent back with the 400."""


@dataclass(frozen=True)
class Notification:
    event_type: str  # PUT | PATCH | DELETE
    application_id: str
    event_time: datetime  # UTC
    provisioning_state: str
    definition_id: str | None = None  # service catalog instances
    plan: MarketplacePlan | None = None  # marketplace instances
    resource_usage_id: str | None = None  # billingDetails.resourceUsageId (marketplace)
    error_code: str | None = None
    error_message: str | None = None

    @property
    def app_key(self) -> str:
        return self.application_id.lower()

    @property
    def kind(self) -> str:
        return "MarketPlace" if self.plan is not None else "ServiceCatalog"

    @property
    def subscription_id(self) -> str:
        match = _APP_ID.match(self.application_id)
        assert match is not None  # checked by parse_event
        return match["sub"]

    @property
    def dedup_key(self) -> tuple[str, str, str, str]:
        """Azure retries an event until it gets a 200: the same (app, type, state, time) is one event."""
        return (self.app_key, self.event_type, self.provisioning_state, iso(self.event_time))


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidEvent(f"missing field {key}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"{key} must be a non-empty string")
    return value.strip()


def _event_time(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidEvent("eventTime is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise InvalidEvent("eventTime has no time zone (expected UTC)")
    return value.astimezone(UTC)


def _plan(raw: Any) -> MarketplacePlan:
    if not isinstance(raw, dict):
        raise InvalidEvent("plan must be an object")
    for key in _PLAN_KEYS:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidEvent(f"plan.{key} is missing or not a string")
    return MarketplacePlan(**{key: str(raw[key]).strip() for key in _PLAN_KEYS})


def _error(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, dict):
        raise InvalidEvent("a Failed event needs an error object")
    code, message = raw.get("code"), raw.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        raise InvalidEvent("error.code and error.message must be strings")
    return code, message


def parse_event(raw: bytes) -> Notification:
    """Validate one notification body against the documented schema."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidEvent("body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidEvent("body is not a JSON object")
    event_type = _text(body, "eventType")
    assert event_type is not None
    if event_type not in STATES:
        raise InvalidEvent("eventType must be PUT, PATCH or DELETE")
    app_id = _text(body, "applicationId")
    assert app_id is not None
    if not _APP_ID.match(app_id):
        raise InvalidEvent("applicationId is not a Microsoft.Solutions/applications resource id")
    time_text = _text(body, "eventTime")
    assert time_text is not None
    state = _text(body, "provisioningState")
    assert state is not None
    if state not in STATES[event_type]:
        allowed = ", ".join(sorted(STATES[event_type]))
        raise InvalidEvent(f"provisioningState {state!r} is not one of {event_type}'s ({allowed})")
    definition_id = _text(body, "applicationDefinitionId", required=False)
    plan = _plan(body["plan"]) if body.get("plan") is not None else None
    if definition_id is None and plan is None:
        raise InvalidEvent("missing field applicationDefinitionId (service catalog) or plan (marketplace)")
    usage: str | None = None
    billing = body.get("billingDetails")
    if billing is not None:
        if not isinstance(billing, dict) or not isinstance(billing.get("resourceUsageId", ""), str):
            raise InvalidEvent("billingDetails.resourceUsageId must be a string")
        usage = billing.get("resourceUsageId") or None
    code = message = None
    if state == "Failed":
        code, message = _error(body.get("error"))
    return Notification(
        event_type=event_type,
        application_id=app_id,
        event_time=_event_time(time_text),
        provisioning_state=state,
        definition_id=definition_id,
        plan=plan,
        resource_usage_id=usage,
        error_code=code,
        error_message=message,
    )


def event_body(event: Notification) -> dict[str, Any]:
    """The event as Azure documents it (what the registry stores and exports)."""
    body: dict[str, Any] = {
        "eventType": event.event_type,
        "applicationId": event.application_id,
        "eventTime": iso(event.event_time),
        "provisioningState": event.provisioning_state,
    }
    if event.definition_id is not None:
        body["applicationDefinitionId"] = event.definition_id
    if event.plan is not None:
        body["plan"] = event.plan.model_dump()
    if event.resource_usage_id is not None:
        body["billingDetails"] = {"resourceUsageId": event.resource_usage_id}
    if event.error_code is not None:
        body["error"] = {"code": event.error_code, "message": event.error_message, "details": []}
    return body
