"""The worker as a process: requests picked once across workers, the schedule, retries of
failed runs, SIGTERM and SIGKILL, notifications of failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import ApiHarness
from tests.fakes import FakeUpstreams
from tests.fakes.dataset import Dataset, expected_employees
from tests.sync.conftest import RunSync
from tests.sync.helpers import Org, differences, employees

pytestmark = [pytest.mark.external, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 60.0, alive: list[Any] | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in alive or []:
            if worker.proc.poll() is not None:
                raise AssertionError(f"a worker died while waiting for {what}:\n{worker.text()}")
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from compliance.cli import main; main()", "worker", *args],
            env=env,
            cwd=REPO,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._out.close()


@pytest.fixture
def worker_env(upstreams: FakeUpstreams, org: Org, worker_dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}
    env.update(upstreams.env(org.slug))
    env.update(
        {
            "SYNC_DATABASE_URL": worker_dsn,
            "COMPLIANCE_SYNC_RETRY_ATTEMPTS": "3",
            "COMPLIANCE_SYNC_RETRY_BASE_SECONDS": "0.01",
            "COMPLIANCE_SYNC_RUN_RETRY_SECONDS": "0.1",
            "COMPLIANCE_SYNC_TIMEOUT_SECONDS": "5",
            "GOOGLE_CLASSROOM_PAGE_SIZE": "40",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.proc.poll() is None:
            worker.stop(signal.SIGKILL, timeout=10)


def start(
    workers: list[WorkerProcess], env: dict[str, str], tmp_path: Path, *args: str
) -> WorkerProcess:
    worker = WorkerProcess(env, tmp_path / f"worker-{len(workers)}.log", *args)
    workers.append(worker)
    return worker


def make_user(superuser: psycopg.Connection[Any], org: Org, role: str) -> str:
    row = superuser.execute(
        "insert into app.app_users (org_id, email, display_name, app_role)"
        " values (%s, %s, %s, %s) returning id::text",
        [org.id, f"{role}.{org.slug}@test.example", f"{role} user", role],
    ).fetchone()
    assert row is not None
    return str(row["id"])


def request_row(superuser: psycopg.Connection[Any], org: Org, request_id: str) -> dict[str, Any]:
    row = superuser.execute(
        "select status::text, run_id::text, attempts, picked_at from app.sync_requests"
        " where org_id = %s and id = %s",
        [org.id, request_id],
    ).fetchone()
    assert row is not None
    return dict(row)


def runs(superuser: psycopg.Connection[Any], org: Org) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in superuser.execute(
            "select id::text, type::text, source::text, status::text, request_id::text,"
            " triggered_by, errors from app.sync_runs where org_id = %s order by started_at",
            [org.id],
        ).fetchall()
    ]


def test_two_workers_and_one_request_give_one_run(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    api: ApiHarness,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    assert run_sync("all").status == "completed"  # so no scheduled sync is due
    before = len(runs(superuser, org))
    first = start(workers, worker_env, tmp_path)
    second = start(workers, worker_env, tmp_path)
    for worker in (first, second):
        wait_for("the worker to start", lambda w=worker: "worker for organisation" in w.text())
    time.sleep(0.5)  # both are listening now
    hr = make_user(superuser, org, "hr_admin")

    answer = api.one(hr, "select api.request_sync('employees') as r")["r"]

    done = wait_for(
        "the request to be served",
        lambda: request_row(superuser, org, answer["id"])["status"] in ("done", "failed"),
        alive=[first, second],
    )
    assert done
    served = request_row(superuser, org, answer["id"])
    assert served["status"] == "done"
    new_runs = runs(superuser, org)[before:]
    assert len(new_runs) == 1
    assert new_runs[0]["request_id"] == answer["id"] == str(answer["id"])
    assert new_runs[0]["id"] == served["run_id"]
    assert new_runs[0]["type"] == "employees"
    assert new_runs[0]["status"] == "completed"
    assert first.stop() == 0
    assert second.stop() == 0


def test_a_worker_killed_mid_run_leaves_the_database_consistent_and_the_next_run_completes(
    superuser: psycopg.Connection[Any],
    org: Org,
    api: ApiHarness,
    dataset: Dataset,
    upstreams: FakeUpstreams,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    upstreams.zenefits.latency = upstreams.classroom.latency = 0.15
    hr = make_user(superuser, org, "hr_admin")
    request_id = api.one(hr, "select api.request_sync('full') as r")["r"]["id"]
    victim = start(workers, worker_env, tmp_path)

    wait_for(
        "pages to be staged",
        lambda: (
            superuser.execute(
                "select count(*) as n from sync.staged_records where org_id = %s", [org.id]
            ).fetchone()["n"]
            > 0
        ),
    )
    victim.stop(signal.SIGKILL)
    time.sleep(0.3)

    # Consistent: the run is still open, its request still running, and the roster either
    # not merged at all or merged whole (a merge is one transaction).
    open_runs = [r for r in runs(superuser, org) if r["status"] in ("started", "in_progress")]
    assert len(open_runs) == 1
    assert request_row(superuser, org, request_id)["status"] == "running"
    count = len(employees(superuser, org))
    assert count in (0, len(expected_employees(dataset)))

    upstreams.zenefits.latency = upstreams.classroom.latency = 0.0
    rescuer = start(workers, worker_env, tmp_path, "--once")
    assert rescuer.proc.wait(timeout=120) == 0, rescuer.text()

    all_runs = runs(superuser, org)
    dead = next(r for r in all_runs if r["id"] == open_runs[0]["id"])
    assert dead["status"] == "failed"  # abandoned, whatever it had merged
    assert any("abandoned" in e["message"] for e in dead["errors"])
    served = request_row(superuser, org, request_id)
    assert served["status"] == "done"
    assert served["attempts"] == 2
    final = next(r for r in all_runs if r["id"] == served["run_id"])
    assert final["status"] == "completed"
    assert staged_left(superuser, org) == 0
    assert differences(expected_employees(dataset), employees(superuser, org)) == []


def staged_left(superuser: psycopg.Connection[Any], org: Org) -> int:
    row = superuser.execute(
        "select count(*) as n from sync.staged_records where org_id = %s", [org.id]
    ).fetchone()
    assert row is not None
    return int(row["n"])


def test_sigterm_stops_the_worker_cleanly_and_hands_the_request_back(
    superuser: psycopg.Connection[Any],
    org: Org,
    api: ApiHarness,
    upstreams: FakeUpstreams,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    upstreams.zenefits.latency = upstreams.classroom.latency = 0.15
    hr = make_user(superuser, org, "hr_admin")
    admin = make_user(superuser, org, "superadmin")
    request_id = api.one(hr, "select api.request_sync('full') as r")["r"]["id"]
    worker = start(workers, worker_env, tmp_path)
    wait_for(
        "pages to be staged",
        lambda: staged_left(superuser, org) > 0,
    )

    assert worker.stop(signal.SIGTERM, timeout=30) == 0, worker.text()

    run = runs(superuser, org)[-1]
    assert run["status"] in ("failed", "partial")
    assert any("stopped" in e["message"] for e in run["errors"])
    back = request_row(superuser, org, request_id)
    assert back["status"] == "queued"
    assert back["picked_at"] is None
    assert staged_left(superuser, org) == 0
    # A deliberate stop is no failure to report.
    notes = superuser.execute(
        "select count(*) as n from app.notifications where org_id = %s and recipient_id = %s",
        [org.id, admin],
    ).fetchone()
    assert notes is not None
    assert notes["n"] == 0
    assert "stopped" in worker.text()


def test_the_worker_runs_the_scheduled_sync_and_the_daily_jobs(
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    # The ledger is one per organisation and local day for every worker.
    superuser.execute("delete from sync.daily_job_runs where org_id = %s", [org.id])
    worker = start(workers, worker_env, tmp_path, "--once")

    assert worker.proc.wait(timeout=120) == 0, worker.text()

    [run] = runs(superuser, org)
    assert (run["type"], run["source"], run["status"], run["triggered_by"]) == (
        "full",
        "scheduled",
        "completed",
        "schedule",
    )
    assert differences(expected_employees(dataset), employees(superuser, org)) == []
    ledger = "select day, ok, attempts, started_at from sync.daily_job_runs where org_id = %s"
    jobs = [dict(j) for j in superuser.execute(ledger, [org.id]).fetchall()]
    today = superuser.execute("select app.org_today(%s) as d", [org.id]).fetchone()
    assert today is not None
    # this worker ran the organisation's today (its local date), once
    assert [(j["day"], j["ok"], j["attempts"]) for j in jobs] == [(today["d"], True, 1)]
    # Run again: the sync is not due, the jobs already ran today.
    again = start(workers, worker_env, tmp_path, "--once")
    assert again.proc.wait(timeout=60) == 0
    assert len(runs(superuser, org)) == 1
    assert [dict(j) for j in superuser.execute(ledger, [org.id]).fetchall()] == jobs  # not again


def test_the_worker_retries_a_run_whose_fetch_failed(
    superuser: psycopg.Connection[Any],
    org: Org,
    api: ApiHarness,
    upstreams: FakeUpstreams,
    run_sync: RunSync,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    assert run_sync("all").status == "completed"
    upstreams.zenefits.faults.add("status", match="/departments", times=4, status=502)
    hr = make_user(superuser, org, "manager")
    request_id = api.one(hr, "select api.request_sync('employees') as r")["r"]["id"]

    worker = start(workers, worker_env, tmp_path, "--once")

    assert worker.proc.wait(timeout=120) == 0, worker.text()
    tried = [r for r in runs(superuser, org) if r["request_id"] == request_id]
    assert [r["status"] for r in tried] == ["failed", "completed"]
    assert request_row(superuser, org, request_id)["status"] == "done"


def test_a_failed_run_notifies_the_superadmins(
    superuser: psycopg.Connection[Any],
    org: Org,
    upstreams: FakeUpstreams,
    run_sync: RunSync,
) -> None:
    admin = make_user(superuser, org, "superadmin")
    hr = make_user(superuser, org, "hr_admin")
    upstreams.zenefits.faults.add("status", match="/core/", times=None, status=401)

    summary = run_sync("zenefits")

    assert summary.status == "failed"
    notes = superuser.execute(
        "select recipient_id::text, type, title, priority::text from app.notifications"
        " where org_id = %s",
        [org.id],
    ).fetchall()
    assert [dict(n) for n in notes] == [
        {
            "recipient_id": admin,
            "type": "sync.failed",
            "title": "Zenefits roster sync failed",
            "priority": "high",
        }
    ]
    assert hr not in [n["recipient_id"] for n in notes]
    events = superuser.execute(
        "select type from app.events where org_id = %s and type like 'sync.%%' order by id",
        [org.id],
    ).fetchall()
    assert [e["type"] for e in events] == ["sync.started", "sync.failed"]
    audit = superuser.execute(
        "select details ->> 'action' as action from audit.log"
        " where org_id = %s and event_type = 'sync_run' order by id",
        [org.id],
    ).fetchall()
    assert [a["action"] for a in audit] == ["started", "finished"]


def test_a_paused_organisation_gets_no_sync_and_the_worker_goes_on(
    superuser: psycopg.Connection[Any],
    org: Org,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    # A canceled subscription paid until 2001 (long past): billing pauses the syncs. A request
    # queued before it was canceled is closed as failed; the scheduler queues none; the worker
    # ends normally and opens no run.
    deleted = {
        "id": f"evt_paused_worker_{org.slug.replace('-', '_')}",
        "type": "customer.subscription.deleted",
        "created": 978307200,
        "data": {
            "object": {
                "id": "sub_paused_worker",
                "customer": f"cus_{org.slug.replace('-', '_')}",
                "status": "canceled",
                "current_period_end": 978307200,
                "metadata": {"org_id": org.id},
            }
        },
    }
    superuser.execute("select app.apply_stripe_event(%s)", [Jsonb(deleted)])
    queued = superuser.execute(
        "insert into app.sync_requests (org_id, type) values (%s, 'full') returning id::text",
        [org.id],
    ).fetchone()
    assert queued is not None

    worker = start(workers, worker_env, tmp_path, "--once")

    assert worker.proc.wait(timeout=120) == 0, worker.text()
    assert runs(superuser, org) == []
    assert request_row(superuser, org, queued["id"])["status"] == "failed"
    assert "syncing is paused: the subscription is canceled" in worker.text()
    assert superuser.execute(
        "select count(*) as n from app.sync_requests where org_id = %s", [org.id]
    ).fetchone() == {"n": 1}
