"""The error contract: README's error table names every SQLSTATE a caller gets, with the HTTP
status PostgREST answers for it.

- every code the table lists maps, by PostgREST's rules (compliance.db.http_status_for, which
  follows mapSQLtoHTTP), to the status the table states;
- the codes PostgreSQL raises while PostgREST turns a JSON body into a function's arguments (a
  number out of range, a malformed or impossible date, a bad zone offset, a NUL byte) are
  raised by a real call and listed, as 400.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import DictRow

from compliance.db import ApiError, http_status_for
from tests.conftest import ApiHarness
from tests.engine.world import build_engine_world, unique_slug

README = Path(__file__).resolve().parents[1] / "README.md"


def error_table() -> dict[str, int]:
    """README's "Error codes" table: SQLSTATE -> HTTP status (the first number of the cell)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    table: dict[str, int] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        status = re.match(r"\d{3}", cells[1])
        assert status, f"README error table: no HTTP status in {line!r}"
        for code in re.findall(r"`([0-9A-Z]{5})`", cells[0]):
            table[code] = int(status.group())
    return table


def test_every_listed_code_has_the_status_postgrest_answers() -> None:
    table = error_table()
    assert table, "README has no error table"
    wrong = {
        code: (status, http_status_for(code))
        for code, status in table.items()
        if http_status_for(code) != status
    }
    assert not wrong, f"README states (listed, PostgREST) statuses that differ: {wrong}"


def rpc(
    api: ApiHarness,
    catalog: psycopg.Connection[DictRow],
    user: str,
    function: str,
    body: dict[str, Any],
) -> list[dict[str, Any]]:
    """Call ``api.<function>`` the way PostgREST does for ``POST /rpc/<function>``: the JSON
    body becomes the named arguments through json_to_record, typed as the function's."""
    args = catalog.execute(
        "select a.name, format_type(a.type, null) as type from pg_proc p cross join lateral"
        " unnest(p.proargnames, p.proargtypes::oid[]) as a(name, type)"
        " where p.pronamespace = 'api'::regnamespace and p.proname = %s and a.name = any(%s)",
        [function, list(body)],
    ).fetchall()
    assert len(args) == len(body), f"api.{function} has no argument named in {list(body)}"
    statement = sql.SQL("select {}({}) as result from json_to_record(%s) as a({})").format(
        sql.Identifier("api", function),
        sql.SQL(", ").join(
            sql.SQL("{} => a.{}").format(sql.Identifier(a["name"]), sql.Identifier(a["name"]))
            for a in args
        ),
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(a["name"]), sql.SQL(a["type"])) for a in args
        ),
    )
    return api.call(user, statement.as_string(catalog), [json.dumps(body)], path=f"/rpc/{function}")


@pytest.fixture
def hr_admin(superuser: psycopg.Connection[DictRow]) -> str:
    return build_engine_world(superuser, unique_slug("errors"))["hr"]


ASSIGNMENT = "00000000-0000-4000-8000-000000000000"
BODIES = [
    ("22003", "update_assignment_status", {"status": "in_progress", "minutes_spent": 2**40}),
    ("22007", "record_assignment_result", {"score": 90, "completed_at": "yesterday noon"}),
    ("22008", "record_assignment_result", {"score": 90, "completed_at": "2026-02-30T10:00:00Z"}),
    ("22009", "record_assignment_result", {"score": 90, "completed_at": "2026-03-02T10:00+25:00"}),
    ("22P05", "exempt_assignment", {"reason": "on leave\u0000"}),
]


@pytest.mark.parametrize(("sqlstate", "function", "body"), BODIES, ids=[b[0] for b in BODIES])
def test_argument_errors_are_listed_as_400(
    api: ApiHarness,
    superuser: psycopg.Connection[DictRow],
    hr_admin: str,
    sqlstate: str,
    function: str,
    body: dict[str, Any],
) -> None:
    with pytest.raises(ApiError) as refused:
        rpc(api, superuser, hr_admin, function, {"assignment_id": ASSIGNMENT, **body})
    assert refused.value.sqlstate == sqlstate, str(refused.value)
    assert refused.value.message, "the refusal names the problem"
    assert refused.value.http_status == 400
    assert error_table().get(sqlstate) == 400, f"README's error table does not list {sqlstate}"
