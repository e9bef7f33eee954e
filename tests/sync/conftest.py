"""Fixtures of the sync tests: an organisation of its own per test, the fake upstreams, settings
pointing at both, and a runner connected as the ``sync_worker`` role (as in production)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow

from sync.runner import RunSummary, SyncRunner
from sync.settings import SyncSettings, load_sync_settings
from tests.fakes import FakeUpstreams
from tests.fakes.dataset import Dataset, synthetic
from tests.sync.helpers import Org


@pytest.fixture
def org(superuser: psycopg.Connection[DictRow]) -> Org:
    slug = f"sync-{uuid.uuid4().hex[:10]}"
    row = superuser.execute(
        "insert into app.organizations (name, slug) values (%s, %s) returning id::text",
        [f"Sync test {slug}", slug],
    ).fetchone()
    assert row is not None
    return Org(row["id"], slug)


@pytest.fixture
def worker_dsn(dsn: str) -> str:
    """The test database as the sync worker logs in (role sync_worker, LOGIN)."""
    return make_conninfo(dsn, user="sync_worker")


@pytest.fixture
def dataset() -> Dataset:
    return synthetic(130, courseworks=4)


@pytest.fixture
def upstreams(dataset: Dataset, tmp_path: Any) -> Iterator[FakeUpstreams]:
    with FakeUpstreams(dataset, key_dir=tmp_path / "keys", max_page_size=50) as fakes:
        yield fakes


def settings_for(
    upstreams: FakeUpstreams, org: Org, worker_dsn: str, **overrides: Any
) -> SyncSettings:
    values: dict[str, Any] = {
        **upstreams.settings_overrides(org.slug),
        "sync_database_url": worker_dsn,
        "compliance_sync_retry_attempts": 3,
        "compliance_sync_retry_base_seconds": 0.01,
        "compliance_sync_max_retry_after_seconds": 2,
        "compliance_sync_timeout_seconds": 2,
        "compliance_sync_connect_timeout_seconds": 2,
        "compliance_sync_run_retry_seconds": 0.05,
        "google_classroom_page_size": 40,
    }
    values.update(overrides)
    return load_sync_settings(**values)


@pytest.fixture
def settings(upstreams: FakeUpstreams, org: Org, worker_dsn: str) -> SyncSettings:
    return settings_for(upstreams, org, worker_dsn)


@pytest.fixture
def worker_conn(worker_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(worker_dsn, autocommit=True) as conn:
        yield conn


RunSync = Callable[..., RunSummary]


@pytest.fixture
def run_sync(worker_conn: psycopg.Connection[Any], settings: SyncSettings) -> RunSync:
    """``run_sync("all" | "zenefits" | "classroom", settings=..., stop=...)`` -> RunSummary."""

    def run(
        what: str = "all",
        *,
        settings: SyncSettings = settings,
        stop: threading.Event | None = None,
        **kwargs: Any,
    ) -> RunSummary:
        runner = SyncRunner(worker_conn, settings, stop=stop)
        return runner.run(what, **kwargs)  # type: ignore[arg-type]

    return run
