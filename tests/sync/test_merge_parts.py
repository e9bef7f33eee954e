"""A large Classroom submissions merge runs in parts at once (COMPLIANCE_SYNC_MERGE_PARTS): the
parts together write exactly what one call writes, report each warning once, add their figures
up, and the same data again writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from sync import runner as runner_module
from sync.settings import SyncSettings
from tests.fakes import FakeUpstreams
from tests.fakes.dataset import Dataset
from tests.sync.conftest import RunSync, settings_for
from tests.sync.helpers import Org, expected_results_normalised, snapshot
from tests.sync.test_sync_roundtrip import assert_matches_source

pytestmark = pytest.mark.external


InParts = Callable[[int], SyncSettings]


@pytest.fixture
def merge_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The (part, parts) of every submissions merge call the runner makes (() = one call)."""
    calls: list[tuple[int, ...]] = []
    call_merge = runner_module.SyncRunner._call_merge

    def spy(conn: Any, function: str, run_id: str, *part: int) -> tuple[str, Any]:
        if function == "sync.apply_classroom_submissions":
            calls.append(part)
        return call_merge(conn, function, run_id, *part)

    monkeypatch.setattr(runner_module.SyncRunner, "_call_merge", staticmethod(spy))
    return calls


@pytest.fixture
def in_parts(
    monkeypatch: pytest.MonkeyPatch, upstreams: FakeUpstreams, org: Org, worker_dsn: str
) -> InParts:
    """in_parts(n): settings that merge every submissions merge, however small, in n parts."""
    monkeypatch.setattr(runner_module, "MERGE_PARTS_FROM", 1)
    return lambda parts: settings_for(upstreams, org, worker_dsn, compliance_sync_merge_parts=parts)


@pytest.mark.parametrize("parts", [2, 3])
def test_a_merge_in_parts_holds_exactly_the_source(
    in_parts: InParts,
    merge_calls: list[tuple[int, ...]],
    parts: int,
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
) -> None:
    settings = in_parts(parts)

    summary = run_sync("all", settings=settings)

    assert summary.status == "completed", summary.lines()
    assert sorted(merge_calls) == [(p, parts) for p in range(parts)]  # it did run in parts
    assert_matches_source(superuser, org, dataset)
    merged = summary.merge["classroom_submissions"]
    assert merged["results"] == len(expected_results_normalised(dataset))
    assert merged["processed"] == len({s.id for s in dataset.submissions})
    # The one student nobody matches is named once, whichever part had them.
    guest = dataset.students[-1]
    run = superuser.execute(
        "select warnings from app.sync_runs where org_id = %s and id = %s", [org.id, summary.run_id]
    ).fetchone()
    assert run is not None
    assert len([w for w in run["warnings"] if guest.user_id in w["message"]]) == 1
    assert merged["unmatched_students"] == 1

    before = snapshot(superuser, org)
    again = run_sync("all", settings=settings)
    assert again.status == "completed", again.lines()
    assert (again.created, again.updated, again.failed) == (0, 0, 0)
    assert snapshot(superuser, org) == before


@pytest.mark.parametrize("parts", [1, 3])
def test_course_work_that_is_no_module_is_one_warning_with_all_its_submissions(
    in_parts: InParts,
    parts: int,
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    untitled = dataset.coursework[0]
    untitled.title = "  "  # refused by the course work merge: no module
    upstreams.classroom.touch()
    expected = len({s.id for s in dataset.submissions if s.cw_id == untitled.id})
    summary = run_sync("classroom", settings=in_parts(parts))

    run = superuser.execute(
        "select warnings from app.sync_runs where org_id = %s and id = %s", [org.id, summary.run_id]
    ).fetchone()
    assert run is not None
    named = [w for w in run["warnings"] if f"course work {untitled.id} " in w["message"]]
    assert len(named) == 1, run["warnings"]
    assert f"{expected} submission(s) not recorded" in named[0]["message"]
    merged = summary.merge["classroom_submissions"]
    assert merged["unknown_coursework_submissions"] == expected


def test_a_part_that_does_not_exist_is_refused(worker_dsn: str, org: Org) -> None:
    with psycopg.connect(worker_dsn, autocommit=True) as conn:
        run_id = conn.execute(
            "select sync.start_run(%s, 'completions', 'classroom')", [org.slug]
        ).fetchone()
        assert run_id is not None
        for part, parts in ((3, 3), (-1, 2), (0, 0)):
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(
                    "select sync.apply_classroom_submissions(%s, %s, %s)", [run_id[0], part, parts]
                )
            assert refused.value.sqlstate == "22023"
            message = refused.value.diag.message_primary or ""
            assert f"part {part} of {parts} is not a part" in message
        conn.execute("select sync.finish_run(%s)", [run_id[0]])
