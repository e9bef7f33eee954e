"""The training record and the course roster through a real server: CSV rows equal the database's
record in the documented dialect, PDFs rendered (poppler) on the organisation's paper with every
heading beside its first row; who may export what (403), ids unknown or of another organisation
(404), malformed (400); every export audited before it is sent, a refused one not at all."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import engine_today
from tests.web.conftest import WebServer, make_token
from tests.web.pdf_check import assert_pages, find
from tests.web.world import World
from web.records import ROSTER_COLUMNS, TRAINING_RECORD_COLUMNS

pytestmark = pytest.mark.e2e

BOM = "\ufeff".encode()


def get(server: WebServer, path: str, user: uuid.UUID | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {make_token(user)}"} if user is not None else {}
    return httpx.get(server.base + path, params=params, headers=headers, timeout=60)


def exports_of(conn: psycopg.Connection[Any], user: uuid.UUID) -> list[dict[str, Any]]:
    return conn.execute(
        "select * from audit.log where event_type = 'compliance_export' and actor_user_id = %s"
        " order by id",
        [user],
    ).fetchall()


@pytest.fixture
def su(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def records(dsn: str, world: World) -> World:
    """The world, plus: a trainer for Fire Safety, a correction of the manager's completion, a
    veteran with five years of three monthly modules (180 cycles), and a non-ASCII name."""
    a = world.a
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "update app.training_modules set trainer = 'Dana Reyes, RN',"
            " trainer_qualifications = 'Registered nurse; OSHA 501 trainer',"
            " content_summary = 'Extinguishers, evacuation routes, oxygen safety.'"
            " where org_id = %s and id = %s",
            [a.id, a.modules["Fire Safety"]],
        )
        conn.execute(
            "update app.employees set first_name = 'Zoë' where org_id = %s and id = %s",
            [a.id, a.employees["nurse_one"]],
        )
        done = conn.execute(
            "select id, completion_date, score from app.training_assignments"
            " where org_id = %s and employee_id = %s and module_id = %s",
            [a.id, a.employees["manager"], a.modules["HIPAA Privacy"]],
        ).fetchone()
        assert done is not None
        conn.execute(
            "insert into app.completion_corrections (org_id, assignment_id, employee_id, kind,"
            " previous_status, previous_completion_date, previous_score, attended,"
            " completion_date, score, reason, corrected_by)"
            " values (%s, %s, %s, 'corrected', 'completed', %s, 70, true, %s, %s,"
            " 'Sign-in sheet', %s)",
            [
                a.id,
                done["id"],
                a.employees["manager"],
                done["completion_date"],
                done["completion_date"],
                done["score"],
                a.users["hr_admin"],
            ],
        )
        veteran = conn.execute(
            "insert into app.employees (org_id, email, first_name, last_name, department_id,"
            " location_id, job_title) values (%s, %s, 'Vera', 'Veteran', %s, %s, 'Hygienist')"
            " returning id",
            [a.id, f"veteran@{a.slug}.test", a.departments["General"], a.locations["Main"]],
        ).fetchone()
        assert veteran is not None
        a.employees["veteran"] = veteran["id"]
        conn.execute(
            "insert into app.training_assignments (org_id, employee_id, module_id, due_date,"
            " status, completion_date, score, attempts)"
            " select %s, %s, m.id, d::date, 'completed', d + interval '2 days 10 hours', 90, 1"
            " from app.training_modules m,"
            " generate_series('2020-01-15'::date, '2024-12-15'::date, interval '1 month') d"
            " where m.org_id = %s",
            [a.id, veteran["id"], a.id],
        )
    return world


# -- training record ------------------------------------------------------------------------


def test_training_record_csv_is_the_record_in_the_dialect(
    web_server: WebServer, records: World, su: Any
) -> None:
    a = records.a
    employee = a.employees["employee"]
    response = get(web_server, f"/export/training-record/{employee}.csv", a.users["employee"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    today = engine_today(su, a.id)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="training-record-{employee}-{today.isoformat()}.csv"'
    )
    assert not response.content.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert list(rows[0].keys()) == list(TRAINING_RECORD_COLUMNS)
    expected = su.execute(
        "select m.name, a.due_date::text as due, a.status::text, a.is_required"
        " from app.training_assignments a join app.training_modules m on m.id = a.module_id"
        " where a.org_id = %s and a.employee_id = %s order by a.due_date, m.name",
        [a.id, employee],
    ).fetchall()
    assert [(r["module"], r["due_date"], r["status"]) for r in rows] == [
        (e["name"], e["due"], e["status"]) for e in expected
    ]
    assert {r["required"] for r in rows} <= {"true", "false"}
    assert {r["late"] for r in rows} <= {"true", "false"}
    assert {r["time_zone"] for r in rows} == {
        su.execute("select timezone from app.organizations where id = %s", [a.id]).fetchone()[
            "timezone"
        ]
    }
    assert {r["employee_name"] for r in rows} == {"Employee Web"}
    # the audit entry names the export and the employee; the caller is the actor
    entry = exports_of(su, a.users["employee"])[-1]
    assert entry["details"]["export"] == "training_record.csv"
    assert entry["details"]["filters"] == {"employee_id": str(employee)}


def test_csv_dialect_scores_times_bom_and_non_ascii(
    web_server: WebServer, records: World, su: Any
) -> None:
    a = records.a
    nurse = a.employees["nurse_one"]
    plain = get(web_server, f"/export/training-record/{nurse}.csv", a.users["hr_admin"])
    excel = get(web_server, f"/export/training-record/{nurse}.csv", a.users["hr_admin"], excel=1)
    assert plain.status_code == excel.status_code == 200
    assert excel.content == BOM + plain.content
    text = plain.content.decode("utf-8")
    assert "Zoë Web" in text
    rows = list(csv.DictReader(io.StringIO(text)))
    done = [r for r in rows if r["status"] == "completed"]
    assert done
    assert all(r["score"] == "92.50" for r in done)
    # local date-time without offset, the zone in its own column
    tz = su.execute("select timezone from app.organizations where id = %s", [a.id]).fetchone()
    stored = su.execute(
        "select to_char(completion_date at time zone %s, 'YYYY-MM-DD\"T\"HH24:MI:SS') as t"
        " from app.training_assignments where org_id = %s and employee_id = %s"
        " and status = 'completed'",
        [tz["timezone"], a.id, nurse],
    ).fetchall()
    assert sorted(r["completed_at"] for r in done) == sorted(s["t"] for s in stored)
    overdue = [r for r in rows if r["status"] == "overdue"]
    assert overdue
    today = engine_today(su, a.id)
    for r in overdue:  # local days from the due date to the organisation's today
        assert int(r["days_late"]) == max((today - date.fromisoformat(r["due_date"])).days, 0)


def test_training_record_corrections_and_exemptions_are_in_the_csv(
    web_server: WebServer, records: World
) -> None:
    a = records.a
    manager = get(
        web_server,
        f"/export/training-record/{a.employees['manager']}.csv",
        a.users["hr_admin"],
    )
    rows = list(csv.DictReader(io.StringIO(manager.text)))
    hipaa = next(r for r in rows if r["module"] == "HIPAA Privacy")
    assert "Sign-in sheet" in hipaa["corrections"]
    assert "(hr_admin)" in hipaa["corrections"]
    nurse_two = get(
        web_server,
        f"/export/training-record/{a.employees['nurse_two']}.csv",
        a.users["hr_admin"],
    )
    exempted = [r for r in csv.DictReader(io.StringIO(nurse_two.text)) if r["exemption_reason"]]
    assert [r["exemption_reason"] for r in exempted] == ["Certified elsewhere"]


@pytest.mark.parametrize(
    ("role", "subject", "status"),
    [
        ("employee", "employee", 200),
        ("employee", "nurse_one", 403),
        ("manager", "employee", 200),
        ("manager", "nurse_one", 403),
        ("hr_admin", "nurse_one", 200),
        ("superadmin", "former", 200),
        ("viewer", "clerk_one", 200),
    ],
)
def test_who_may_export_a_training_record(
    web_server: WebServer, records: World, su: Any, role: str, subject: str, status: int
) -> None:
    a = records.a
    user = a.users[role]
    before = len(exports_of(su, user))
    for ext in ("csv", "pdf"):
        response = get(web_server, f"/export/training-record/{a.employees[subject]}.{ext}", user)
        assert response.status_code == status, (role, subject, ext, response.text)
        if status == 403:
            assert response.json()["error"]["code"] == "FORBIDDEN"
    # audited when sent, nothing written when refused
    assert len(exports_of(su, user)) == before + (2 if status == 200 else 0)


@pytest.mark.parametrize("kind", ["training-record", "roster"])
def test_unknown_foreign_and_malformed_ids(
    web_server: WebServer, records: World, su: Any, kind: str
) -> None:
    a, b = records.a, records.b
    user = a.users["hr_admin"]
    before = len(exports_of(su, user))
    foreign = b.employees["other"] if kind == "training-record" else b.modules["HIPAA Privacy"]
    for target in (foreign, uuid.uuid4()):
        response = get(web_server, f"/export/{kind}/{target}.csv", user)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "NOT_FOUND"
        assert str(b.id) not in response.text
    field = "employee_id" if kind == "training-record" else "module_id"
    bad = get(web_server, f"/export/{kind}/not-an-id.pdf", user)
    assert bad.status_code == 400, bad.text
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert bad.json()["error"]["details"]["field"] == field
    good = a.employees["employee"] if kind == "training-record" else a.modules["Fire Safety"]
    assert get(web_server, f"/export/{kind}/{good}.xlsx", user).status_code == 404
    unknown_param = get(web_server, f"/export/{kind}/{good}.csv", user, colour="blue")
    assert unknown_param.status_code == 400
    assert unknown_param.json()["error"]["details"]["field"] == "colour"
    assert get(web_server, f"/export/{kind}/{good}.pdf", user, excel=1).status_code == 400
    assert get(web_server, f"/export/{kind}/{good}.csv", user, excel="maybe").status_code == 400
    assert get(web_server, f"/export/{kind}/{good}.csv", None).status_code == 401
    assert len(exports_of(su, user)) == before


def test_training_record_pdf_pages(web_server: WebServer, records: World, su: Any) -> None:
    a = records.a
    veteran = a.employees["veteran"]
    response = get(web_server, f"/export/training-record/{veteran}.pdf", a.users["hr_admin"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    paper = paper_of(su, a.id)
    pages = assert_pages(
        response.content,
        paper=paper,
        headings=[
            ("Assignment cycles", "Module"),
            "Corrections",
            "Requirements and reviews",
            "Tier history",
        ],
    )
    assert len(pages) >= 4  # 180 cycles do not fit on fewer
    text = "\n".join(p.text for p in pages)
    assert "Training record: Vera Veteran" in text
    assert "Hygienist" in text
    assert "audit.verify_chain" in text
    assert "Hr_Admin User (hr_admin)" in text  # generated by
    first, _ = find(pages, "Assignment cycles")
    assert first.number == 1
    assert "No tier changes." in text


def test_roster_csv_lists_attendees_and_absentees(
    web_server: WebServer, records: World, su: Any
) -> None:
    a = records.a
    module = a.modules["Fire Safety"]
    response = get(web_server, f"/export/roster/{module}.csv", a.users["hr_admin"], excel="1")
    assert response.status_code == 200, response.text
    assert response.content.startswith(BOM)
    today = engine_today(su, a.id)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="course-roster-{module}-{today.isoformat()}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.content[len(BOM) :].decode("utf-8"))))
    assert list(rows[0].keys()) == list(ROSTER_COLUMNS)
    expected = su.execute(
        "select e.first_name || ' ' || e.last_name as name, a.status::text"
        " from app.training_assignments a join app.employees e on e.id = a.employee_id"
        " where a.org_id = %s and a.module_id = %s and (a.status = 'completed' or a.is_required)",
        [a.id, module],
    ).fetchall()
    assert sorted((r["employee_name"], r["status"]) for r in rows) == sorted(
        (e["name"], e["status"]) for e in expected
    )
    assert {r["attended"] for r in rows} == {"true", "false"}
    assert all(r["attended"] == ("true" if r["status"] == "completed" else "false") for r in rows)
    assert {r["trainer"] for r in rows} == {"Dana Reyes, RN"}
    # two decimals always: 92.5 and the veteran's 90 are written 92.50 and 90.00
    assert {r["score"] for r in rows if r["attended"] == "true"} == {"92.50", "90.00"}
    entry = exports_of(su, a.users["hr_admin"])[-1]
    assert entry["details"]["export"] == "roster.csv"
    assert entry["details"]["filters"] == {"module_id": str(module)}


def test_who_may_export_a_roster(web_server: WebServer, records: World) -> None:
    a = records.a
    module = a.modules["Fire Safety"]
    for role, status in (("viewer", 200), ("superadmin", 200), ("employee", 403)):
        response = get(web_server, f"/export/roster/{module}.csv", a.users[role])
        assert response.status_code == status, (role, response.text)
    manager = get(web_server, f"/export/roster/{module}.csv", a.users["manager"])
    assert manager.status_code == 200
    names = {r["employee_name"] for r in csv.DictReader(io.StringIO(manager.text))}
    assert names == {"Employee Web"}  # the manager's direct report only


def test_roster_pdf_pages(web_server: WebServer, records: World, su: Any) -> None:
    a = records.a
    module = a.modules["Fire Safety"]
    response = get(web_server, f"/export/roster/{module}.pdf", a.users["hr_admin"])
    assert response.status_code == 200, response.text
    pages = assert_pages(
        response.content,
        paper=paper_of(su, a.id),
        headings=[("Session ", "Attendee")],
    )
    text = "\n".join(p.text for p in pages)
    for fact in (
        "Course roster: Fire Safety",
        "Dana Reyes, RN",
        "Registered nurse; OSHA 501 trainer",
        "Extinguishers, evacuation routes, oxygen safety.",
        "Zoë Web",
        "assigned, not completed",
    ):
        assert fact in text, fact


def test_pdfs_follow_the_paper_setting(web_server: WebServer, records: World, su: Any) -> None:
    a = records.a
    has_setting = su.execute(
        "select 1 from information_schema.columns where table_schema = 'app'"
        " and table_name = 'organizations' and column_name = 'paper_size'"
    ).fetchone()
    if not has_setting:
        pytest.skip("the organisation's paper size setting is not in this database")
    previous = paper_of(su, a.id)
    try:
        for paper in ("a4", "letter"):
            su.execute("update app.organizations set paper_size = %s where id = %s", [paper, a.id])
            for path in (
                f"/export/roster/{a.modules['Fire Safety']}.pdf",
                f"/export/training-record/{a.employees['employee']}.pdf",
            ):
                response = get(web_server, path, a.users["hr_admin"])
                assert response.status_code == 200, response.text
                assert_pages(response.content, paper=paper)
    finally:
        su.execute("update app.organizations set paper_size = %s where id = %s", [previous, a.id])


def paper_of(conn: psycopg.Connection[Any], org: uuid.UUID) -> str:
    row = conn.execute(
        "select to_jsonb(o) ->> 'paper_size' as paper from app.organizations o where id = %s",
        [org],
    ).fetchone()
    return str(row["paper"] or "letter")


def test_head_answers_the_get_s_checks_and_headers_without_exporting(
    web_server: WebServer, records: World, su: Any
) -> None:
    a = records.a
    user = a.users["manager"]
    before = len(exports_of(su, user))
    today = engine_today(su, a.id).isoformat()
    own = a.employees["employee"]
    for ext, media in (("pdf", "application/pdf"), ("csv", "text/csv; charset=utf-8")):
        path = f"/export/training-record/{own}.{ext}"
        response = httpx.head(
            web_server.base + path, headers={"Authorization": f"Bearer {make_token(user)}"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media
        assert response.headers["content-disposition"] == (
            f'attachment; filename="training-record-{own}-{today}.{ext}"'
        )
        assert response.content == b""
    refused = httpx.head(
        web_server.base + f"/export/training-record/{a.employees['nurse_one']}.pdf",
        headers={"Authorization": f"Bearer {make_token(user)}"},
    )
    assert refused.status_code == 403
    unknown = httpx.head(
        web_server.base + f"/export/roster/{uuid.uuid4()}.csv",
        headers={"Authorization": f"Bearer {make_token(a.users['hr_admin'])}"},
    )
    assert unknown.status_code == 404
    assert len(exports_of(su, user)) == before  # nothing was exported
