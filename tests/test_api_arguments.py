"""Property: whatever arguments an api function gets, a refusal keeps the error contract.

Every function of the ``api`` schema is read from ``pg_proc`` (a new function is covered without
touching this file) and called the way PostgREST calls it: the JSON body goes through
``json_to_record`` with the declared argument types (domains included), then the function with
named arguments; reads (STABLE) as a GET, in a read-only transaction, writes (VOLATILE) as a
POST, as an HR admin of the engine's fixture organisation. Hypothesis draws the arguments from
boundary and hostile values of each argument's type: ids of the organisation's rows, unknown
and malformed ids, huge and negative numbers, NaN, infinite and ancient dates, NUL and control
characters, megabyte strings, JSON of the wrong shape, nulls, and arguments left out.

A call may succeed; then it stored nothing the organisation cannot live with (UNLIVABLE: an
infinite, pre-1900, future or pre-assignment completion, a minutes total above its ceiling, text
or evidence above its limit). State carries over from one example to the next, so a failure is
reported on the call after which such a value was first found. When a call is refused:
- the SQLSTATE is one of the README's error table (so PostgREST answers 4xx, never 500);
- the message is not empty, and a 22023 message names one of the function's arguments;
- nothing changed: a digest of every row of the organisation (all tables with an org_id in
  app, audit and sync, audit trail and events included) is the same before and after.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import DictRow, dict_row

from compliance.db import ApiError
from tests.conftest import ApiHarness
from tests.engine.world import build_engine_world, unique_slug

README = Path(__file__).resolve().parents[1] / "README.md"

#: Examples per function: writes get more (their arguments are stored), reads fewer; with about
#: ten of each the whole test takes about 25 seconds.
EXAMPLES_PER_WRITE = 25
EXAMPLES_PER_READ = 8


def documented_sqlstates() -> set[str]:
    """The SQLSTATEs of the README's error table (the first column of its rows)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    codes: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            codes.update(re.findall(r"`([0-9A-Z]{5})`", first))
    assert codes, "the README's error table lists no SQLSTATE"
    return codes


@dataclass(frozen=True)
class Argument:
    name: str
    type_sql: str  # as declared (a domain keeps its name): what PostgREST casts the JSON to
    base: str  # the base type, for the values to draw
    has_default: bool


@dataclass(frozen=True)
class Function:
    name: str
    arguments: tuple[Argument, ...]
    volatile: bool
    returns_set: bool


def api_functions(conn: psycopg.Connection[DictRow]) -> list[Function]:
    rows = conn.execute(
        """select p.proname as name, p.provolatile = 'v' as volatile, p.proretset as returns_set,
                  p.pronargdefaults as defaults,
                  coalesce(p.proargnames, '{}') as names,
                  array(select pg_catalog.format_type(t, null)
                        from unnest(p.proargtypes) with ordinality u(t, i) order by i) as types,
                  array(select pg_catalog.format_type(
                                   case when ty.typtype = 'd' then ty.typbasetype else ty.oid end,
                                   null)
                        from unnest(p.proargtypes) with ordinality u(t, i)
                        join pg_catalog.pg_type ty on ty.oid = u.t
                        order by i) as bases
           from pg_catalog.pg_proc p
           where p.pronamespace = 'api'::regnamespace and p.prokind = 'f'
           order by p.proname"""
    ).fetchall()
    out = []
    for r in rows:
        count = len(r["types"])
        first_default = count - r["defaults"]
        arguments = tuple(
            Argument(r["names"][i], r["types"][i], r["bases"][i], i >= first_default)
            for i in range(count)
        )
        out.append(Function(r["name"], arguments, r["volatile"], r["returns_set"]))
    return out


def digest(conn: psycopg.Connection[DictRow], org: str) -> dict[str, str]:
    """An md5 of every row of the organisation, table by table."""
    tables = conn.execute(
        """select format('%I.%I', c.table_schema, c.table_name) as t
           from information_schema.columns c
           join information_schema.tables tb using (table_schema, table_name)
           where c.column_name = 'org_id' and tb.table_type = 'BASE TABLE'
             and c.table_schema in ('app', 'audit', 'sync')
           order by 1"""
    ).fetchall()
    parts = [
        sql.SQL(
            "select {name} as t, md5(coalesce(string_agg(x::text, '|' order by x::text), ''))"
            " as h from {table} x where x.org_id = {org}"
        ).format(
            name=sql.Literal(r["t"]),
            table=sql.SQL(r["t"]),  # quoted by format('%I.%I') above
            org=sql.Literal(org),
        )
        for r in tables
    ]
    rows = conn.execute(sql.SQL(" union all ").join(parts)).fetchall()
    return {r["t"]: r["h"] for r in rows}


