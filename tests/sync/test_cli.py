"""``compliance fake-upstreams`` and ``compliance sync`` as a newcomer runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from compliance.cli import cli
from compliance.localpg import free_port
from tests.conftest import engine_today
from tests.fakes import FakeUpstreams
from tests.sync.helpers import Org

pytestmark = pytest.mark.external

REPO = Path(__file__).resolve().parents[2]
COMPLIANCE = [sys.executable, "-c", "from compliance.cli import main; main()"]


def test_fake_upstreams_serve_a_demo_a_real_sync_can_run_against(
    org: Org, worker_dsn: str, superuser: psycopg.Connection[Any], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}
    ports = [str(free_port()), str(free_port())]
    fakes = subprocess.Popen(
        [*COMPLIANCE, "fake-upstreams", "--zenefits-port", ports[0], "--classroom-port", ports[1],
         "--org", org.slug, "--key-dir", str(tmp_path / "keys")],
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert fakes.stdout is not None
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while "COMPLIANCE_ORG_SLUG" not in exports and time.monotonic() < deadline:
            line = fakes.stdout.readline()
            if not line:
                break
            if line.startswith("export "):
                key, _, value = line[len("export ") :].strip().partition("=")
                exports[key] = value
        assert exports["ZENEFITS_API_URL"] == f"http://127.0.0.1:{ports[0]}"
        assert exports["GOOGLE_CLASSROOM_API_URL"] == f"http://127.0.0.1:{ports[1]}"

        done = subprocess.run(
            [*COMPLIANCE, "sync", "all", "--no-progress"],
            env={**env, **exports, "SYNC_DATABASE_URL": worker_dsn},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        fakes.send_signal(signal.SIGTERM)
        fakes.wait(timeout=10)

    assert done.returncode == 0, done.stdout + done.stderr
    assert ": completed in" in done.stdout
    assert "processed" in done.stdout
    assert "created" in done.stdout
    assert "zenefits" in done.stderr
    assert "classroom" in done.stderr
    row = superuser.execute(
        "select count(*) as n from app.employees where org_id = %s", [org.id]
    ).fetchone()
    assert row is not None
    assert row["n"] > 0


def test_sync_exits_2_on_a_partial_run_and_1_on_a_failed_one(
    upstreams: FakeUpstreams, org: Org, worker_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in upstreams.env(org.slug).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SYNC_DATABASE_URL", worker_dsn)
    monkeypatch.setenv("COMPLIANCE_SYNC_RETRY_BASE_SECONDS", "0")
    runner = CliRunner()

    upstreams.zenefits.faults.add("vanish", match="/people?limit=100&starting_after=", times=None)
    partial = runner.invoke(cli, ["sync", "zenefits", "--no-progress"])
    assert partial.exit_code == 2, partial.output
    assert "partial" in partial.output
    assert "INCOMPLETE" in partial.output

    upstreams.zenefits.faults.clear()
    upstreams.zenefits.faults.add("status", match="/core/", times=None, status=403)
    failed = runner.invoke(cli, ["sync", "zenefits", "--no-progress"])
    assert failed.exit_code == 1, failed.output
    assert "failed" in failed.output
    assert "API key was refused" in failed.output

    upstreams.zenefits.faults.clear()
    ok = runner.invoke(cli, ["sync", "zenefits", "--no-progress"])
    assert ok.exit_code == 0, ok.output


def test_the_demo_upstreams_match_seed_demo(
    superuser: psycopg.Connection[Any], worker_dsn: str, tmp_path: Path
) -> None:
    from compliance.seed import DEMO_SLUG, demo_upstream_state, seed_demo
    from sync.runner import SyncRunner
    from tests.fakes.dataset import demo
    from tests.sync.conftest import settings_for

    # The seed and the fake upstreams agree on the day, the engine's.
    today = engine_today(superuser)
    with psycopg.connect(superuser.info.dsn) as conn:
        seed_demo(conn, today=today)
        conn.commit()
        state = demo_upstream_state(conn)
    assert state is not None
    org_row = superuser.execute(
        "select id::text from app.organizations where slug = %s", [DEMO_SLUG]
    ).fetchone()
    assert org_row is not None
    org = Org(org_row["id"], DEMO_SLUG)
    before = superuser.execute(
        "select count(*) as n from app.employees where org_id = %s", [org.id]
    ).fetchone()
    with FakeUpstreams(demo(*state), key_dir=tmp_path / "keys") as fakes:
        settings = settings_for(fakes, org, worker_dsn)
        with psycopg.connect(worker_dsn, autocommit=True) as conn:
            first = SyncRunner(conn, settings).run("all", wait=True)
            second = SyncRunner(conn, settings).run("all", wait=True)

    assert first.status == "completed", first.lines()
    zenefits = first.merge["zenefits"]
    # Everyone and every unit of the seed is matched, nobody is created or terminated.
    assert zenefits["employees_created"] == 0
    assert zenefits["employees_terminated"] == 0
    assert zenefits["departments_created"] == 0
    assert zenefits["locations_created"] == 0
    assert first.merge["classroom_coursework"]["created"] == 0
    assert first.merge["classroom_submissions"]["unmatched_students"] == 1  # the guest
    after = superuser.execute(
        "select count(*) as n from app.employees where org_id = %s", [org.id]
    ).fetchone()
    assert after == before
    assert (second.created, second.updated, second.failed) == (0, 0, 0)
