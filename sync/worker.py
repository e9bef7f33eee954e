"""``compliance worker``: the long-running sync worker of one organisation.

Loop, until SIGTERM/SIGINT:

1. once every ten minutes, ``sync.run_scheduled_jobs(org)``: the organisation's daily jobs for
   each of its LOCAL days that has begun (after its local midnight) and not run yet, once across
   all workers, missed days caught up in order; and the weekly (billing usage) and
   monthly jobs once a day. The day is the
   database's answer (the organisation's time zone), never this machine's or the server's date;
2. ``sync.enqueue_scheduled(org, COMPLIANCE_SYNC_INTERVAL_HOURS)``: queue the full sync when
   it is due (so the schedule, too, goes through the request queue);
3. ``sync.claim_requests(org)``: take every queued request (FOR UPDATE SKIP LOCKED, under the
   organisation's sync lock: two workers never run one request) and run what covers them; a run
   that failed for lack of data (a fetch error) is retried COMPLIANCE_SYNC_RETRY_ATTEMPTS times in
   all, COMPLIANCE_SYNC_RUN_RETRY_SECONDS apart (doubling);
4. wait for ``NOTIFY compliance_sync_requests`` (api.request_sync sends it), the next scheduled
   sync, or the next jobs check, whichever comes first.

SIGTERM stops it cleanly: a run in progress stops at the next page, is recorded as failed
("stopped"), its requests go back to the queue for another worker, and the process exits 0. A
worker killed outright (SIGKILL) leaves whole pages staged and the run open; the next run of the
organisation closes it as abandoned, and its request is queued again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

import psycopg

from sync.runner import WHAT_FOR_TYPE, RunSummary, SyncRunner
from sync.settings import SyncSettings

__all__ = ["Worker"]

log = logging.getLogger(__name__)

CHANNEL = "compliance_sync_requests"
JOBS_EVERY_SECONDS = 600.0
#: the longest the loop sleeps without looking at the schedule again
MAX_WAIT_SECONDS = 60.0


class Worker:
    """One worker process's loop. ``stop`` set = finish up and return."""

    def __init__(
        self,
        settings: SyncSettings,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        if settings.worker_dsn is None or settings.compliance_org_slug is None:
            raise ValueError("the worker needs DATABASE_URL and COMPLIANCE_ORG_SLUG")
        self.settings = settings
        self.dsn: str = settings.worker_dsn
        self.org: str = settings.compliance_org_slug
        self.stop = stop or threading.Event()
        self._jobs_checked_at = 0.0

    # -- signals ----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT set the stop event (main thread only)."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping after the current page", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- the loop ---------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> int:
        """Serve until stopped (or, with ``once``, until nothing is left to do). Returns 0."""
        log.info(
            "worker for organisation %s: full sync every %g h, %d attempts per run",
            self.org,
            self.settings.compliance_sync_interval_hours,
            self.settings.compliance_sync_retry_attempts,
        )
        with (
            psycopg.connect(self.dsn, autocommit=True) as listen,
            psycopg.connect(self.dsn, autocommit=True) as work,
        ):
            listen.execute(f"listen {CHANNEL}")
            while not self.stop.is_set():
                self._jobs(work)
                next_due = self._schedule(work)
                claimed = self._claim(work)
                if claimed is not None:
                    self._serve(work, claimed)
                    continue
                if once:
                    break
                self._wait(listen, next_due)
        log.info("worker for organisation %s stopped", self.org)
        return 0

    def _scalar(self, conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
        row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def _jobs(self, conn: psycopg.Connection[Any]) -> None:
        if time.monotonic() - self._jobs_checked_at < JOBS_EVERY_SECONDS and self._jobs_checked_at:
            return
        self._jobs_checked_at = time.monotonic()
        try:
            result = self._scalar(conn, "select sync.run_scheduled_jobs(%s)", self.org) or {}
        except psycopg.Error as exc:
            log.error("scheduled jobs could not run: %s", exc.diag.message_primary or exc)
            return
        outcomes = [str(v) for v in (result.get("daily") or {}).values()]
        outcomes.append(str(result.get("monthly")))
        if any(o.startswith(("ran", "failed")) for o in outcomes):
            log.info("scheduled jobs of %s (today %s): %s", self.org, result.get("today"), result)

    def _schedule(self, conn: psycopg.Connection[Any]) -> float:
        """Queue the full sync when due; returns seconds until the next one is due."""
        doc = self._scalar(
            conn,
            "select sync.enqueue_scheduled(%s, %s::numeric)",
            self.org,
            self.settings.compliance_sync_interval_hours,
        )
        if doc.get("request_id"):
            log.info("scheduled full sync queued (request %s)", doc["request_id"])
        due = self._scalar(
            conn, "select extract(epoch from (%s::timestamptz - now()))", doc["next_due_at"]
        )
        return max(1.0, float(due))

    def _claim(self, conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
        doc = self._scalar(conn, "select sync.claim_requests(%s)", self.org)
        return dict(doc) if doc else None

    def _wait(self, listen: psycopg.Connection[Any], next_due: float) -> None:
        deadline = time.monotonic() + min(next_due, MAX_WAIT_SECONDS, JOBS_EVERY_SECONDS)
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for notify in listen.notifies(timeout=min(1.0, left), stop_after=1):
                log.debug("notified: request %s", notify.payload)
                return

    def _runner(self, conn: psycopg.Connection[Any]) -> SyncRunner:
        return SyncRunner(conn, self.settings, org=self.org, stop=self.stop)

    def _serve(self, conn: psycopg.Connection[Any], claimed: dict[str, Any]) -> None:
        request_ids = [str(i) for i in claimed["request_ids"]]
        what = WHAT_FOR_TYPE[str(claimed["type"])]
        source = str(claimed["source"])
        people = claimed.get("requested_by") or []
        triggered_by = "schedule" if not people else "request by " + ", ".join(map(str, people))
        attempts = self.settings.compliance_sync_retry_attempts
        summary: RunSummary | None = None
        try:
            for attempt in range(1, attempts + 1):
                summary = self._runner(conn).run(
                    what, source=source, request_id=request_ids[0], triggered_by=triggered_by
                )
                if summary.ok or summary.interrupted or not summary.fetch_failed:
                    break
                if attempt < attempts:
                    pause = self.settings.compliance_sync_run_retry_seconds * 2.0 ** (attempt - 1)
                    log.warning(
                        "run %s %s (fetch failed); retrying in %.0f s (attempt %d of %d)",
                        summary.run_id,
                        summary.status,
                        pause,
                        attempt + 1,
                        attempts,
                    )
                    if self.stop.wait(pause):
                        break
        except psycopg.Error as exc:
            if exc.sqlstate != "PT402":
                log.exception("requests %s: the run failed", request_ids)
                self._finish(conn, request_ids, summary, "failed")
                raise
            # billing paused the organisation's syncs: the request ends, the worker goes on
            log.warning(
                "requests %s: %s (%s)", request_ids, exc.diag.message_primary, exc.diag.message_hint
            )
            self._finish(conn, request_ids, summary, "failed")
            return
        except Exception:
            log.exception("requests %s: the run failed", request_ids)
            self._finish(conn, request_ids, summary, "failed")
            raise
        if summary is None or summary.interrupted or (self.stop.is_set() and not summary.ok):
            status = "queued"  # handed back: another worker (or the next start) takes it
        elif summary.status == "failed":
            status = "failed"
        else:
            status = "done"
        self._finish(conn, request_ids, summary, status)

    def _finish(
        self,
        conn: psycopg.Connection[Any],
        request_ids: list[str],
        summary: RunSummary | None,
        status: str,
    ) -> None:
        try:
            conn.execute(
                "select sync.finish_requests(%s, %s::uuid[], %s, %s)",
                (self.org, request_ids, summary.run_id if summary else None, status),
            )
        except psycopg.Error as exc:
            log.error("could not close requests %s: %s", request_ids, exc)