# -- values ---------------------------------------------------------------------------------

MEGABYTE = "x" * (1 << 20)
HOSTILE_TEXT = [
    "",
    "   ",
    "x" * 2001,
    MEGABYTE,
    "nul\u0000byte",
    "bell\u0007",
    "line\nbreak",
    "tab\there",
    "\u007f",
    "'; drop table app.employees; --",
    "Zoë — ñandú 🦜",
    "null",
]
WORDS = [
    *("not_started", "in_progress", "completed", "overdue", "exempted", "pending", "submitted"),
    *("approved", "revision_required", "rejected", "inactive", "full", "employees"),
    *("completions", "training_modules", "tier_change", "row_update", "training_assignments"),
    "on leave",
    "COMPLETED ",
]
INTEGERS = [
    *(0, 1, -1, 2, 50, 100, 500, 501, 1440, 1441, 10_000, 10_001, 100_000),
    *(2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, 10**30),
]
NUMBER_TEXTS = ["NaN", "Infinity", "-Infinity", "1.5", "12abc", "", "1e30", "0x10"]
TIMES = [
    "2026-03-02T10:00:00Z",
    "infinity",
    "-infinity",
    "0044-03-15 12:00:00+00 BC",
    "0001-01-01 00:00:00+00",
    "1899-12-31 23:59:59+00",
    "1900-01-01 00:00:00+00",
    "9999-12-31 23:59:59+00",
    "294277-01-01 00:00:00+00",
    "2026-13-45T10:00:00Z",
    "2026-02-30",
    "2026-03-02T10:00:00+25:00",
    "yesterday",
    "garbage",
]
DAYS = [
    "2026-03-02",
    "infinity",
    "-infinity",
    "0044-03-15 BC",
    "0001-01-01",
    "1899-12-31",
    "5874898-01-01",
    "2026-02-30",
    "31/01/2025",
    "today",
]
JSON_SHAPES: list[Any] = [
    {},
    {"url": "https://docs.example/signed.pdf"},
    {"url": "javascript:alert(1)"},
    {"note": "done"},
    {"note": "x" * 70_000},
    {"url": "https://x.example/" + "a" * 3000},
    {"nested": {"a": [1, 2, {"b": None}]}},
    {"nul": "a\u0000b"},
    [],
    [1, 2, 3],
    "just text",
    42,
    True,
]


def bad_uuid_values() -> list[Any]:
    return [str(uuid.UUID(int=0)), "not-a-uuid", "", 42, "00000000-0000-0000-0000-00000000000g"]


#: Which rows an id argument names, by its name (any row of the organisation otherwise).
ID_KINDS = {
    "assignment_id": "assignment",
    "requirement_id": "record",
    "id": "record",
    "employee_id": "employee",
    "tier_id": "tier",
    "department": "department",
    "department_id": "department",
    "location": "location",
    "location_id": "location",
    "ids": "notification",
}


