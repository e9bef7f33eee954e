"""Access follows employment, end to end: when HR (or a sync) terminates a manager, the
manager's open WebSocket is closed (4401) without anyone else having to act, and their next
request, to the web app or as PostgREST makes it, is refused."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from compliance.db import ApiError
from tests.conftest import ApiHarness
from tests.web.conftest import WebServer, make_token
from tests.web.world import World
from tests.web.wsclient import Stream, stream_for

pytestmark = pytest.mark.e2e


def test_a_terminated_manager_is_signed_out_everywhere(
    web_server: WebServer, world: World, dsn: str, api: ApiHarness
) -> None:
    org = world.a.id
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as su:
        emp = su.execute(
            "select tests.create_employee(%s, %s) as id", [org, f"mgr-{tag}@web.test"]
        ).fetchone()
        assert emp is not None
        user = su.execute(
            "select tests.create_user(%s, 'manager', %s, %s) as id",
            [org, f"mgr-{tag}@web.test", emp["id"]],
        ).fetchone()
        assert user is not None
        hr = world.a.users["hr_admin"]
        # the manager reads staff records while employed
        assert api.call(user["id"], "select id from api.employees limit 1", method="GET")

        async def scenario() -> Stream:
            stream = await stream_for(web_server, user["id"])
            # HR terminates them through the API, as PostgREST runs the request.
            api.call(
                hr,
                "update api.employees set status = 'terminated' where id = %s",
                [emp["id"]],
                method="PATCH",
                path="/employees",
            )
            await stream.until(lambda m: m["type"] == "error", 10)
            await stream.next(timeout=5)
            return stream

        stream = asyncio.run(scenario())
        active = su.execute(
            "select active from app.app_users where id = %s", [user["id"]]
        ).fetchone()
    assert active == {"active": False}
    assert any(m.get("code") == "UNAUTHORIZED" for m in stream.messages), stream.messages
    assert stream.closed_code == 4401
    response = httpx.get(
        web_server.base + "/presence",
        headers={"Authorization": f"Bearer {make_token(user['id'])}"},
    )
    assert response.status_code == 401, response.text
    with pytest.raises(ApiError) as refused:
        api.call(user["id"], "select id from api.employees limit 1", method="GET")
    assert refused.value.sqlstate == "PT403"
    assert "deactivated" in (refused.value.detail or "")
