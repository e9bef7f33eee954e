"""Authentication: the same JWTs PostgREST accepts, ``exp`` required, ``aud`` when JWT_AUDIENCE
is set, ``role`` = ``authenticated``:

* development tokens: HS256 with JWT_SECRET, ``sub`` = the app_users id;
* the identity provider's tokens: RS256 or ES256, verified with the key of their ``kid`` in the
  provider's JWKS (JWT_JWKS_URL, fetched and cached for JWT_JWKS_CACHE_SECONDS and fetched again
  for a kid it does not know, at most every JWT_JWKS_REFETCH_SECONDS, so keys rotate without a
  restart; or JWT_JWKS_FILE), ``iss`` =
  JWT_ISSUER, the role in JWT_ROLE_CLAIM. The database links their (iss, sub) to a login.

An asymmetric token is never checked with the shared secret, nor an HS256 token with a public
key (the ``alg`` decides the path, and each path accepts only its own algorithms), and ``none``
is never accepted.

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


ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")


class Authenticator:
    """Checks tokens (shared secret or the provider's JWKS); answers the claims to act with."""

    def __init__(
        self,
        secret: str,
        audience: str | None = None,
        *,
        jwks_url: str | None = None,
        jwks_file: str | None = None,
        issuer: str | None = None,
        role_claim: str = "role",
        jwks_cache_seconds: int = 300,
        jwks_refetch_seconds: float = 30,
    ) -> None:
        self._secret = secret
        self._audience = audience
        self._issuer = issuer
        self._role_claim = role_claim
        self._jwks_client: jwt.PyJWKClient | None = None
        self._jwks_set: jwt.PyJWKSet | None = None
        if jwks_url:
            self._jwks_client = jwt.PyJWKClient(
                jwks_url,
                cache_jwk_set=True,
                lifespan=jwks_cache_seconds,
                timeout=5,
                cooldown_duration=jwks_refetch_seconds,
            )
        elif jwks_file:
            with open(jwks_file, encoding="utf-8") as fh:
                self._jwks_set = jwt.PyJWKSet.from_json(fh.read())

    def _public_key(self, header: Mapping[str, Any]) -> Any:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthorized("the token names no key (kid)")
        try:
            if self._jwks_client is not None:
                return self._jwks_client.get_signing_key(kid).key
            assert self._jwks_set is not None
            return self._jwks_set[kid].key
        except (KeyError, jwt.PyJWKClientError, jwt.PyJWKSetError):
            raise _unauthorized(
                f"the token's key {kid!r} is not one of the identity provider's keys",
                "Sign in again; if it persists, the provider's JWKS is not the one configured.",
            ) from None

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
        alg = header.get("alg")
        asymmetric = alg in ASYMMETRIC_ALGORITHMS and (
            self._jwks_client is not None or self._jwks_set is not None
        )
        if alg != "HS256" and not asymmetric:
            raise _unauthorized(f"tokens signed with {alg!r} are not accepted")
        try:
            if asymmetric:
                options["require"] = ["exp", "sub", "iss"]
                claims: dict[str, Any] = jwt.decode(
                    token,
                    self._public_key(header),
                    algorithms=[str(alg)],
                    audience=self._audience,
                    issuer=self._issuer,
                    options=options,
                    leeway=CLOCK_SKEW_SECONDS,
                )
            else:
                claims = jwt.decode(
                    token,
                    self._secret,
                    algorithms=["HS256"],
                    audience=self._audience,
                    options=options,
                    leeway=CLOCK_SKEW_SECONDS,
                )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _unauthorized("the token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("the token comes from another issuer (iss)") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("the token is not meant for this service (aud)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("the token's signature is not valid") from None
        except jwt.PyJWTError:
            raise _unauthorized("the token is not valid") from None
        role = claims.get(self._role_claim if asymmetric else "role")
        if role != "authenticated":
            raise _unauthorized(
                f"the token's role must be 'authenticated', not {role!r}",
                "Use a token made for a signed-in user.",
            )
        if asymmetric:
            if not isinstance(claims.get("sub"), str) or not claims["sub"]:
                raise _unauthorized("the token's sub claim is empty")
        elif not isinstance(claims.get("sub"), str) or not _UUID.match(claims["sub"]):
            raise _unauthorized("the token's sub claim is not a user id")
        elif "iss" in claims:
            raise _unauthorized(
                "a development token (HS256) may not carry an issuer",
                "Identity-provider tokens are signed with RS256 or ES256.",
            )
        return claims


def request_token(headers: Mapping[str, str]) -> str | None:
    """The bearer token of an HTTP request's headers."""
    return bearer_from_authorization(headers.get("authorization"))