def values_for(argument: Argument, ids: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    """Boundary and hostile JSON values for one argument."""
    base = argument.base
    null = st.just(None)
    kind = ID_KINDS.get(argument.name)
    own = ids[kind] if kind and ids.get(kind) else [i for rows in ids.values() for i in rows]
    if base == "uuid":
        hostile = st.one_of(st.sampled_from(bad_uuid_values()), st.uuids().map(str), null)
        return st.one_of(st.sampled_from(own), st.sampled_from(own), hostile)
    if base == "uuid[]":
        return st.one_of(
            st.lists(st.sampled_from(own), max_size=4),
            st.just(["not-a-uuid"]),
            st.just([None]),
            st.just("not an array"),
            null,
        )
    if base in ("integer", "bigint", "smallint"):
        return st.one_of(
            st.sampled_from(INTEGERS),
            st.integers(),
            st.sampled_from(NUMBER_TEXTS),
            st.just(1.5),
            null,
        )
    if base == "numeric":
        return st.one_of(
            st.sampled_from([0, 50, 69.99, 70, 79.99, 80, 100, 100.01, -0.01, 1e308, 10**400]),
            st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
            st.sampled_from(NUMBER_TEXTS),
            null,
        )
    if base == "timestamp with time zone":
        return st.one_of(st.sampled_from(TIMES), st.sampled_from(HOSTILE_TEXT[:2]), null)
    if base == "date":
        return st.one_of(st.sampled_from(DAYS), null)
    if base == "jsonb" or base == "json":
        return st.one_of(st.sampled_from(JSON_SHAPES), null)
    if base == "text[]":
        return st.one_of(
            st.lists(st.sampled_from(WORDS), max_size=3),
            st.just(["x" * 5000]),
            st.just([None]),
            st.just(["nul\u0000"]),
            st.just("row_update"),
            null,
        )
    if base == "text":
        return st.one_of(
            st.sampled_from(WORDS), st.sampled_from(HOSTILE_TEXT), st.text(max_size=30), null
        )
    # an enum or another type: its own labels are unknown here, so words and hostile text
    return st.one_of(st.sampled_from(WORDS), st.sampled_from(HOSTILE_TEXT), null)


def call_sql(fn: Function, given_names: list[str]) -> sql.Composed:
    """The statement PostgREST builds for an RPC with a JSON body."""
    args = [a for a in fn.arguments if a.name in given_names]
    record = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(a.name), sql.SQL(a.type_sql)) for a in args
    )
    named = sql.SQL(", ").join(
        sql.SQL("{} := _.{}").format(sql.Identifier(a.name), sql.Identifier(a.name)) for a in args
    )
    call = sql.SQL("{}.{}({})").format(sql.Identifier("api"), sql.Identifier(fn.name), named)
    result = sql.SQL("to_jsonb(r)") if fn.returns_set else sql.SQL("to_jsonb(r.r)")
    source = (
        sql.SQL("json_to_record(%s::json) as _({})").format(record)
        if args
        else sql.SQL("(select) as _")
    )
    if fn.returns_set:
        return sql.SQL("select {} from {}, lateral {} r").format(result, source, call)
    return sql.SQL("select {} from {}, lateral (select {} as r) r").format(result, source, call)


# -- the property ---------------------------------------------------------------------------

#: Values an accepted call must never have stored (the organisation could not live with them:
#: exports, sums and later calls would fail on them).
UNLIVABLE = """
    select 'completion_date' as what, a.id::text as row, a.completion_date::text as value
    from app.training_assignments a
    where a.org_id = %(org)s and a.completion_date is not null
      and (not isfinite(a.completion_date) or a.completion_date < '1900-01-01 00:00+00'
           or a.completion_date < a.created_at or a.completion_date > now() + interval '5 minutes')
    union all
    select 'minutes_spent', a.id::text, a.minutes_spent::text from app.training_assignments a
    where a.org_id = %(org)s and a.minutes_spent > 1000000
    union all
    select 'exemption_reason', a.id::text, length(a.exemption_reason)::text
    from app.training_assignments a
    where a.org_id = %(org)s and length(a.exemption_reason) > 2000
    union all
    select 'evidence', r.id::text, length(r.evidence::text)::text from app.employee_requirements r
    where r.org_id = %(org)s and length(r.evidence::text) > 65536
    union all
    select 'review_comments', r.id::text, length(r.review_comments)::text
    from app.employee_requirements r
    where r.org_id = %(org)s and length(r.review_comments) > 2000
"""


def attempt(
    api: ApiHarness, user: str, fn: Function, query: str, params: list[str] | None
) -> ApiError | None:
    """Call as PostgREST would (GET for reads, POST for writes); the refusal, if any."""
    try:
        api.call(
            user, query, params, method="POST" if fn.volatile else "GET", path=f"/rpc/{fn.name}"
        )
    except ApiError as refused:
        return refused
    return None


