"""JWT access tokens, HS256-signed (PyJWT) with an emulator key so the emulator can verify them."""

from __future__ import annotations

import time
from typing import Any

import jwt
from jwt.types import Options

Claims = dict[str, Any]
_ALGORITHMS = ["HS256"]
_HEADERS = {"kid": "emulator"}


class TokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _expired() -> TokenError:
    return TokenError(
        "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time."
    )


class TokenService:
    def __init__(self, key: bytes, lifetime: float = 3600.0) -> None:
        self._key = key
        self.lifetime = lifetime
        # Verified signatures, so a hot read path does one dict lookup instead of an HMAC + JSON parse.
        self._cache: dict[str, Claims] = {}

    def issue(self, claims: Claims) -> tuple[str, int]:
        issued = int(time.time())
        body = {**claims, "iat": issued, "nbf": issued - 1, "exp": issued + int(self.lifetime)}
        return jwt.encode(body, self._key, algorithm="HS256", headers=_HEADERS), int(self.lifetime)

    def verify(self, token: str) -> Claims:
        """Return the claims, or raise TokenError with the ARM error code."""
        claims = self._cache.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = claims
        # Checked on every use: a cached token expires too.
        if float(claims.get("exp", 0)) <= time.time():
            raise _expired()
        return claims

    def _decode(self, token: str) -> Claims:
        # The audience is ARM's check (arm_access.authenticate), with ARM's own error code.
        options: Options = {"verify_aud": False, "require": ["exp"]}
        try:
            claims: Claims = jwt.decode(token, self._key, algorithms=_ALGORITHMS, options=options)
        except jwt.ExpiredSignatureError:
            raise _expired() from None
        except jwt.InvalidSignatureError:
            raise TokenError(
                "AuthenticationFailed", "Authentication failed. The access token signature is invalid."
            ) from None
        except jwt.InvalidTokenError:
            raise TokenError(
                "AuthenticationFailed", "Authentication failed. The access token is malformed."
            ) from None
        return claims


def unverified_claims(token: str) -> Claims | None:
    """Read a JWT's payload without checking it (client assertions: not emulated beyond shape)."""
    try:
        claims: Claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return claims
