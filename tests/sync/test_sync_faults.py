"""Every fault of an upstream: the run is recorded (completed when the retries got through,
partial or failed when they did not), nothing is lost or wrongly changed, and the next clean run
converges to the source."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.fakes import FakeUpstreams
from tests.fakes.dataset import Dataset, expected_employees, expected_modules
from tests.sync.conftest import RunSync
from tests.sync.helpers import (
    Org,
    differences,
    employees,
    expected_results_normalised,
    modules,
    results,
)

pytestmark = pytest.mark.external

PEOPLE_PAGE_2 = "/people?limit=100&starting_after="
SUBMISSIONS = "/studentSubmissions"

# (upstream, fault kind, match, options, what the faulty run ends as)
CASES: list[tuple[str, str, str, dict[str, Any], set[str]]] = [
    ("zenefits", "status", PEOPLE_PAGE_2, {"times": 2}, {"completed"}),
    ("zenefits", "status", PEOPLE_PAGE_2, {"times": None, "status": 503}, {"partial"}),
    ("zenefits", "status", "/people", {"times": None, "status": 401}, {"failed"}),
    ("zenefits", "retry_after", "/employments", {"times": 1, "retry_after": 0.2}, {"completed"}),
    ("zenefits", "retry_after", "/departments", {"times": None, "retry_after": 0.1}, {"failed"}),
    ("zenefits", "slow", "/people", {"times": None, "delay": 0.2}, {"completed"}),
    ("zenefits", "hang", PEOPLE_PAGE_2, {"times": 1, "delay": 2.5}, {"completed"}),
    ("zenefits", "truncate", "/people", {"times": 1}, {"completed"}),
    ("zenefits", "malformed", "/employments", {"times": 1}, {"completed"}),
    ("zenefits", "malformed", PEOPLE_PAGE_2, {"times": None}, {"partial"}),
    ("zenefits", "drop", "/locations", {"times": 1}, {"completed"}),
    ("zenefits", "vanish", PEOPLE_PAGE_2, {"times": None}, {"partial"}),
    ("classroom", "status", "/token", {"times": 1, "status": 503}, {"completed"}),
    ("classroom", "retry_after", SUBMISSIONS, {"times": 2, "retry_after": 0.2}, {"completed"}),
    ("classroom", "malformed", "pageToken=", {"times": 1}, {"completed"}),
    ("classroom", "truncate", SUBMISSIONS, {"times": 1}, {"completed"}),
    ("classroom", "hang", "/courseWork?", {"times": 1, "delay": 2.5}, {"completed"}),
    ("classroom", "drop", "/students", {"times": 1}, {"completed"}),
    ("classroom", "vanish", "pageToken=", {"times": None}, {"partial"}),
    ("classroom", "status", "/courseWork?", {"times": None, "status": 500}, {"failed"}),
]


def _id(case: tuple[str, str, str, dict[str, Any], set[str]]) -> str:
    upstream, kind, match, options, _ = case
    times = "always" if options.get("times") is None else options["times"]
    return f"{upstream}-{kind}-{times}-{match.strip('/?=')[:20]}"


def state(conn: psycopg.Connection[Any], org: Org) -> dict[str, Any]:
    rows = employees(conn, org)
    count = conn.execute(
        "select count(*) as n, count(score) as scored from app.training_assignments"
        " where org_id = %s",
        [org.id],
    ).fetchone()
    return {"statuses": {k: v["status"] for k, v in rows.items()}, "assignments": count}


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_a_fault_is_recorded_loses_nothing_and_a_clean_run_converges(
    case: tuple[str, str, str, dict[str, Any], set[str]],
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    upstream, kind, match, options, outcome = case
    assert run_sync("all").status == "completed"
    # A change the faulty run must not half-apply: someone leaves, a grade changes.
    gone = next(p for p in dataset.people if p.status == "active")
    dataset.people.remove(gone)
    graded = next(s for s in dataset.submissions if s.state == "RETURNED" and s.grade)
    work = next(w for w in dataset.coursework if w.id == graded.cw_id)
    graded.grade = float(work.max_points or 100)  # a regrade the engine accepts (still passing)
    graded.updated = "2025-07-01T08:00:00.000Z"
    upstreams.classroom.touch()
    before = state(superuser, org)

    fake = upstreams.zenefits if upstream == "zenefits" else upstreams.classroom
    fake.faults.add(kind, match=match, **options)
    summary = run_sync(upstream)

    assert summary.status in outcome, summary.lines()
    run = superuser.execute(
        "select status::text, completed_at, errors from app.sync_runs"
        " where org_id = %s and id = %s",
        [org.id, summary.run_id],
    ).fetchone()
    assert run is not None
    assert run["status"] == summary.status
    assert run["completed_at"] is not None
    if summary.status != "completed":
        assert run["errors"], "a run that did not complete says why"
        after = state(superuser, org)
        # Nobody's status changed on an incomplete fetch (the one who left is still active)...
        assert after["statuses"] == before["statuses"]
        # ...and nothing was lost.
        assert after["assignments"]["n"] >= before["assignments"]["n"]
        assert after["assignments"]["scored"] >= before["assignments"]["scored"]

    fake.faults.clear()
    clean = run_sync("all")

    assert clean.status == "completed", clean.lines()
    rows = employees(superuser, org)
    assert rows.pop(gone.zid)["status"] == "terminated"
    assert differences(expected_employees(dataset), rows) == []
    assert differences(expected_modules(dataset), modules(superuser, org)) == []
    # (the one who left keeps the results recorded before: nothing is deleted)
    recorded = {k: v for k, v in results(superuser, org).items() if v["email"] != gone.work_email}
    assert differences(expected_results_normalised(dataset), recorded) == []


def test_retry_after_is_honoured_and_attempts_are_bounded(
    run_sync: RunSync, upstreams: FakeUpstreams
) -> None:
    upstreams.zenefits.faults.add("retry_after", match="/locations", times=None, retry_after=0.1)

    summary = run_sync("zenefits")

    assert summary.status == "failed"
    # 3 attempts (COMPLIANCE_SYNC_RETRY_ATTEMPTS), then the run gives up on the roster.
    assert upstreams.zenefits.count("/locations") == 3
    assert upstreams.zenefits.count("/people") == 0
    assert any("gave up after 3 attempts" in e["message"] for e in summary.first_errors)
