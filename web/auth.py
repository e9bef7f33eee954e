"""Authentication: the same JWT PostgREST accepts (HS256, JWT_SECRET, ``exp`` required, ``aud``
when JWT_AUDIENCE is set, ``role`` = ``authenticated``).

The token only says who the caller claims to be. Whether that user exists and is active is
decided by the database (``app.pre_request()`` in every transaction the app opens as the
caller), and what the user may read by row-level security.

Where the token comes from:
    HTTP       ``Authorization: Bearer <jwt>``
    WebSocket  ``Sec-WebSocket-Protocol: bearer, <jwt>`` (browsers cannot set headers on a
               WebSocket; the server answers with the sub-protocol ``bearer``), or
               ``Authorization: Bearer <jwt>`` for other clients. Never the URL: it ends up
               in logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jwt
import jwt.types

from web.errors import WebError

__all__ = [
    "BEARER_SUBPROTOCOL",
    "Authenticator",
    "bearer_from_authorization",
    "bearer_from_subprotocols",
]

BEARER_SUBPROTOCOL = "bearer"
#: PostgREST allows 30 seconds of clock skew on exp/nbf/iat; so do we.
CLOCK_SKEW_SECONDS = 30
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _unauthorized(message: str, hint: str = "Sign in again to get a new token.") -> WebError:
    return WebError(
        401, message, {"hint": hint}, headers={"WWW-Authenticate": 'Bearer realm="compliance"'}
    )


def bearer_from_authorization(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <jwt>`` header, or None when there is none."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def bearer_from_subprotocols(offered: list[str]) -> str | None:
    """The token offered as ``Sec-WebSocket-Protocol: bearer, <jwt>``, or None."""
    items = [item.strip() for item in offered if item.strip()]
    if BEARER_SUBPROTOCOL not in items:
        return None
    position = items.index(BEARER_SUBPROTOCOL)
    if position + 1 >= len(items):
        raise _unauthorized("the sub-protocol 'bearer' must be followed by the token")
    return items[position + 1]


class Authenticator:
    """Checks tokens with the shared secret; answers the claims to act with."""

    def __init__(self, secret: str, audience: str | None = None) -> None:
        self._secret = secret
        self._audience = audience

    def claims(self, token: str | None) -> dict[str, Any]:
        """The verified claims of ``token``; :class:`WebError` 401 when it is not acceptable."""
        if token is None:
            raise _unauthorized(
                "a token is required", "Send 'Authorization: Bearer <token>' (see README)."
            )
        options: jwt.types.Options = {
            "require": ["exp", "sub"],
            "verify_aud": bool(self._audience),
        }
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized("the token is malformed") from None
        if header.get("alg") != "HS256":
            raise _unauthorized(f"tokens signed with {header.get('alg')!r} are not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=self._audience,
                options=options,
                leeway=CLOCK_SKEW_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("the token is not meant for this service (aud)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("the token's signature is not valid") from None
        except jwt.PyJWTError:
            raise _unauthorized("the token is not valid") from None
        role = claims.get("role")
        if role != "authenticated":
            raise _unauthorized(
                f"the token's role must be 'authenticated', not {role!r}",
                "Use a token made for a signed-in user.",
            )
        if not isinstance(claims.get("sub"), str) or not _UUID.match(claims["sub"]):
            raise _unauthorized("the token's sub claim is not a user id")
        return claims


def request_token(headers: Mapping[str, str]) -> str | None:
    """The bearer token of an HTTP request's headers."""
    return bearer_from_authorization(headers.get("authorization"))
