"""The course's teacher becomes its modules' trainer: a Classroom sync reads the owner's profile
and writes their name on the modules of the course that have no trainer; a trainer HR wrote is
kept; a teacher whose profile Classroom does not give leaves the trainer empty and the sync
completes."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.fakes import FakeUpstreams
from tests.sync.conftest import RunSync
from tests.sync.helpers import Org


def _trainers(conn: psycopg.Connection[Any], org: Org) -> dict[str, str | None]:
    rows = conn.execute(
        "select classroom_coursework_id, trainer from app.training_modules where org_id = %s",
        [org.id],
    ).fetchall()
    return {r["classroom_coursework_id"]: r["trainer"] for r in rows}


def test_the_teacher_fills_empty_trainers_and_keeps_hr_s(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org, upstreams: FakeUpstreams
) -> None:
    assert run_sync("all").status == "completed"
    trainers = _trainers(superuser, org)
    assert trainers
    assert set(trainers.values()) == {"Dana Reyes"}

    kept = next(iter(trainers))
    superuser.execute(
        "update app.training_modules set trainer = 'Pat Lee, RN' where org_id = %s"
        " and classroom_coursework_id = %s",
        [org.id, kept],
    )
    superuser.execute(
        "update app.training_modules set trainer = null where org_id = %s"
        " and classroom_coursework_id <> %s",
        [org.id, kept],
    )
    upstreams.classroom.teacher_name = ("Sam", "Okafor")  # another teacher now
    assert run_sync("all").status == "completed"
    trainers = _trainers(superuser, org)
    assert trainers[kept] == "Pat Lee, RN"
    assert {v for k, v in trainers.items() if k != kept} == {"Sam Okafor"}


def test_a_teacher_without_a_profile_leaves_the_trainer_empty(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org, upstreams: FakeUpstreams
) -> None:
    upstreams.classroom.teacher_name = None  # Classroom does not show the teacher's profile
    assert run_sync("all").status == "completed"
    trainers = _trainers(superuser, org)
    assert trainers
    assert set(trainers.values()) == {None}
