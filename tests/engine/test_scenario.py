"""The seeds' story as one scenario, through the harness as PostgREST runs it.

New hire -> assignments -> in progress -> failed attempt -> pass -> late completion ->
exemption -> overdue and escalation -> tier eligibility -> switch -> submission, revision,
approval -> deactivation. At each step: the rate (api.compliance_rate as the employee, and the
stats row), the stats, the notifications (read by their recipients), the events (api.events as
an HR admin) and the audit rows (api.audit_log as an HR admin).

The daily job runs as the sync worker would run it, for later days ("run tomorrow").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, dict_row

from compliance.db import ApiError
from tests.conftest import ApiHarness
from tests.engine.world import build_engine_world, stats_differences, unique_slug

pytestmark = pytest.mark.e2e


class Story:
    """The scenario's world and the questions each step asks."""

    def __init__(
        self,
        api: ApiHarness,
        su: psycopg.Connection[DictRow],
        worker: psycopg.Connection[DictRow],
        world: dict[str, str],
    ) -> None:
        self.api, self.su, self.worker, self.w = api, su, worker, world
        self.nora = ""
        self.nora_user = ""
        self.modules: dict[str, str] = {}

    # -- asking -----------------------------------------------------------------------------

    def call(
        self, user: str, query: str, params: Any = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        return self.api.call(user, query, params, **kwargs)

    def value(self, user: str, query: str, params: Any = None, **kwargs: Any) -> Any:
        row = self.api.one(user, query, params, **kwargs)
        return next(iter(row.values()))

    def stats(self) -> dict[str, Any]:
        return self.api.one(
            self.w["hr"],
            "select * from api.employee_compliance_stats where employee_id = %s",
            [self.nora],
            method="GET",
        )

    def rate(self) -> Decimal:
        """Nora's compliance rate as she sees it (api.compliance_rate for an employee is hers)."""
        return Decimal(self.value(self.nora_user, "select api.compliance_rate()", method="GET"))

    def assignment(self, module: str) -> dict[str, Any]:
        return self.api.one(
            self.w["hr"],
            "select * from api.training_assignments"
            " where employee_id = %s and module_id = %s order by due_date desc limit 1",
            [self.nora, self.modules[module]],
            method="GET",
        )

    def record(self, requirement: str) -> dict[str, Any]:
        return self.api.one(
            self.w["hr"],
            "select * from api.employee_requirements"
            " where employee_id = %s and requirement_id = %s",
            [self.nora, self.w[requirement]],
            method="GET",
        )

    def notes(self, user: str, kind: str) -> int:
        """Notifications about Nora of this type that the user received."""
        return int(
            self.value(
                user,
                "select count(*) from api.notifications where type = %s and employee_id = %s",
                [kind, self.nora],
                method="GET",
            )
        )

    def events(self, kind: str) -> int:
        return int(
            self.value(
                self.w["hr"],
                "select count(*) from api.events where employee_id = %s and type = %s",
                [self.nora, kind],
                method="GET",
            )
        )

    def audits(self, event_type: str, table: str | None = None) -> int:
        return int(
            self.value(
                self.w["hr"],
                "select count(*) from api.audit_log where employee_id = %s and event_type = %s"
                " and (%s::text is null or table_name = %s)",
                [self.nora, event_type, table, table],
                method="GET",
            )
        )

    def row_audits(self, table: str) -> int:
        return int(
            self.value(
                self.w["hr"],
                "select count(*) from api.audit_log"
                " where employee_id = %s and table_name = %s and op is not null",
                [self.nora, table],
                method="GET",
            )
        )

    def run_jobs(self, days: int) -> dict[str, Any]:
        row = self.worker.execute(
            "select app.run_daily_jobs(%s, app.org_today(%s) + %s) as r",
            [self.w["org"], self.w["org"], days],
        ).fetchone()
        assert row is not None
        return dict(row["r"])

    def verified(self) -> None:
        assert stats_differences(self.su, self.w["org"]) == []


@pytest.fixture
def story(api: ApiHarness, superuser: psycopg.Connection[DictRow], dsn: str) -> Iterator[Story]:
    world = build_engine_world(superuser, unique_slug("story"))
    with psycopg.connect(
        make_conninfo(dsn, user="sync_worker"), autocommit=True, row_factory=dict_row
    ) as worker:
        yield Story(api, superuser, worker, world)


def test_the_seeds_story(story: Story) -> None:
    s, w = story, story.w
    hr, mgr = w["hr"], w["mgr"]

    # -- 0. HR sets up two more department trainings for General -----------------------------
    s.call(
        hr,
        "insert into api.training_modules (name, month_key, due_date, passing_score)"
        " values ('Infection Control', '2025-04', app.org_today(app.current_org_id()) + 5, 80)",
        path="/training_modules",
    )
    s.modules = {
        "hipaa": w["m_hipaa"],
        "osha": w["m_osha"],
        "fire": w["m_fire"],
        "infection": str(
            s.value(
                hr,
                "select id from api.training_modules where name = 'Infection Control'",
                method="GET",
            )
        ),
    }
    for module in ("fire", "infection"):
        s.call(
            hr,
            "insert into api.department_training_requirements (department_id, module_id,"
            " reminder_days_before) values (%s, %s, 3)",
            [w["dept"], s.modules[module]],
            path="/department_training_requirements",
        )

    # -- 1. New hire ----------------------------------------------------------------------------
    s.call(
        hr,
        "insert into api.employees (email, first_name, last_name, job_title, start_date,"
        " department_id, manager_id) values ('nora@story.example', 'Nora', 'Newhire',"
        " 'Staff', app.org_today(app.current_org_id()), %s, %s)",
        [w["dept"], w["mgr_emp"]],
        path="/employees",
    )
    s.nora = str(
        s.value(hr, "select id from api.employees where email = 'nora@story.example'", method="GET")
    )
    s.nora_user = str(
        s.value(
            w["superadmin"],
            "insert into api.app_users (email, display_name,"
            " app_role, employee_id) values ('nora@story.example', 'Nora',"
            " 'employee', %s) returning id",
            [s.nora],
            path="/app_users",
        )
    )
    due = {m: s.assignment(m)["due_date"] for m in s.modules}
    today = s.value(hr, "select app.org_today(app.current_org_id())", method="GET")
    assert due == {
        "hipaa": today + dt.timedelta(days=7),
        "osha": today + dt.timedelta(days=30),
        "fire": today + dt.timedelta(days=60),
        "infection": today + dt.timedelta(days=7),
    }  # start + the rule's grace days
    tier = s.api.one(
        hr,
        "select tier_id, status from api.employee_tiers where employee_id = %s",
        [s.nora],
        method="GET",
    )
    assert (str(tier["tier_id"]), tier["status"]) == (w["bronze"], "active")
    assert {s.record(r)["status"] for r in ("r_hipaa", "r_attest", "r_ack")} == {"pending"}
    stats = s.stats()
    assert (
        stats["training_assigned"],
        stats["training_completed"],
        stats["total_requirements"],
        stats["total_points"],
    ) == (4, 0, 3, 15)
    assert s.rate() == Decimal("0.00")
    assert s.audits("employee_initialized") == 1
    assert s.events("employee.created") == 1
    assert s.events("assignment.updated") == 4
    s.verified()

    # -- 2. Assignment in progress (Nora herself) ----------------------------------------------
    hipaa = str(s.assignment("hipaa")["id"])
    out = s.value(
        s.nora_user, "select api.update_assignment_status(%s, 'in_progress', 20)", [hipaa]
    )
    assert out["status"] == "in_progress"
    assert s.events("assignment.updated") == 5
    assert s.row_audits("training_assignments") == 5  # the four inserts and this update
    with pytest.raises(ApiError) as refused:
        s.call(s.nora_user, "select api.record_assignment_result(%s, 90, now(), 5)", [hipaa])
    assert (refused.value.sqlstate, refused.value.http_status) == ("42501", 403)

    # -- 3. A failed attempt (the manager records it; HIPAA passes at 70) -----------------------
    # (dated now: a result may not predate its assignment, created moments ago)
    out = s.value(mgr, "select api.record_assignment_result(%s, 60, now(), 30)", [hipaa])
    assert (out["status"], out["attempts"], out["passed"], out["attempts_left"]) == (
        "in_progress",
        1,
        False,
        2,
    )
    assert s.rate() == Decimal("0.00")

    # -- 4. A pass: completed, the training requirement approved by the database ------------
    out = s.value(mgr, "select api.record_assignment_result(%s, 85, now(), 25)", [hipaa])
    assert (out["status"], out["attempts"], out["is_late"]) == ("completed", 2, False)
    assert s.record("r_hipaa")["status"] == "approved"
    stats = s.stats()
    assert (
        stats["training_completed"],
        stats["training_rate"],
        stats["completed_requirements"],
        stats["earned_points"],
        stats["completion_pct"],
    ) == (1, Decimal("25.00"), 1, 10, Decimal("33.33"))
    assert s.rate() == Decimal("25.00")
    assert s.events("requirement.updated") >= 1
    assert s.events("stats.updated") >= 1
    assert s.audits("requirement_status_change") == 1

    # -- 5. An on-time result arriving late: Infection Control (due +7, grace 7) is marked overdue
    #       by the job of day +15, then completed with a completion time before its due date --
    jobs = s.run_jobs(15)
    assert jobs["overdue"] >= 1
    assert s.assignment("infection")["status"] == "overdue"
    assert s.notes(s.nora_user, "assignment.overdue") == 1
    assert s.stats()["training_overdue"] == 1
    infection = str(s.assignment("infection")["id"])
    out = s.value(mgr, "select api.update_assignment_status(%s, 'completed')", [infection])
    assert (out["status"], out["is_late"], out["days_late"]) == ("completed", False, None)
    assert s.rate() == Decimal("50.00")
    assert s.stats()["training_overdue"] == 0

    # -- 6. Exemption (HR only, with a reason) -------------------------------------------------
    fire = str(s.assignment("fire")["id"])
    with pytest.raises(ApiError) as refused:
        s.call(mgr, "select api.exempt_assignment(%s, 'certified elsewhere')", [fire])
    assert refused.value.http_status == 403
    out = s.value(hr, "select api.exempt_assignment(%s, 'certified elsewhere')", [fire])
    assert out["status"] == "exempted"
    stats = s.stats()
    assert (stats["training_exempted"], stats["training_rate"]) == (1, Decimal("66.67"))
    assert s.rate() == Decimal("66.67")  # exempted leaves the denominator

    # -- 7. Overdue and escalation: OSHA (due +30, grace 7, escalation 14) at day +52 ---------
    jobs = s.run_jobs(52)
    assert s.assignment("osha")["status"] == "overdue"
    assert jobs["escalated"] >= 1
    assert s.notes(mgr, "assignment.escalated") == 1
    assert s.notes(s.nora_user, "assignment.overdue") == 2
    again = s.run_jobs(52)
    assert (again["overdue"], again["escalated"], again["overdue_notified"]) == (0, 0, 0)
    assert s.notes(mgr, "assignment.escalated") == 1  # idempotent
    assert s.rate() == Decimal("66.67")
    s.verified()

    # -- 8. Tier eligibility: the acknowledgement (no review) brings 2/3 and 10 points -------
    check = s.value(s.nora_user, "select api.check_tier_advancement(%s)", [s.nora], method="GET")
    assert check["eligible"] is False
    out = s.value(
        s.nora_user,
        "select api.submit_requirement(%s, %s::jsonb)",
        [w["r_ack"], '{"signed": true}'],
    )
    assert out["status"] == "approved"
    check = s.value(s.nora_user, "select api.check_tier_advancement(%s)", [s.nora], method="GET")
    assert check["eligible"] is True
    assert check["nextTier"]["name"] == "Silver"
    assert check["requirements"] == {
        "current": {
            "completionPct": 66.67,
            "earnedPoints": 10,
            "totalPoints": 15,
            "completed": 2,
            "total": 3,
        },
        "required": {"completionPct": 50.00, "points": 10},
    }
    assert s.notes(s.nora_user, "tier.eligible") == 1

    # -- 9. Switch (self-advance to the next tier) -------------------------------------------
    with pytest.raises(ApiError) as refused:
        s.call(s.nora_user, "select api.switch_tier(%s, %s, 'skip ahead')", [s.nora, w["gold"]])
    assert refused.value.http_status == 403
    out = s.value(s.nora_user, "select api.switch_tier(%s, %s, 'ready')", [s.nora, w["silver"]])
    # Tiers are cumulative: Bronze's records stay (none legacy), Silver's two are added.
    assert (out["kind"], out["legacyRequirements"], out["newRequirements"]) == ("advancement", 0, 2)
    history = s.call(
        hr,
        "select kind, to_tier_id from api.employee_tier_history where employee_id = %s order by id",
        [s.nora],
        method="GET",
    )
    assert [h["kind"] for h in history] == ["initial", "advancement"]
    assert s.notes(s.nora_user, "tier.changed") == 1
    assert s.audits("tier_change") == 1
    assert s.events("tier.changed") == 1
    stats = s.stats()
    assert (
        stats["total_requirements"],
        stats["completed_requirements"],
        stats["total_points"],
        stats["completion_pct"],
    ) == (5, 2, 45, Decimal("40.00"))
    s.verified()

    # -- 10. Submission, revision, approval (the CPR certification) ------------------------
    cpr = str(s.record("r_cpr")["id"])
    s.value(
        s.nora_user,
        "select api.submit_requirement(%s, %s::jsonb)",
        [cpr, '{"url": "https://certs.example/cpr.pdf"}'],
    )
    assert s.notes(mgr, "requirement.submitted") == 1
    assert s.notes(hr, "requirement.submitted") == 1
    with pytest.raises(ApiError) as refused:
        s.call(s.nora_user, "select api.review_requirement(%s, 'approved')", [cpr])
    assert refused.value.http_status == 403  # no self-review
    out = s.value(
        mgr,
        "select api.review_requirement(%s, 'revision_required', 'The card is"
        " expired; upload the new one.')",
        [cpr],
    )
    assert out["status"] == "revision_required"
    assert s.notes(s.nora_user, "requirement.revision_required") == 1
    s.value(
        s.nora_user,
        "select api.submit_requirement(%s, %s::jsonb)",
        [cpr, '{"url": "https://certs.example/cpr-2026.pdf"}'],
    )
    assert s.notes(mgr, "requirement.submitted") == 2
    out = s.value(hr, "select api.review_requirement(%s, 'approved')", [cpr])
    assert out["status"] == "approved"
    assert out["expires_at"] is not None
    assert s.notes(s.nora_user, "requirement.approved") == 1
    assert (s.audits("requirement_submission"), s.audits("requirement_review")) == (3, 2)
    stats = s.stats()
    assert (stats["completed_requirements"], stats["earned_points"], stats["completion_pct"]) == (
        3,
        30,
        Decimal("60.00"),
    )  # Bronze's two approved records and the CPR certification, of five

    # -- 11. Deactivation -----------------------------------------------------------------------
    general_before = Decimal(
        s.value(hr, "select api.compliance_rate(%s)", [w["dept"]], method="GET")
    )
    out = s.value(hr, "select api.deactivate_employee(%s, 'moved away')", [s.nora])
    assert out["status"] == "inactive"
    assert out["deactivatedAt"] is not None
    assert s.record("r_fire")["status"] == "inactive"  # open -> inactive
    assert s.record("r_cpr")["status"] == "approved"  # approved stays
    assert (
        s.api.one(
            hr,
            "select status from api.employee_tiers where employee_id = %s",
            [s.nora],
            method="GET",
        )["status"]
        == "inactive"
    )
    assert s.audits("employee_deactivated") == 1
    assert s.events("employee.deactivated") == 1
    assert (
        len(
            s.call(
                hr,
                "select id from api.training_assignments where employee_id = %s",
                [s.nora],
                method="GET",
            )
        )
        == 4
    )  # nothing deleted
    # The department's rate no longer counts Nora (active employees only).
    expected = s.su.execute(
        "select coalesce(round(100.0 * sum(s.training_completed)"
        "       / nullif(sum(s.training_assigned - s.training_exempted), 0), 2), 100.00) as r"
        " from app.employee_compliance_stats s join app.employees e"
        "   on e.org_id = s.org_id and e.id = s.employee_id"
        " where e.org_id = %s and e.department_id = %s and e.status = 'active'",
        [w["org"], w["dept"]],
    ).fetchone()
    assert expected is not None
    general_after = Decimal(
        s.value(hr, "select api.compliance_rate(%s)", [w["dept"]], method="GET")
    )
    assert general_after == expected["r"]
    assert general_after != general_before
    s.verified()
