"""Shared set-up of the sync benchmarks: a throwaway PostgreSQL (or BENCH_DATABASE_URL), the
fake upstreams in their own process (so they do not share the worker's interpreter), an
organisation, and a runner that times each merge."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from compliance.localpg import LocalCluster, free_port  # noqa: E402
from compliance.migrate import migrate  # noqa: E402
from sync.runner import RunSummary, SyncRunner  # noqa: E402
from sync.settings import SyncSettings, load_sync_settings  # noqa: E402
from tests.sync.helpers import Org, snapshot  # noqa: E402

T = TypeVar("T")

#: The throwaway server is sized like docker-compose.yml's (a server for the job, not the
#: 128 MB default): a merge's working set fits in shared buffers, and its WAL causes no checkpoint.
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "wal_buffers": "64MB",
    "checkpoint_timeout": "15min",
}


@contextmanager
def database() -> Iterator[str]:
    """Superuser DSN of a migrated database: BENCH_DATABASE_URL, else a throwaway cluster."""
    external = os.environ.get("BENCH_DATABASE_URL")
    if external:
        migrate(external, echo=lambda _line: None)
        yield external
        return
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-pg-"))
    os.chmod(tmp, 0o755)  # noqa: S103 - the postgres user must enter it when run as root
    cluster = LocalCluster(tmp, settings=SERVER_SETTINGS)
    try:
        cluster.start()
        dsn = cluster.create_database("sync_bench")
        migrate(dsn, echo=lambda _line: None)
        yield dsn
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def fake_upstreams(people: int, courseworks: int) -> Iterator[dict[str, str]]:
    """``compliance fake-upstreams`` in a child process; yields the environment it prints."""
    ports = [str(free_port()), str(free_port())]
    keys = Path(tempfile.mkdtemp(prefix="sync-bench-keys-"))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from compliance.cli import main; main()", "fake-upstreams",
         "--people", str(people), "--courseworks", str(courseworks),
         "--zenefits-port", ports[0], "--classroom-port", ports[1], "--key-dir", str(keys)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    env: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        while "GOOGLE_CLASSROOM_SUBJECT" not in env:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("fake-upstreams ended before printing its environment")
            if line.startswith("export "):
                key, _, value = line[len("export ") :].strip().partition("=")
                env[key] = value
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(keys, ignore_errors=True)


def make_org(dsn: str) -> str:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("insert into app.organizations (name, slug) values (%s, %s)", [slug, slug])
    return slug


def settings(dsn: str, env: dict[str, str], slug: str) -> SyncSettings:
    return load_sync_settings(
        **{k.lower(): v for k, v in env.items()},
        sync_database_url=make_conninfo(dsn, user="sync_worker"),
        compliance_org_slug=slug,
    )


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (every core, every process: the
    database, the worker and the fakes alike), from /proc/stat: a difference of two readings is
    the work done in between, whatever the number of cores."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def at_once(call: Callable[[int], T], n: int) -> list[T]:
    """call(0) ... call(n - 1), each in a thread of its own, all at once: their results (the
    first exception raised, if any)."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


class TimedRunner(SyncRunner):
    """A SyncRunner that records how long each SQL merge took (all its parts together), in
    seconds and in busy CPU seconds of the machine."""

    merges: dict[str, float]
    merges_cpu: dict[str, float]

    def _merge(self, run_id: str, part: str, function: str, parts: int = 1) -> None:
        started, cpu = time.perf_counter(), busy_cpu_seconds()
        self._run_merge(run_id, part, function, parts)
        self.merges[function] = self.merges.get(function, 0.0) + time.perf_counter() - started
        self.merges_cpu[function] = self.merges_cpu.get(function, 0.0) + busy_cpu_seconds() - cpu

    def _run_merge(self, run_id: str, part: str, function: str, parts: int) -> None:
        super()._merge(run_id, part, function, parts)


class BareMergeRunner(TimedRunner):
    """Runs the Classroom submissions merge (in as many parts as the real one) over superuser
    connections with session_replication_role = replica: no trigger fires (neither the engine's
    rules, nor the audit trail, nor foreign-key checks). What is left is the merge's own SQL."""

    superuser_dsn: str

    def _run_merge(self, run_id: str, part: str, function: str, parts: int) -> None:
        if function != "sync.apply_classroom_submissions":
            super()._run_merge(run_id, part, function, parts)
            return

        def call(index: int) -> None:
            with psycopg.connect(self.superuser_dsn, autocommit=True) as conn:
                conn.execute("set session_replication_role = replica")
                conn.execute(f"select {function}(%s, %s, %s)", [run_id, index, parts])

        at_once(call, parts)


class Measured(NamedTuple):
    """One sync as measured: its summary, seconds end to end and of each merge (by function),
    and the machine's busy CPU seconds end to end and of each merge."""

    summary: RunSummary
    seconds: float
    merges: dict[str, float]
    cpu: float
    merges_cpu: dict[str, float]


def run(settings_: SyncSettings, what: str, bare_merge_dsn: str | None = None) -> Measured:
    assert settings_.worker_dsn is not None
    with psycopg.connect(settings_.worker_dsn, autocommit=True) as conn:
        runner: TimedRunner
        if bare_merge_dsn:
            bare = BareMergeRunner(conn, settings_)
            bare.superuser_dsn = bare_merge_dsn
            runner = bare
        else:
            runner = TimedRunner(conn, settings_)
        runner.merges, runner.merges_cpu = {}, {}
        started, cpu = time.perf_counter(), busy_cpu_seconds()
        summary = runner.run(what)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        return Measured(
            summary, seconds, runner.merges, busy_cpu_seconds() - cpu, runner.merges_cpu
        )


def rows_written(dsn: str, slug: str) -> dict[str, Any]:
    """What the organisation's rows are now (the tests' snapshot: row versions, row-change audit
    entries, non-sync events), to compare before and after a re-sync."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        org = conn.execute(
            "select id::text from app.organizations where slug = %s", [slug]
        ).fetchone()
        assert org is not None
        return snapshot(conn, Org(org[0], slug))


def conditions() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores ({platform.machine()}), load average {load} "
        f"(shared with other work); PostgreSQL throwaway cluster (fsync off; "
        + ", ".join(f"{k} {v}" for k, v in SERVER_SETTINGS.items())
        + ") unless BENCH_DATABASE_URL; fakes on 127.0.0.1 in a separate process, 0 ms latency; "
        "worker connected as sync_worker"
    )
