"""/schema is the truth: every route is in it with every answer it can give (the real error
envelope as the schema), bearer security, typed parameters; HEAD on the exports; CORS exposes
Retry-After; a refused WebSocket handshake is one INFO access line; and schemathesis, run
against the real server's /schema with and without a token, finds no answer that contradicts it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any, get_args

import httpx
import hypothesis
import jsonschema
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from websockets.exceptions import InvalidStatus

from tests.billing.conftest import BillingOrg, billing_org, billing_server, fake_stripe
from tests.fakes.stripe import FakeStripe
from tests.web.conftest import ALLOWED_ORIGIN, WebServer, make_token
from tests.web.world import World
from tests.web.wsclient import open_ws
from web.errors import CODES
from web.openapi import ErrorCode

pytestmark = pytest.mark.e2e

EXPORTS = (
    "/export/compliance.csv",
    "/export/compliance.xlsx",
    "/export/compliance.pdf",
    "/export/audit.csv",
)
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


@pytest.fixture(scope="module")
def document(web_server: WebServer) -> dict[str, Any]:
    response = httpx.get(web_server.base + "/schema/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "head", "post", "put", "patch", "delete")
    ]


# -- what the document says ---------------------------------------------------------------------


def test_every_route_of_the_app_is_documented(
    web_server: WebServer, document: dict[str, Any]
) -> None:
    app = web_server.server.config.app
    served: set[tuple[str, str]] = set()
    for route in app.routes:  # type: ignore[union-attr]
        methods = getattr(route, "methods", None) or {"GET"}  # a WebSocket route: GET + upgrade
        for method in methods:
            if method != "OPTIONS" and not route.path.startswith("/schema"):
                # the document names path parameters without their type: {file:str} -> {file}
                served.add((re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method.lower()))
    documented = {(path, method) for path, method, _ in _operations(document)}
    assert served == documented
    for path in EXPORTS:
        assert {"get", "head"} <= set(document["paths"][path]), path
    assert "/ws" in document["paths"]


def test_errors_are_documented_with_the_real_envelope(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    envelope = schemas["ErrorEnvelope"]
    assert set(envelope["required"]) == {"success", "error"}
    assert envelope["properties"]["success"] == {"type": "boolean", "const": False}
    detail = schemas["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "details"}
    assert set(detail["properties"]["code"]["enum"]) == set(CODES.values())
    assert set(get_args(ErrorCode)) == set(CODES.values())
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        errors = [status for status in responses if status.startswith(("4", "5"))]
        assert errors, (path, method)
        for status in errors:
            content = responses[status].get("content")
            if method == "head":
                assert content is None, (path, status)  # HEAD answers carry no body
            elif (path, status) != ("/ws", "400"):  # the server's own text for a bad handshake
                assert content["application/json"]["schema"] == ENVELOPE, (path, method, status)
        # Litestar's own 400 body ({"status_code", "detail", "extra"}) is nowhere
        assert "status_code" not in str(responses)


def test_every_answer_an_export_can_give_is_documented(document: dict[str, Any]) -> None:
    for path in EXPORTS:
        get = document["paths"][path]["get"]
        assert set(get["responses"]) == {"200", "400", "401", "403", "429", "500", "503"}
        assert len(get["responses"]["200"]["content"]) == 1
        assert "Content-Disposition" in get["responses"]["200"]["headers"]
        assert "Retry-After" in get["responses"]["429"]["headers"]
        assert "WWW-Authenticate" in get["responses"]["401"]["headers"]
        head = document["paths"][path]["head"]
        assert set(head["responses"]) == {"200", "400", "401", "403", "500", "503"}
        assert head["parameters"] == get["parameters"]
    media = {
        path: next(iter(document["paths"][path]["get"]["responses"]["200"]["content"]))
        for path in EXPORTS
    }
    assert media["/export/compliance.csv"].startswith("text/csv")
    assert media["/export/compliance.pdf"] == "application/pdf"
    assert media["/export/compliance.xlsx"].endswith("spreadsheetml.sheet")


def test_bearer_security_is_declared_and_applied(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    for path, method, operation in _operations(document):
        needs_token = path not in ("/health", "/webhooks/stripe")
        assert (operation.get("security") == [{"bearer": []}]) is needs_token, (path, method)
        if needs_token:
            assert "401" in operation["responses"], (path, method)


def test_parameters_carry_enums_and_formats(document: dict[str, Any], dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select enum_range(null::app.assignment_status)::text[]").fetchone()
    assert row is not None
    statuses = row[0]

    def parameters(path: str) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}

    for path in EXPORTS:
        params = parameters(path)
        for name in ("from", "to"):
            assert params[name]["schema"]["format"] == "date", (path, name)
            assert params[name]["in"] == "query"
        for name in ("department", "location"):
            assert params[name]["schema"]["type"] == "string"  # an id or a name
        if path.endswith(".csv"):
            assert params["excel"]["schema"]["enum"] == ["1", "0", "true", "false"]
        else:
            assert "excel" not in params
        if path == "/export/audit.csv":
            assert params["employee"]["schema"]["format"] == "uuid"
            assert "status" not in params
        else:
            assert params["status"]["schema"]["enum"] == statuses


def test_json_answers_have_their_bodies(document: dict[str, Any], dsn: str) -> None:
    schemas = document["components"]["schemas"]
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select enum_range(null::app.app_role)::text[]").fetchone()
    assert row is not None
    assert schemas["PresentUser"]["properties"]["app_role"]["enum"] == row[0]
    for path, method, name in (
        ("/presence", "get", "Presence"),
        ("/health", "get", "Health"),
        ("/billing/checkout", "post", "StripeSession"),
        ("/billing/portal", "post", "StripeSession"),
        ("/webhooks/stripe", "post", "WebhookReceipt"),
    ):
        ok = document["paths"][path][method]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{name}"
        }, path


def _matches(document: dict[str, Any], response: httpx.Response, path: str, method: str) -> None:
    """``response`` is one the document describes for ``method path``: its status, its body."""
    documented = document["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (path, response.status_code)
    schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(
        response.json(),
        {**schema, "components": document["components"]},
        cls=jsonschema.Draft202012Validator,
    )


__all__ = ["billing_org", "billing_server", "fake_stripe"]  # fixtures of tests/billing


def test_billing_answers_are_the_documented_ones(
    billing_server: WebServer,
    billing_org: BillingOrg,
    fake_stripe: FakeStripe,
) -> None:
    document = httpx.get(billing_server.base + "/schema/openapi.json").json()
    token = make_token(billing_org.superadmin)
    checkout = httpx.post(
        billing_server.base + "/billing/checkout",
        json={"price_id": "price_team"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert checkout.status_code == 200, checkout.text
    _matches(document, checkout, "/billing/checkout", "post")
    events = fake_stripe.complete_checkout(checkout.json()["id"])
    for event in [*events, events[0]]:  # each applied, then a redelivery: duplicate
        receipt = fake_stripe.deliver(event)
        assert receipt.status_code == 200, receipt.text
        _matches(document, receipt, "/webhooks/stripe", "post")
    assert receipt.json()["outcome"] == "duplicate"
    portal = httpx.post(
        billing_server.base + "/billing/portal",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert portal.status_code == 200, portal.text
    _matches(document, portal, "/billing/portal", "post")
    refused = httpx.post(
        billing_server.base + "/billing/checkout",
        json={"price_id": "price_team"},
        headers={"Authorization": f"Bearer {make_token(billing_org.hr_admin)}"},
    )
    assert refused.status_code == 403
    _matches(document, refused, "/billing/checkout", "post")


def test_ws_is_documented_as_the_websocket(document: dict[str, Any]) -> None:
    operation = document["paths"]["/ws"]["get"]
    assert set(operation["responses"]) == {"101", "400", "401", "403", "426", "503"}
    description = operation["description"]
    for said in (
        "Upgrade: websocket",
        "Sec-WebSocket-Protocol: bearer, <jwt>",
        '"type": "welcome"',
        '"type": "resume"',
        '"type": "events"',
        '"type": "resync_required"',
        "4401",
        "1013",
        "1011",
    ):
        assert said in description, said
    assert "Upgrade" in operation["responses"]["426"]["headers"]


def test_checkout_body_is_documented(document: dict[str, Any]) -> None:
    body = document["paths"]["/billing/checkout"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["required"] == ["price_id"]
    assert schema["properties"]["quantity"]["maximum"] == 1000


# -- HEAD, plain GET /ws, CORS ---------------------------------------------------------------


def _export_events(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select count(*) from audit.log where event_type = 'compliance_export'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_head_on_an_export_checks_and_names_without_exporting(
    web_server: WebServer, world: World, dsn: str
) -> None:
    token = make_token(world.a.users["hr_admin"])
    auth = {"Authorization": f"Bearer {token}"}
    for path in EXPORTS:
        query = "?from=2020-01-01" if path == "/export/audit.csv" else "?status=overdue"
        if path.endswith(".csv"):
            query += "&excel=1"  # the CSV exports' option: HEAD takes what the GET takes
        before = _export_events(dsn)
        head = httpx.head(web_server.base + path + query, headers=auth)
        assert head.status_code == 200, (path, head.headers)
        assert head.content == b""
        assert _export_events(dsn) == before, path  # nothing exported, nothing audited
        got = httpx.get(web_server.base + path + query, headers=auth)
        assert got.status_code == 200
        assert _export_events(dsn) == before + 1
        for header in ("content-type", "content-disposition", "cache-control"):
            assert head.headers[header] == got.headers[header], (path, header)
        assert head.headers.get("content-length") != "0"  # not the file's length: none said

    # the same refusals as the GET, without bodies
    before = _export_events(dsn)
    refused = httpx.head(web_server.base + "/export/compliance.csv")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    bad = httpx.head(web_server.base + "/export/compliance.csv?status=late", headers=auth)
    assert bad.status_code == 400
    assert bad.content == b""
    unknown = httpx.head(
        web_server.base + "/export/compliance.csv?department=No Such Department", headers=auth
    )
    assert unknown.status_code == 400
    assert _export_events(dsn) == before


def test_head_takes_no_export_slot(start_web: Callable[..., WebServer], world: World) -> None:
    server = start_web(web_export_max_per_user=1)
    token = make_token(world.a.users["hr_admin"])
    auth = {"Authorization": f"Bearer {token}"}
    server.state.limiter.acquire(str(world.a.users["hr_admin"]))  # an export of this user runs
    try:
        busy = httpx.get(server.base + "/export/compliance.csv", headers=auth)
        assert busy.status_code == 429
        assert busy.headers["retry-after"].isdigit()
        assert httpx.head(server.base + "/export/compliance.csv", headers=auth).status_code == 200
    finally:
        server.state.limiter.release(str(world.a.users["hr_admin"]))


def test_plain_http_to_ws_is_426_in_the_envelope(web_server: WebServer) -> None:
    response = httpx.get(web_server.base + "/ws")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    body = response.json()
    assert body["success"] is False
    assert "WebSocket" in body["error"]["message"]


def test_cors_exposes_retry_after_and_content_disposition(
    web_server: WebServer, world: World
) -> None:
    token = make_token(world.a.users["viewer"])
    response = httpx.get(
        web_server.base + "/export/compliance.csv",
        headers={"Origin": ALLOWED_ORIGIN, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    exposed = response.headers["access-control-expose-headers"].lower().replace(" ", "")
    assert set(exposed.split(",")) >= {"retry-after", "content-disposition"}
    preflight = httpx.options(
        web_server.base + "/export/compliance.csv",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "HEAD",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code in (200, 204)
    assert "HEAD" in preflight.headers["access-control-allow-methods"]


# -- a refused handshake is one INFO line ---------------------------------------------------------


def test_a_refused_handshake_is_one_info_access_line(
    web_server: WebServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def refused(**kwargs: Any) -> int:
        with pytest.raises(InvalidStatus) as caught:
            await open_ws(web_server, **kwargs)
        return caught.value.response.status_code

    with caplog.at_level(logging.DEBUG):
        caplog.clear()
        assert asyncio.run(refused(token=None)) == 401
        assert asyncio.run(refused(token="not-a-jwt")) == 401
        assert asyncio.run(refused(token=None, origin="http://evil.test")) == 403
        time.sleep(0.3)  # the server thread logs after the client has its answer
    server_records = [
        r
        for r in caplog.records
        if r.name.startswith(("uvicorn", "web", "websockets")) and r.levelno >= logging.INFO
    ]
    assert not [r for r in server_records if r.levelno >= logging.WARNING], [
        (r.name, r.getMessage()) for r in server_records
    ]
    lines = [r.getMessage() for r in server_records]
    assert len(lines) == 3, lines
    assert all(r.name == "web.access" for r in server_records), lines
    assert lines[0].startswith("WS /ws 401 ")
    assert lines[0].endswith(": a token is required")
    assert lines[1].startswith("WS /ws 401 ")
    assert lines[2].startswith("WS /ws 403 ")
    assert "http://evil.test" in lines[2]


# -- schemathesis against the running server ------------------------------------------------------

CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _run_schemathesis(
    server: WebServer, headers: dict[str, str], examples: int
) -> tuple[list[str], dict[str, set[int]]]:
    """Every operation of /schema, ``examples`` generated cases each (derandomized), positive
    and negative data (where an operation takes any); the problems found, as lines, and the
    statuses seen per operation."""
    schema = schemathesis.openapi.from_url(server.base + "/schema/openapi.json")
    problems: list[str] = []
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        seen = statuses.setdefault(label, set())
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=server.base, headers=headers, timeout=30)
                seen.add(response.status_code)  # noqa: B023 - run() runs within the loop
                assert response.status_code != 500, response.text[:300]
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # nothing to make invalid: no parameters and no body (GET /health)
                assert mode is schemathesis.GenerationMode.NEGATIVE, label
            except Exception as failure:  # every operation's verdict is collected
                problems.append(f"{label} ({mode.value}): {str(failure)[:1500]}")
    return problems, statuses


def test_schemathesis_finds_nothing_contradicting_the_schema(
    web_server: WebServer, world: World
) -> None:
    without, anonymous = _run_schemathesis(web_server, {}, examples=8)
    token = make_token(world.a.users["hr_admin"])
    with_token, signed_in = _run_schemathesis(
        web_server, {"Authorization": f"Bearer {token}"}, examples=20
    )
    assert not without + with_token, "\n\n".join(without + with_token)
    # the runs reached what they were meant to: refusals without a token, files with one
    assert set(anonymous) == set(signed_in)
    assert len(anonymous) >= 13, sorted(anonymous)
    for path in EXPORTS:
        assert 401 in anonymous[f"GET {path}"], anonymous[f"GET {path}"]
        assert 200 not in anonymous[f"GET {path}"]
        assert 200 in signed_in[f"GET {path}"], signed_in[f"GET {path}"]
        assert 200 in signed_in[f"HEAD {path}"], signed_in[f"HEAD {path}"]
    assert anonymous["GET /ws"] == {426}
    assert 200 in signed_in["GET /presence"]
