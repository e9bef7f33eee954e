"""Identity figures (issue 15): the pre-request look-up's plan, and the cost of verifying an
identity provider's token against a cached JWKS next to an HS256 token, in the same run.

1. The plan: EXPLAIN of the statement app.pre_request() runs to find the login of a token of
   an identity provider (identity_links joined with app_users by (issuer, subject)) and of a
   development token (app_users by id), with 10,000 users and links, after ANALYZE.
2. The verification: web.auth.Authenticator.claims() — what a web request adds for its token —
   timed for an HS256 token and for an RS256 and an ES256 token whose key comes from the
   PyJWKClient's cache (a local JWKS server, fetched once). Everything else a web request does
   is the same for both kinds of token, so the difference is the added cost per request.

    python bench/identity.py [--rounds 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median
from typing import Any

import jwt
import psycopg
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._cluster import scratch_database
from bench.web_common import machine
from compliance.migrate import migrate
from web.auth import Authenticator

SECRET = "bench-secret-for-the-web-app-0123456789abcdef"  # noqa: S105 - a throwaway value
ISSUER = "https://idp.bench/"
AUDIENCE = "compliance-api"


def plans(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        org = conn.execute(
            "select (app.create_organization('Bench', 'bench', 'UTC', 'root@bench.test')"
            " ->> 'organizationId')::uuid"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "insert into app.app_users (org_id, email, display_name, app_role)"
            " select %s, 'u' || i || '@bench.test', 'U' || i, 'viewer'"
            " from generate_series(1, 10000) i",
            [org],
        )
        conn.execute(
            "insert into app.identity_links (org_id, issuer, subject, user_id)"
            " select org_id, %s, 'sub-' || email, id from app.app_users where org_id = %s",
            [ISSUER, org],
        )
        conn.execute("analyze app.app_users; analyze app.identity_links")
        user = conn.execute(
            "select id from app.app_users where email = 'u5000@bench.test'"
        ).fetchone()[0]  # type: ignore[index]
        for label, query, params in [
            (
                "identity provider token (iss, sub)",
                "select u.* from app.identity_links l join app.app_users u"
                " on u.org_id = l.org_id and u.id = l.user_id"
                " where l.issuer = %s and l.subject = %s",
                [ISSUER, "sub-u5000@bench.test"],
            ),
            (
                "development token (sub = id)",
                "select * from app.app_users u where u.id = %s",
                [user],
            ),
        ]:
            rows = conn.execute(
                "explain (analyze, costs off, timing off, summary off) " + query, params
            ).fetchall()
            print(f"plan of the pre-request look-up, {label}, 10,000 users:")
            for (line,) in rows:
                print("    " + line)


class _Jwks:
    def __init__(self, keys: dict[str, Any]) -> None:
        body = json.dumps({"keys": [self._jwk(kid, key) for kid, key in keys.items()]}).encode()
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    @staticmethod
    def _jwk(kid: str, key: Any) -> dict[str, Any]:
        if isinstance(key, rsa.RSAPrivateKey):
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        else:
            jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        jwk["kid"] = kid
        return dict(jwk)


def timing(rounds: int) -> None:
    keys: dict[str, Any] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }
    server = _Jwks(keys)
    auth = Authenticator(SECRET, AUDIENCE, jwks_url=server.url, issuer=ISSUER)
    now = int(time.time())
    base = {"aud": AUDIENCE, "role": "authenticated", "iat": now, "exp": now + 3600}
    tokens = {
        "HS256 (JWT_SECRET)": jwt.encode({**base, "sub": str(uuid.uuid4())}, SECRET, "HS256"),
        "RS256 (JWKS, 2048-bit)": jwt.encode(
            {**base, "iss": ISSUER, "sub": "s"}, keys["rsa"], "RS256", headers={"kid": "rsa"}
        ),
        "ES256 (JWKS, P-256)": jwt.encode(
            {**base, "iss": ISSUER, "sub": "s"}, keys["ec"], "ES256", headers={"kid": "ec"}
        ),
    }
    for token in tokens.values():
        auth.claims(token)  # warm: the JWKS is fetched once here
    passes: dict[str, list[float]] = {label: [] for label in tokens}
    for _ in range(3):  # interleaved passes; each kind's figure is the median of its pass medians
        for label, token in tokens.items():
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                auth.claims(token)
                samples.append(time.perf_counter() - start)
            passes[label].append(median(samples))
    hs = median(passes["HS256 (JWT_SECRET)"])
    print(
        f"\ntoken verification per web request (Authenticator.claims), {rounds} calls x 3 passes,"
        f" JWKS fetched {server.fetches} time(s):"
    )
    for label, values in passes.items():
        value = median(values)
        print(
            f"    {label:<24} median {value * 1e3:.3f} ms"
            f"   added vs HS256 {(value - hs) * 1e3:+.3f} ms"
        )
    server.server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()
    print(machine())
    with scratch_database("bench_identity") as (dsn, where):
        print(where)
        migrate(dsn)
        plans(dsn)
    timing(args.rounds)


if __name__ == "__main__":
    main()
