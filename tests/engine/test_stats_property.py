"""Property: whatever sequence of operations runs, the stored stats equal a recomputation.

Hypothesis draws sequences of operations and drives them through the harness exactly as
PostgREST would run them (HR admins, managers, employees calling the api functions and PATCHing
views), plus the sync worker's daily job and sync-style bulk writes. Refusals (409, 403, 404,
400) are legitimate outcomes. After EVERY operation ``app.verify_stats()`` (limited to the test's
organisation) must be empty: the database kept ``employee_compliance_stats`` current.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, dict_row

from compliance.db import ApiError
from tests.conftest import ApiHarness
from tests.engine.world import build_engine_world, stats_differences, unique_slug

#: Refusals an operation may legitimately meet (conflict, forbidden, not found, bad input, and
#: an actor whose own employee record was deactivated: access follows employment).
EXPECTED_REFUSALS = {"PT409", "42501", "PT404", "22023", "PT403"}


@dataclass
class Ctx:
    world: dict[str, str]
    api: ApiHarness
    su: psycopg.Connection[DictRow]
    worker: psycopg.Connection[DictRow]

    def employees(self) -> list[str]:
        rows = self.su.execute(
            "select id::text from app.employees where org_id = %s order by created_at, id",
            [self.world["org"]],
        ).fetchall()
        return [r["id"] for r in rows]

    def assignments(self) -> list[str]:
        rows = self.su.execute(
            "select id::text from app.training_assignments where org_id = %s"
            " order by created_at, id",
            [self.world["org"]],
        ).fetchall()
        return [r["id"] for r in rows]

    def records(self) -> list[str]:
        rows = self.su.execute(
            "select id::text from app.employee_requirements where org_id = %s"
            " order by created_at, id",
            [self.world["org"]],
        ).fetchall()
        return [r["id"] for r in rows]

    def pick(self, items: list[str], index: int) -> str | None:
        return items[index % len(items)] if items else None


# -- operations: each is (name, drawn arguments); run() performs it --------------------------

ACTORS = ("hr", "hr", "superadmin", "mgr", "mgr", "emp_user", "other_user", "viewer")
TITLES = ("Staff", "Nurse", "Manager", "Front Desk")
TIERS = ("bronze", "silver", "gold")

actor = st.sampled_from(ACTORS)
index = st.integers(min_value=0, max_value=10_000)

operations = st.one_of(
    st.tuples(
        st.just("status"),
        actor,
        index,
        st.sampled_from(["not_started", "in_progress", "completed"]),
        st.integers(0, 90),
    ),
    st.tuples(st.just("result"), actor, index, st.integers(0, 100), st.integers(0, 400)),
    st.tuples(st.just("exempt"), actor, index),
    st.tuples(st.just("unexempt"), actor, index),
    st.tuples(
        st.just("req_status"), actor, index, st.sampled_from(["in_progress", "inactive", "pending"])
    ),
    st.tuples(st.just("submit"), actor, index),
    st.tuples(
        st.just("review"),
        actor,
        index,
        st.sampled_from(["approved", "revision_required", "rejected"]),
    ),
    st.tuples(st.just("switch_tier"), actor, index, st.sampled_from(TIERS)),
    st.tuples(st.just("deactivate"), index),
    st.tuples(st.just("reactivate"), index),
    st.tuples(st.just("job_title"), index, st.sampled_from(TITLES)),
    st.tuples(st.just("hire"), st.sampled_from(TITLES), st.booleans(), st.integers(-60, 10)),
    st.tuples(st.just("daily_jobs"), st.integers(0, 400)),
    st.tuples(st.just("bulk_results"), st.integers(0, 100), st.integers(0, 9)),
    st.tuples(
        st.just("points"), st.sampled_from(["r_attest", "r_cpr", "r_hipaa"]), st.integers(0, 50)
    ),
    st.tuples(st.just("new_requirement"), st.sampled_from(TIERS), st.integers(0, 30)),
    st.tuples(
        st.just("assign"),
        index,
        st.sampled_from(["m_fire", "m_osha"]),
        st.integers(-30, 60),
        st.booleans(),
    ),
)


def run(ctx: Ctx, op: tuple[Any, ...]) -> None:
    w, api = ctx.world, ctx.api
    kind = op[0]
    if kind == "status":
        _, who, i, status, minutes = op
        a = ctx.pick(ctx.assignments(), i)
        api.call(w[who], "select api.update_assignment_status(%s, %s, %s)", [a, status, minutes])
    elif kind == "result":
        _, who, i, score, minutes_ago = op
        a = ctx.pick(ctx.assignments(), i)
        at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
        api.call(w[who], "select api.record_assignment_result(%s, %s, %s, 5)", [a, score, at])
    elif kind == "exempt":
        _, who, i = op
        a = ctx.pick(ctx.assignments(), i)
        api.call(w[who], "select api.exempt_assignment(%s, 'property test')", [a])
    elif kind == "unexempt":
        _, who, i = op
        a = ctx.pick(ctx.assignments(), i)
        api.call(w[who], "select api.unexempt_assignment(%s, 'property test')", [a])
    elif kind == "req_status":
        _, who, i, status = op
        r = ctx.pick(ctx.records(), i)
        api.call(w[who], "select api.update_requirement_status(%s, %s)", [r, status])
    elif kind == "submit":
        _, who, i = op
        r = ctx.pick(ctx.records(), i)
        api.call(
            w[who],
            "select api.submit_requirement(%s, %s::jsonb)",
            [r, '{"url": "https://evidence.example/doc.pdf"}'],
        )
    elif kind == "review":
        _, who, i, decision = op
        r = ctx.pick(ctx.records(), i)
        api.call(w[who], "select api.review_requirement(%s, %s, 'property test')", [r, decision])
    elif kind == "switch_tier":
        _, who, i, tier = op
        e = ctx.pick(ctx.employees(), i)
        api.call(w[who], "select api.switch_tier(%s, %s, 'property test')", [e, w[tier]])
    elif kind == "deactivate":
        _, i = op
        e = ctx.pick(ctx.employees(), i)
        api.call(w["hr"], "select api.deactivate_employee(%s, 'property test')", [e])
    elif kind == "reactivate":
        _, i = op
        e = ctx.pick(ctx.employees(), i)
        api.call(
            w["hr"],
            "update api.employees set status = 'active' where id = %s",
            [e],
            method="PATCH",
            path="/employees",
        )
    elif kind == "job_title":
        _, i, title = op
        e = ctx.pick(ctx.employees(), i)
        api.call(
            w["hr"],
            "update api.employees set job_title = %s where id = %s",
            [title, e],
            method="PATCH",
            path="/employees",
        )
    elif kind == "hire":
        _, title, in_general, start_offset = op
        api.call(
            w["hr"],
            "insert into api.employees (email, first_name, last_name, job_title, start_date,"
            " department_id, manager_id) values (%s, 'New', 'Hire', %s,"
            " app.org_today(app.current_org_id()) + %s, %s, %s)",
            [
                f"hire.{uuid.uuid4().hex[:12]}@prop.example",
                title,
                start_offset,
                w["dept"] if in_general else w["dept2"],
                w["mgr_emp"],
            ],
            path="/employees",
        )
    elif kind == "daily_jobs":
        _, days = op
        ctx.worker.execute(
            "select app.run_daily_jobs(%s, app.org_today(%s) + %s)", [w["org"], w["org"], days]
        )
    elif kind == "bulk_results":
        # A sync-style merge: one set-based UPDATE over several open assignments.
        _, score, stride = op
        with ctx.su.transaction():
            ctx.su.execute(
                "update app.training_assignments a set score = %s, completion_date = now(),"
                " status = 'in_progress' from app.training_modules m"
                " where a.org_id = %s and m.org_id = a.org_id and m.id = a.module_id"
                "   and a.status in ('not_started', 'in_progress', 'overdue')"
                "   and a.attempts < m.max_attempts"
                "   and (abs(hashtext(a.id::text)) %% 10) >= %s",
                [score, w["org"], stride],
            )
    elif kind == "points":
        _, req, points = op
        api.call(
            w["hr"],
            "update api.compliance_requirements set points = %s where id = %s",
            [points, w[req]],
            method="PATCH",
            path="/compliance_requirements",
        )
    elif kind == "new_requirement":
        _, tier, points = op
        api.call(
            w["hr"],
            "insert into api.compliance_requirements (name, type, points, tier_id)"
            " values (%s, 'document', %s, %s)",
            [f"Document {uuid.uuid4().hex[:12]}", points, w[tier]],
            path="/compliance_requirements",
        )
    elif kind == "assign":
        _, i, module, due_offset, required = op
        e = ctx.pick(ctx.employees(), i)
        with ctx.su.transaction():
            ctx.su.execute(
                "insert into app.training_assignments (org_id, employee_id, module_id, due_date,"
                " is_required) values (%s, %s, %s, app.org_today(%s) + %s, %s)"
                " on conflict do nothing",
                [w["org"], e, w[module], w["org"], due_offset, required],
            )
    else:  # pragma: no cover - the strategy lists every kind
        raise AssertionError(kind)


def attempt(ctx: Ctx, step: tuple[Any, ...]) -> str:
    """Run one operation; a refusal must be one of the expected ones. Returns the outcome."""
    try:
        run(ctx, step)
    except ApiError as error:
        if error.sqlstate not in EXPECTED_REFUSALS:
            raise AssertionError(f"{step!r} failed unexpectedly: {error}") from error
        return f"refused {error.sqlstate}"
    return "done"


@pytest.fixture
def ctx(superuser: psycopg.Connection[DictRow], dsn: str, api: ApiHarness) -> Iterator[Ctx]:
    world = build_engine_world(superuser, unique_slug("prop"))
    with psycopg.connect(
        make_conninfo(dsn, user="sync_worker"), autocommit=True, row_factory=dict_row
    ) as worker:
        yield Ctx(world=world, api=api, su=superuser, worker=worker)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(operations, min_size=1, max_size=12))
def test_stats_stay_verified_after_every_operation(ctx: Ctx, steps: list[tuple[Any, ...]]) -> None:
    assert stats_differences(ctx.su, ctx.world["org"]) == []
    for step in steps:
        outcome = attempt(ctx, step)
        event(f"{step[0]}: {outcome}")
        differences = stats_differences(ctx.su, ctx.world["org"])
        assert differences == [], f"after {step!r}: stats differ: {differences!r}"
