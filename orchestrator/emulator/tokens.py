"""JWT-shaped access tokens, HS256-signed with an emulator key so the emulator can verify them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

Claims = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TokenService:
    def __init__(self, key: bytes, lifetime: float = 3600.0) -> None:
        self._key = key
        self.lifetime = lifetime
        # Verified signatures, so a hot read path does one dict lookup instead of an HMAC + JSON parse.
        self._cache: dict[str, Claims] = {}

    def issue(self, claims: Claims) -> tuple[str, int]:
        issued = int(time.time())
        body = {**claims, "iat": issued, "nbf": issued - 1, "exp": issued + int(self.lifetime)}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "emulator"}).encode())
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._key, f"{head}.{payload}".encode(), hashlib.sha256).digest())
        return f"{head}.{payload}.{sig}", int(self.lifetime)

    def verify(self, token: str) -> Claims:
        """Return the claims, or raise TokenError with the ARM error code."""
        claims = self._cache.get(token)
        if claims is None:
            parts = token.split(".")
            if len(parts) != 3:
                raise TokenError(
                    "AuthenticationFailed", "Authentication failed. The access token is malformed."
                )
            expected = _b64(hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(expected, parts[2]):
                raise TokenError(
                    "AuthenticationFailed", "Authentication failed. The access token signature is invalid."
                )
            try:
                claims = json.loads(_unb64(parts[1]))
            except ValueError:
                raise TokenError("AuthenticationFailed", "Authentication failed. Unreadable token.") from None
            if not isinstance(claims, dict):
                raise TokenError("AuthenticationFailed", "Authentication failed. Unreadable token.")
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = claims
        if float(claims.get("exp", 0)) <= time.time():
            raise TokenError(
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
            )
        return claims


def unverified_claims(token: str) -> Claims | None:
    """Read a JWT's payload without checking it (client assertions: not emulated beyond shape)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None
