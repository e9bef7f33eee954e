"""Sign-in through the organisation's identity provider: RS256 and ES256 tokens verified against
a real local JWKS server (keys generated here, rotated mid-test), issuer and audience checked;
the first sign-in of an invited user links the token's (iss, sub) by verified e-mail, once; and
every negative the issue lists is refused."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from psycopg.rows import dict_row

from compliance.db import ApiError
from tests.conftest import ApiHarness
from tests.web.conftest import SECRET, WebServer

pytestmark = pytest.mark.e2e

ISSUER = "https://idp.test/realms/clinic"
AUDIENCE = "compliance-api"


class Jwks:
    """A JWKS endpoint on 127.0.0.1 serving whatever keys it currently holds."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}  # kid -> private key
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": [jwks.public_jwk(kid) for kid in jwks.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def add_rsa(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def add_ec(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def public_jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        if isinstance(key, rsa.RSAPrivateKey):
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            jwk["alg"] = "RS256"
        else:
            jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
            jwk["alg"] = "ES256"
        jwk.update(kid=kid, use="sig")
        return dict(jwk)

    def token(self, kid: str, sub: str, **claims: Any) -> str:
        key = self.keys[kid]
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "role": "authenticated",
            "iat": now,
            "exp": now + 600,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    server.add_rsa("rsa-1")
    server.add_ec("ec-1")
    try:
        yield server
    finally:
        server.close()


def _get(server: WebServer, token: str) -> httpx.Response:
    return httpx.get(server.base + "/presence", headers={"Authorization": f"Bearer {token}"})


def test_provider_tokens_sign_in_and_the_negatives_are_refused(
    start_web: Any, jwks: Jwks, dsn: str, api: ApiHarness
) -> None:
    tag = uuid.uuid4().hex[:8]
    issuer_org = f"idp-{tag}"
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as su:
        org = su.execute(
            "select (app.create_organization(%s, %s, 'America/Detroit', %s)"
            " ->> 'organizationId')::uuid as id",
            [f"IdP Clinic {tag}", issuer_org, f"root@{issuer_org}.test"],
        ).fetchone()
        assert org is not None
        su.execute(
            "update app.organizations set identity_issuer = %s where id = %s", [ISSUER, org["id"]]
        )
        other = su.execute("select tests.create_org(%s) as id", [f"idp-other-{tag}"]).fetchone()
        assert other is not None
        hr_email = f"hr@{issuer_org}.test"
        hr = su.execute(
            "select tests.create_user(%s, 'hr_admin', %s) as id", [org["id"], hr_email]
        ).fetchone()
        assert hr is not None
        stranger = su.execute(
            "select tests.create_user(%s, 'hr_admin', %s) as id",
            [other["id"], f"hr@idp-other-{tag}.test"],
        ).fetchone()
        assert stranger is not None
        # a subject already linked to the other organisation's user
        su.execute(
            "insert into app.identity_links (org_id, issuer, subject, user_id)"
            " values (%s, %s, %s, %s)",
            [other["id"], ISSUER, f"sub-other-{tag}", stranger["id"]],
        )
    server: WebServer = start_web(
        jwt_jwks_url=jwks.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_cache_seconds=600,
        jwt_jwks_refetch_seconds=0,
    )
    sub = f"kc-{tag}"

    # First sign-in of the invited HR admin, RS256, by verified e-mail: linked once (POST).
    first = jwks.token("rsa-1", sub, email=hr_email, email_verified=True)
    claims = jwt.decode(first, options={"verify_signature": False})
    assert api.one(claims, "select app.current_user_id() as id")["id"] == hr["id"]
    with psycopg.connect(dsn, row_factory=dict_row) as su:
        links = su.execute(
            "select user_id from app.identity_links where issuer = %s and subject = %s",
            [ISSUER, sub],
        ).fetchall()
    assert links == [{"user_id": hr["id"]}]
    response = _get(server, first)
    assert response.status_code == 200, response.text
    # Later tokens of the same subject need no e-mail; ES256 keys work too.
    assert _get(server, jwks.token("ec-1", sub)).status_code == 200

    # Rotation: the provider adds a key mid-test; the web app fetches the JWKS again for it.
    fetches = jwks.fetches
    jwks.add_rsa("rsa-2")
    assert _get(server, jwks.token("rsa-2", sub)).status_code == 200
    assert jwks.fetches == fetches + 1

    # The web app's negatives: each a 401 with the reason.
    public_pem = (
        jwks.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = int(time.time())
    unsigned = jwt.encode(
        {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "role": "authenticated", "exp": now + 600},
        None,
        algorithm="none",
    )
    negatives = {
        "the token comes from another issuer": jwks.token("rsa-1", sub, iss="https://evil.test/"),
        "the token is not meant for this service": jwks.token("rsa-1", sub, aud="someone-else"),
        "the token has expired": jwks.token("rsa-1", sub, iat=now - 7200, exp=now - 3600),
        "the token is not valid yet": jwks.token("rsa-1", sub, nbf=now + 3600),
        "tokens signed with 'none' are not accepted": unsigned,
        "the token's signature is not valid": _hs256_with(public_pem, hr["id"]),
    }
    # an unknown kid: a token signed by a key the provider never published
    rogue = Jwks()
    try:
        rogue.add_rsa("rogue-1")
        negatives["the token's key 'rogue-1' is not one of the identity provider's keys"] = (
            rogue.token("rogue-1", sub)
        )
    finally:
        rogue.close()
    for reason, token in negatives.items():
        refused = _get(server, token)
        assert refused.status_code == 401, (reason, refused.text)
        assert refused.json()["error"]["message"].startswith(reason), (reason, refused.json())

    # The database's negatives, as PostgREST runs a request with such claims.
    def refused_by_db(claims: dict[str, Any]) -> ApiError:
        with pytest.raises(ApiError) as caught:
            api.call(claims, "select app.current_org_id()")
        return caught.value

    base = {"iss": ISSUER, "aud": AUDIENCE, "role": "authenticated"}
    unverified = refused_by_db(
        {**base, "sub": f"new-{tag}", "email": hr_email, "email_verified": False}
    )
    assert unverified.sqlstate == "PT401"
    assert "not verified" in (unverified.detail or "")
    # linking happens once: another subject with the same verified e-mail does not take it over
    twice = refused_by_db(
        {**base, "sub": f"second-{tag}", "email": hr_email, "email_verified": True}
    )
    assert twice.sqlstate == "PT401"
    # a subject linked to another organisation's user acts in that organisation only
    rows = api.call({**base, "sub": f"sub-other-{tag}"}, "select app.current_org_id() as org")
    assert rows == [{"org": other["id"]}]
    # a subject linked to a deactivated user is refused
    with psycopg.connect(dsn, autocommit=True) as su:
        su.execute("update app.app_users set active = false where id = %s", [hr["id"]])
    gone = refused_by_db({**base, "sub": sub})
    assert gone.sqlstate == "PT403"
    assert _get(server, jwks.token("rsa-1", sub)).status_code == 401


def _hs256_with(public_pem: bytes, user: Any) -> str:
    """HS256 signed with the provider's PUBLIC key as the secret (the algorithm-confusion
    attack): the web app checks HS256 only with its own secret."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(
        json.dumps(
            {"sub": str(user), "role": "authenticated", "exp": int(time.time()) + 600}
        ).encode()
    )
    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert public_pem != SECRET.encode()
    return f"{header}.{body}.{b64(signature)}"
