"""The one error the emulator's ARM side raises: rendered as ARM's error envelope by armhttp.

Kept apart from armhttp (which needs aiohttp) so the model modules stay free of HTTP."""

from __future__ import annotations


class ArmError(Exception):
    """Raised by the model and the route handlers; rendered as the ARM error envelope."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(kind: str, name: str, rg: str) -> ArmError:
    """ARM's 404 for a resource missing from an existing resource group."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please "
        "go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def method_not_allowed(method: str) -> ArmError:
    return ArmError(
        405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'."
    )


def missing_api_version() -> ArmError:
    return ArmError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )
