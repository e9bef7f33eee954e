"""The PDFs as a reader sees them: rendered with poppler (tests/web/pdf_check.py) and looked at.

- The shared layout (web/pdf_layout.py): a heading is on the page of its table's first row
  wherever the page break falls, "page N of M", the paper asked for, one line for an empty
  section; and the check itself catches a heading left alone and a half-empty page.
- The organisation's paper size: derived from its time zone at creation, set by superadmins.
- The compliance report of GET /export/compliance.pdf for an HR admin, a manager and an employee
  of the web tests' world, and for a larger organisation on A4 whose report runs over pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import PageBreak, Paragraph  # type: ignore[import-untyped]

from compliance.db import ApiError
from tests.conftest import ApiHarness, engine_today
from tests.web.conftest import WebServer, make_token
from tests.web.pdf_check import Page, assert_pages, find
from tests.web.world import Org, World, _assign, _employee, _module, _one, _org, _users
from web.pdf_layout import build_pdf, data_table, section, styles

pytestmark = pytest.mark.e2e


# -- the layout ----------------------------------------------------------------------------------


def _lines(count: int) -> list[Any]:
    body = styles()["body"]
    return [Paragraph(f"Filler line {i}", body) for i in range(count)]


def _rows(prefix: str, count: int) -> list[list[Any]]:
    return [["Name", "Count"], *([f"{prefix} row {i}", i] for i in range(count))]


def _pdf(story: list[Any], paper: str = "letter") -> bytes:
    return build_pdf(story, paper=paper, title="Layout", generated="2026-03-08 09:15", author="Org")


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_a_heading_is_on_the_page_of_its_first_row_wherever_the_page_ends(paper: str) -> None:
    # from a page with room to spare to one whose last lines fall where the heading would
    for filler in range(34, 52, 2):
        story = [
            *_lines(filler),
            *section("Overdue assignments", data_table(_rows("late", 60), [80 * mm, 20 * mm], 1)),
        ]
        pages = assert_pages(
            _pdf(story, paper), paper=paper, headings=[("Overdue assignments", "late row 0")]
        )
        assert len(pages) >= 2, filler


def test_the_check_catches_a_heading_left_alone_at_the_foot_of_a_page() -> None:
    h2 = styles()["h2"]
    caught = []
    for filler in range(34, 52, 2):
        table = data_table(_rows("late", 60), [80 * mm, 20 * mm], 1)
        story = [*_lines(filler), Paragraph("Overdue assignments", h2), table]
        try:
            assert_pages(
                _pdf(story), paper="letter", headings=[("Overdue assignments", "late row 0")]
            )
        except AssertionError as error:
            caught.append(str(error))
    assert caught, "a bare heading and table never split: the check was not exercised"
    assert "Overdue assignments" in caught[0]


def test_the_check_catches_a_half_empty_page_and_the_wrong_paper() -> None:
    pdf = _pdf([*_lines(5), PageBreak(), *_lines(5)])
    with pytest.raises(AssertionError, match="more than half empty"):
        assert_pages(pdf, paper="letter")
    with pytest.raises(AssertionError, match="not a4"):
        assert_pages(_pdf(_lines(5)), paper="a4")


@pytest.mark.parametrize(("paper", "size"), [("letter", (612, 792)), ("a4", (595, 842))])
def test_pages_are_numbered_n_of_m_on_the_paper_asked_for(
    paper: str, size: tuple[int, int]
) -> None:
    story = section("Sessions", data_table(_rows("session", 150), [80 * mm, 20 * mm], 1))
    pages = assert_pages(_pdf(story, paper), paper=paper, headings=[("Sessions", "session row 0")])
    assert len(pages) >= 3
    for page in pages:
        assert (round(page.width), round(page.height)) == size
        assert f"page {page.number} of {len(pages)}" in page.text
        assert "Org · Layout · generated 2026-03-08 09:15" in page.text
    # the header row repeats on every page the table runs over
    assert all("Name Count" in page.lines() for page in pages)


def test_an_empty_section_says_so_in_one_line() -> None:
    story = [
        *section(
            "Sessions", data_table(_rows("session", 0), [80 * mm, 20 * mm], 1), empty="None held."
        ),
        *section("Trainers", None, empty="No trainer recorded."),
        *section("Notes", []),
    ]
    (page,) = assert_pages(
        _pdf(story),
        paper="letter",
        headings=[
            ("Sessions", "None held."),
            ("Trainers", "No trainer recorded."),
            ("Notes", "None."),
        ],
    )
    assert "Name Count" not in page.lines()  # no empty table


def test_unknown_paper_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="'legal'"):
        _pdf(_lines(1), "legal")


# -- the organisation's paper ---------------------------------------------------------------------


@pytest.fixture
def su(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.mark.parametrize(
    ("timezone", "paper"),
    [
        ("America/Detroit", "letter"),
        ("America/Los_Angeles", "letter"),
        ("Pacific/Honolulu", "letter"),
        ("America/Indiana/Indianapolis", "letter"),
        ("America/Toronto", "letter"),
        ("America/Vancouver", "letter"),
        ("Europe/Berlin", "a4"),
        ("America/Sao_Paulo", "a4"),
        ("Asia/Tokyo", "a4"),
        ("UTC", "a4"),
    ],
)
def test_a_new_organisation_prints_on_its_countrys_paper(
    su: psycopg.Connection[Any], timezone: str, paper: str
) -> None:
    slug = f"paper-{uuid.uuid4().hex[:8]}"
    row = su.execute(
        "insert into app.organizations (name, slug, timezone) values ('Paper', %s, %s)"
        " returning paper_size",
        [slug, timezone],
    ).fetchone()
    assert row is not None
    assert row["paper_size"] == paper


def test_an_explicit_paper_is_kept_and_the_zone_changes_nothing(
    su: psycopg.Connection[Any],
) -> None:
    slug = f"paper-{uuid.uuid4().hex[:8]}"
    org = _one(
        su,
        "insert into app.organizations (name, slug, timezone, paper_size)"
        " values ('Paper', %s, 'America/Detroit', 'a4') returning id",
        [slug],
    )
    su.execute("update app.organizations set timezone = 'Europe/Paris' where id = %s", [org])
    assert _one(su, "select paper_size from app.organizations where id = %s", [org]) == "a4"


def test_superadmins_set_the_paper_others_may_not(
    su: psycopg.Connection[Any], api: ApiHarness
) -> None:
    org = _org(su, "paper")
    _users(su, org)
    superadmin, hr = str(org.users["superadmin"]), str(org.users["hr_admin"])
    setting = api.one(hr, "select paper_size from api.organizations", method="GET")
    assert setting["paper_size"] == "letter"
    rows = api.call(hr, "update api.organizations set paper_size = 'a4' returning id")
    assert rows == []  # HR admins read the settings, superadmins change them
    rows = api.call(
        superadmin, "update api.organizations set paper_size = 'a4' returning paper_size"
    )
    assert rows == [{"paper_size": "a4"}]
    with pytest.raises(ApiError) as refused:
        api.call(superadmin, "update api.organizations set paper_size = 'legal'")
    assert refused.value.sqlstate == "23514"
    assert "organizations_paper_size_is_letter_or_a4" in refused.value.message
    assert _one(su, "select paper_size from app.organizations where id = %s", [org.id]) == "a4"


# -- the compliance report ------------------------------------------------------------------------


def _report_pdf(server: WebServer, user: uuid.UUID) -> bytes:
    response = httpx.get(
        server.base + "/export/compliance.pdf",
        headers={"Authorization": f"Bearer {make_token(user)}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content


def _report(api: ApiHarness, user: uuid.UUID) -> dict[str, Any]:
    report: dict[str, Any] = api.one(
        str(user), "select api.compliance_report() as r", method="GET"
    )["r"]
    return report


def _expected_headings(report: dict[str, Any]) -> list[str | tuple[str, str]]:
    """Each heading of the report with the first row under it, from the report's own data."""
    headings: list[str | tuple[str, str]] = [("Summary", "Compliance rate")]
    for key, heading in (
        ("departments", "Compliance by department"),
        ("locations", "Compliance by location"),
    ):
        groups = report[key]
        headings.append((heading, groups[0]["name"] if groups else "No assignments in scope."))
    total = report["overdue_total"]
    first = report["overdue"][0]["employee_name"] if report["overdue"] else "None."
    headings.append((f"Overdue assignments ({total})", first))
    return headings


def _trend(pages: list[Page], report: dict[str, Any]) -> str:
    """What the trend section shows: 'chart', 'line' (no figures yet) or 'omitted'."""
    try:
        page, index = find(pages, "Compliance trend")
    except AssertionError:
        return "omitted"
    below = " ".join(page.lines()[index + 1 : index + 4])
    if "No figures yet" in below:
        return "line"
    target = f"target {float(report['summary']['target']):.0f} %"
    assert any(target in line for line in page.lines()), f"no chart under the trend: {below}"
    return "chart"


@pytest.mark.parametrize("role", ["hr_admin", "manager", "employee"])
def test_the_compliance_report_reads_well_for_each_role(
    web_server: WebServer, world: World, api: ApiHarness, role: str
) -> None:
    user = world.a.users[role]
    report = _report(api, user)
    pdf = _report_pdf(web_server, user)
    pages = assert_pages(pdf, paper="letter", headings=_expected_headings(report))
    text = "\n".join(page.text for page in pages)
    assert "No daily snapshots yet" not in text
    shown = _trend(pages, report)
    if report.get("trend"):
        assert shown == "chart"
    elif "trend_scope" in report and not report["trend_scope"]:
        assert shown == "omitted"  # the caller reads no figures
    else:
        assert shown == "line"  # nothing to draw yet: one line, not an empty box


@pytest.fixture(scope="module")
def crowd(dsn: str) -> Org:
    """A practice on A4 with a dozen departments, 120 people and a year of daily figures: a
    report that runs over several pages."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        org = _org(conn, "web-pdf")
        conn.execute("update app.organizations set paper_size = 'a4' where id = %s", [org.id])
        _users(conn, org)
        for n in range(12):
            org.departments[f"Clinic {n:02d}"] = _one(
                conn,
                "insert into app.departments (org_id, name) values (%s, %s) returning id",
                [org.id, f"Clinic {n:02d}"],
            )
        today = engine_today(conn, org.id)
        _module(conn, org, "HIPAA Privacy", "2025-01", today - timedelta(days=200))
        _module(conn, org, "Fire Safety", "2025-06", today - timedelta(days=40))
        _module(conn, org, "Bloodborne Pathogens", "2025-09", today + timedelta(days=30))
        departments = [d for d in org.departments if d.startswith("Clinic")]
        for i in range(120):
            key = f"person_{i:03d}"
            _employee(
                conn, org, key, department=departments[i % 12], location=("Main", "Wixom")[i % 2]
            )
            _assign(
                conn,
                org,
                key,
                "HIPAA Privacy",
                today - timedelta(days=200),
                ("completed", "overdue", "overdue")[i % 3],
            )
            _assign(
                conn,
                org,
                key,
                "Fire Safety",
                today - timedelta(days=40),
                ("overdue", "completed", "exempted", "completed")[i % 4],
            )
            _assign(
                conn, org, key, "Bloodborne Pathogens", today + timedelta(days=30), "not_started"
            )
        conn.execute(
            "insert into app.compliance_snapshots (org_id, snapshot_date, required_assignments,"
            " completed_assignments, overdue_assignments, compliance_rate)"
            " select %s, %s::date - d, 360, 200, 120, 50 + d %% 30"
            " from generate_series(1, 365) d on conflict do nothing",
            [org.id, today],
        )
    return org


def test_a_long_report_on_a4_keeps_headings_with_their_tables(
    web_server: WebServer, crowd: Org, api: ApiHarness
) -> None:
    user = crowd.users["hr_admin"]
    report = _report(api, user)
    assert report["overdue_total"] > 100
    pages = assert_pages(
        _report_pdf(web_server, user), paper="a4", headings=_expected_headings(report)
    )
    assert len(pages) >= 3
    assert _trend(pages, report) == "chart"
    # the overdue table runs on: its header row on every page it spans
    start, _ = find(pages, f"Overdue assignments ({report['overdue_total']})")
    for page in pages[start.number - 1 :]:
        assert any(
            line.startswith("Employee Department Location Module Due") for line in page.lines()
        )
    # every overdue assignment listed is in it
    text = "\n".join(page.text for page in pages)
    for item in report["overdue"]:
        assert item["employee_name"] in text
