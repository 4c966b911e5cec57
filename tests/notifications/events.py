"""Notification bodies as Azure documents them, for tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

SUB = "00000000-0000-0000-0000-0000000000aa"
BASE = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DEFINITION = (
    f"/subscriptions/{SUB}/resourceGroups/pub/providers/Microsoft.Solutions/applicationDefinitions/app-v2"
)


def app_id(n: int, sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Solutions/applications/ma-{n:05d}"


def body(
    n: int = 1,
    *,
    event_type: str = "PUT",
    state: str = "Succeeded",
    seconds: float = 0,
    definition: str | None = DEFINITION,
    plan_version: str | None = None,
    app: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "eventType": event_type,
        "applicationId": app or app_id(n),
        "eventTime": (BASE + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
        "provisioningState": state,
    }
    if plan_version is not None:
        out["plan"] = {
            "publisher": "contoso-isv",
            "product": "contoso-app",
            "name": "standard",
            "version": plan_version,
        }
        out["billingDetails"] = {"resourceUsageId": "usage-1"}
    elif definition is not None:
        out["applicationDefinitionId"] = definition
    if state == "Failed":
        out["error"] = {"code": "ApplicationDefinitionInvalid", "message": "template invalid", "details": []}
    return out


def raw(**kwargs: Any) -> bytes:
    return json.dumps(body(**kwargs)).encode()