@pytest.fixture
def world(dsn: str) -> Iterator[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as su:
        w = build_engine_world(su, unique_slug("args"))
        rows = su.execute(
            """select 'assignment' as kind, id::text from app.training_assignments
               where org_id = %(o)s
               union all select 'record', id::text from app.employee_requirements
               where org_id = %(o)s
               union all select 'employee', id::text from app.employees where org_id = %(o)s
               union all select 'tier', id::text from app.compliance_tiers where org_id = %(o)s
               union all select 'requirement', id::text from app.compliance_requirements
               where org_id = %(o)s
               union all select 'department', id::text from app.departments where org_id = %(o)s
               union all select 'location', id::text from app.locations where org_id = %(o)s
               union all select 'notification', id::text from app.notifications
               where org_id = %(o)s
               order by 1, 2""",
            {"o": w["org"]},
        ).fetchall()
        ids: dict[str, list[str]] = {}
        for r in rows:
            ids.setdefault(r["kind"], []).append(r["id"])
        yield {"world": w, "ids": ids, "su": su}


def check_call(
    fn: Function, body: dict[str, Any], world: dict[str, Any], api: ApiHarness, documented: set[str]
) -> str:
    """One call of ``fn`` with the JSON ``body``, checked; its outcome (a SQLSTATE or "ok")."""
    su: psycopg.Connection[DictRow] = world["su"]
    org = world["world"]["org"]
    query = call_sql(fn, list(body)).as_string(su)
    params = [json.dumps(body)] if body else None
    shown = {k: (v[:60] if isinstance(v, str) else v) for k, v in body.items()}
    before = digest(su, org)
    refused = attempt(api, world["world"]["hr"], fn, query, params)
    if refused is None:
        unlivable = su.execute(UNLIVABLE, {"org": org}).fetchall()
        assert not unlivable, f"api.{fn.name}({shown}) stored {unlivable}"
        return "ok"
    context = f"api.{fn.name}({shown}): {refused}"
    assert refused.sqlstate in documented, f"undocumented SQLSTATE: {context}"
    assert refused.http_status < 500, context
    assert refused.message.strip(), f"empty message: {context}"
    if refused.sqlstate == "22023":
        names = [a.name for a in fn.arguments]
        assert any(n in refused.message for n in names), (
            f"the message names no argument of {fn.name} ({names}): {context}"
        )
    assert digest(su, org) == before, f"a refused call changed rows: {context}"
    return refused.sqlstate


#: One value of every hostile kind, per base type: each argument of every function gets each of
#: its type's, the other arguments plausible, before the drawn examples (so every kind is met).
PROBES: dict[str, list[Any]] = {
    "uuid": ["not-a-uuid"],
    "integer": [10**30, 1441, "NaN"],
    "bigint": [10**30, -1],
    "numeric": ["NaN", 10**400],
    "text": ["nul\u0000byte", "x" * 2001, "bell\u0007"],
    "timestamp with time zone": ["-infinity", "0044-03-15 12:00:00+00 BC", "2026-13-45", "garbage"],
    "date": ["5874898-01-01", "infinity"],
    "jsonb": [{"note": "x" * 70_000}, "just text"],
    "text[]": [["nul\u0000"]],
    "uuid[]": [["not-a-uuid"]],
}


#: A plausible value per argument name (null for the others): the context of each probe, so that
#: a hostile value meets a call that would otherwise be accepted and store it.
PLAUSIBLE: dict[str, Any] = {
    "status": "in_progress",
    "decision": "approved",
    "comments": "Looks good",
    "reason": "On leave",
    "type": "full",
    "evidence": {"note": "done"},
    "score": 90,
    "minutes_spent": 5,
}


def plausible(fn: Function, position: int, ids: dict[str, list[str]]) -> dict[str, Any]:
    """A body for ``fn`` that could be accepted: ids of the right kind (the function's position
    picks which, so that functions do not all act on the same row), the PLAUSIBLE values."""
    body: dict[str, Any] = {}
    for argument in fn.arguments:
        kind = ID_KINDS.get(argument.name)
        if argument.base == "uuid" and kind and ids.get(kind):
            body[argument.name] = ids[kind][position % len(ids[kind])]
        else:
            body[argument.name] = PLAUSIBLE.get(argument.name)
    return body


def check_function(
    fn: Function, position: int, world: dict[str, Any], api: ApiHarness, documented: set[str]
) -> set[str]:
    """The probes, then the drawn examples of one function; the outcomes seen."""
    outcomes: set[str] = set()
    context = plausible(fn, position, world["ids"])
    for argument in fn.arguments:
        for value in PROBES.get(argument.base, []):
            body = context | {argument.name: value}
            outcomes.add(check_call(fn, body, world, api, documented))

    @settings(
        max_examples=EXAMPLES_PER_WRITE if fn.volatile else EXAMPLES_PER_READ,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        body: dict[str, Any] = {}
        for argument in fn.arguments:
            if argument.has_default and data.draw(st.booleans(), label=f"omit {argument.name}"):
                continue
            body[argument.name] = data.draw(values_for(argument, world["ids"]), label=argument.name)
        outcomes.add(check_call(fn, body, world, api, documented))

    run()
    return outcomes


def test_every_api_function_refuses_bad_arguments_by_the_contract(
    world: dict[str, Any], api: ApiHarness
) -> None:
    documented = documented_sqlstates()
    functions = api_functions(world["su"])
    assert len(functions) >= 20, [f.name for f in functions]
    seen = {
        fn.name: check_function(fn, position, world, api, documented)
        for position, fn in enumerate(functions)
    }

    # The probes' kinds of refusal, each met somewhere.
    refused = set().union(*seen.values()) - {"ok"}
    assert {"22023", "22P02", "22003", "22P05"} <= refused, seen
