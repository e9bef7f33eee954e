"""One sync run: open it, fetch and stage every page, call the SQL merges, finish it.

The runner holds no business rule: it fetches (with retries), stages raw pages, tells the
database what it fetched and whether the fetch was complete, and calls ``sync.apply_*``. What a
record means, and whether anybody's status may change, is decided in SQL.

    run = SyncRunner(conn, settings).run("zenefits" | "classroom" | "all")

``conn`` must be an autocommit connection of the sync worker (role sync_worker); the run uses it
for everything, so that the organisation's sync lock (a session lock) covers the whole run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from sync.classroom import ClassroomClient
from sync.loader import Stager, StagingError
from sync.retry import FetchError, Retry, Stopped
from sync.settings import SyncSettings
from sync.zenefits import RESOURCES, ZenefitsClient

__all__ = ["NullProgress", "Progress", "RunSummary", "SyncRunner", "What"]

log = logging.getLogger(__name__)
T = TypeVar("T")

What = Literal["zenefits", "classroom", "all"]
#: From this many staged submissions on, the Classroom submissions merge runs in
#: COMPLIANCE_SYNC_MERGE_PARTS parts at once (below it one call is quicker than the set-up).
MERGE_PARTS_FROM = 20_000
#: Connections that stage Classroom submission pages in the background while the next pages are
#: fetched (staging a page is the database's work: parsing, splitting, checking).
STAGING_LANES = 2
#: What -> (run type, parts, default source).
_PLAN: dict[str, tuple[str, tuple[str, ...], str]] = {
    "zenefits": ("employees", ("zenefits",), "zenefits"),
    "classroom": ("completions", ("classroom",), "classroom"),
    "all": ("full", ("zenefits", "classroom"), "manual"),
}
#: Run type (of a request) -> what to run.
WHAT_FOR_TYPE: dict[str, What] = {
    "employees": "zenefits",
    "training_modules": "classroom",
    "completions": "classroom",
    "full": "all",
}


class Progress(Protocol):
    """Where the runner reports what it is doing (a progress bar, a log)."""

    def phase(self, text: str) -> None: ...

    def page(self, part: str, kind: str, records: int) -> None: ...

    def done(self) -> None: ...


class NullProgress:
    """Reports nothing."""

    def phase(self, text: str) -> None:
        pass

    def page(self, part: str, kind: str, records: int) -> None:
        pass

    def done(self) -> None:
        pass


@dataclass
class RunSummary:
    """What a finished run did (from sync.finish_run)."""

    run_id: str
    status: str
    type: str
    source: str
    complete_fetch: bool
    processed: int
    created: int
    updated: int
    failed: int
    warnings: int
    errors: int
    seconds: float
    first_errors: list[dict[str, Any]] = field(default_factory=list)
    first_warnings: list[dict[str, Any]] = field(default_factory=list)
    merge: dict[str, Any] = field(default_factory=dict)
    pages: int = 0
    records: int = 0
    fetch_failed: bool = False
    interrupted: bool = False

    @classmethod
    def from_json(cls, doc: dict[str, Any], **extra: Any) -> RunSummary:
        return cls(
            run_id=str(doc["run_id"]),
            status=str(doc["status"]),
            type=str(doc["type"]),
            source=str(doc["source"]),
            complete_fetch=bool(doc["complete_fetch"]),
            processed=int(doc["processed"]),
            created=int(doc["created"]),
            updated=int(doc["updated"]),
            failed=int(doc["failed"]),
            warnings=int(doc["warnings"]),
            errors=int(doc["errors"]),
            seconds=float(doc.get("seconds") or 0.0),
            first_errors=list(doc.get("first_errors") or []),
            first_warnings=list(doc.get("first_warnings") or []),
            merge=dict(doc.get("merge") or {}),
            **extra,
        )

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def lines(self) -> list[str]:
        """A few lines for a person: status, counts, the first errors and warnings."""
        out = [
            f"sync run {self.run_id} ({self.type}, {self.source}): {self.status} "
            f"in {self.seconds:.2f} s",
            f"  fetched {self.pages} pages, {self.records} records "
            f"({'complete' if self.complete_fetch else 'INCOMPLETE'})",
            f"  processed {self.processed}, created {self.created}, updated {self.updated}, "
            f"failed {self.failed}; {self.warnings} warning(s), {self.errors} error(s)",
        ]
        out += [f"  error: {e.get('message', e)}" for e in self.first_errors]
        out += [f"  warning: {w.get('message', w)}" for w in self.first_warnings]
        return out


class SyncRunner:
    """Runs syncs of one organisation over one autocommit connection."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        settings: SyncSettings,
        *,
        org: str | None = None,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> None:
        if not conn.autocommit:
            raise ValueError("SyncRunner needs an autocommit connection")
        self.conn = conn
        self.settings = settings
        self.org = org or settings.compliance_org_slug
        if not self.org:
            raise ValueError("no organisation: set COMPLIANCE_ORG_SLUG or pass org")
        self.stop = stop or threading.Event()
        self.progress: Progress = progress or NullProgress()
        self._fetch_failed = False

    # -- clients ----------------------------------------------------------------------------

    def retry(self) -> Retry:
        s = self.settings
        return Retry(
            attempts=s.compliance_sync_retry_attempts,
            base=s.compliance_sync_retry_base_seconds,
            max_retry_after=s.compliance_sync_max_retry_after_seconds,
            stop=self.stop,
        )

    def _zenefits_client(self, retry: Retry) -> ZenefitsClient:
        s = self.settings
        if s.zenefits_api_key is None or s.zenefits_company_id is None:
            raise FetchError("Zenefits is not configured (ZENEFITS_API_KEY, ZENEFITS_COMPANY_ID)")
        return ZenefitsClient(
            s.zenefits_api_url,
            s.zenefits_api_key.get_secret_value(),
            s.zenefits_company_id,
            retry=retry,
            timeout=s.compliance_sync_timeout_seconds,
            connect_timeout=s.compliance_sync_connect_timeout_seconds,
        )

    def _classroom_client(self, retry: Retry) -> ClassroomClient:
        s = self.settings
        return ClassroomClient(
            s.service_account_info(),
            retry=retry,
            api_url=s.google_classroom_api_url,
            subject=s.google_classroom_subject,
            timeout=s.compliance_sync_timeout_seconds,
            page_size=s.google_classroom_page_size,
        )

    # -- the run ----------------------------------------------------------------------------

    def run(
        self,
        what: What,
        *,
        source: str | None = None,
        request_id: str | UUID | None = None,
        wait: bool = False,
        triggered_by: str | None = None,
    ) -> RunSummary:
        """Run one sync; returns its summary. Raises psycopg.Error when the run cannot start
        (e.g. PT409: another sync of the organisation is running and ``wait`` is false)."""
        run_type, parts, default_source = _PLAN[what]
        self._fetch_failed = False
        started = time.monotonic()
        run_id = self._scalar(
            "select sync.start_run(%s, %s, %s, %s, %s, %s)",
            self.org,
            run_type,
            source or default_source,
            str(request_id) if request_id else None,
            wait,
            triggered_by,
        )
        log.info("sync run %s started (%s, %s) for %s", run_id, run_type, parts, self.org)
        stager = Stager(self.conn, run_id, dsn=self.settings.worker_dsn, lanes=STAGING_LANES)
        error: str | None = None
        interrupted = False
        try:
            try:
                for part in parts:
                    self._check_stop()
                    if part == "zenefits":
                        self._zenefits(run_id, stager)
                    else:
                        self._classroom(run_id, stager)
            finally:
                stager.close()  # nothing is staged after this (nor while the run is closed)
        except Stopped:
            interrupted = True
            error = "the worker was stopped before the run finished; nothing was lost"
        except Exception as exc:
            log.exception("sync run %s failed unexpectedly", run_id)
            error = f"internal error: {type(exc).__name__}: {exc}"
            try:
                doc = self._scalar("select sync.finish_run(%s, %s, %s)", run_id, error, False)
            except psycopg.Error:
                log.exception("could not record the failure of run %s", run_id)
            else:
                log.info("sync run %s finished: %s", run_id, doc.get("status"))
            raise
        finally:
            self.progress.done()
        doc = self._scalar("select sync.finish_run(%s, %s, %s)", run_id, error, interrupted)
        summary = RunSummary.from_json(
            doc,
            pages=sum(stager.pages.values()),
            records=sum(stager.records.values()),
            fetch_failed=self._fetch_failed,
            interrupted=interrupted,
        )
        log.info(
            "sync run %s %s in %.2f s: %d pages, %d records; processed %d, created %d, "
            "updated %d, failed %d, %d warnings, %d errors",
            run_id,
            summary.status,
            time.monotonic() - started,
            summary.pages,
            summary.records,
            summary.processed,
            summary.created,
            summary.updated,
            summary.failed,
            summary.warnings,
            summary.errors,
        )
        return summary

    # -- Zenefits ---------------------------------------------------------------------------

    def _zenefits(self, run_id: str, stager: Stager) -> None:
        self.progress.phase("zenefits")
        resources: dict[str, dict[str, Any]] = {}
        error: str | None = None
        with self._zenefits_client(self.retry()) as client:
            for resource, (kind, _path) in RESOURCES.items():
                pages = records = 0
                try:
                    for page in prefetched(client.pages(resource), self.stop):
                        self._check_stop()
                        records += stager.stage(
                            kind, page.body, ["data", "data"], expected=len(page.items)
                        )
                        pages += 1
                        self.progress.page("zenefits", resource, len(page.items))
                except (FetchError, StagingError) as exc:
                    error = str(exc)
                    self._fetch_failed = True
                    resources[resource] = {"pages": pages, "records": records, "complete": False}
                    break
                resources[resource] = {"pages": pages, "records": records, "complete": True}
        complete = error is None
        self._record_fetch(run_id, "zenefits", complete, {"resources": resources}, error)
        references_complete = all(
            resources.get(r, {}).get("complete")
            for r in ("departments", "locations", "employments")
        )
        if references_complete and resources.get("people", {}).get("pages", 0) > 0:
            self._merge(run_id, "zenefits", "sync.apply_zenefits_people")
        elif error is not None:
            log.warning(
                "run %s: the Zenefits fetch failed before the roster; nothing merged", run_id
            )

    # -- Classroom --------------------------------------------------------------------------

    def _classroom(self, run_id: str, stager: Stager) -> None:
        self.progress.phase("classroom")
        error: str | None = None
        coursework_complete = False
        course_ids: list[str] = []
        roster: set[str] = set()
        submitters: set[str] = set()
        teachers: set[str] = set()
        try:
            client = self._classroom_client(self.retry())
            if self.settings.course_ids:
                for course_id in self.settings.course_ids:
                    self._check_stop()
                    page = client.course(course_id)
                    stager.stage("classroom_course", page.body, [], expected=1)
                    course_ids.append(str(page.items[0].get("id") or course_id))
                    teachers.update(_owner_ids(page.items))
                    self.progress.page("classroom", "courses", 1)
            else:
                for page in prefetched(client.courses(), self.stop):
                    self._check_stop()
                    stager.stage(
                        "classroom_course", page.body, ["courses"], expected=len(page.items)
                    )
                    course_ids += [
                        str(c["id"]) for c in page.items if isinstance(c, dict) and c.get("id")
                    ]
                    teachers.update(_owner_ids(page.items))
                    self.progress.page("classroom", "courses", len(page.items))
            # The courses' teachers (owners): their names become the modules' trainers.
            for user_id in sorted(teachers):
                self._check_stop()
                try:
                    profile = client.profile(user_id)
                except FetchError as exc:  # a trainer is optional: the sync goes on without
                    log.warning("run %s: the teacher %s's profile: %s", run_id, user_id, exc)
                    continue
                if profile is not None:
                    stager.stage("classroom_profile", profile.body, [], expected=1)
                    self.progress.page("classroom", "userProfiles", 1)
            for course_id in course_ids:
                for page in prefetched(client.coursework(course_id), self.stop):
                    self._check_stop()
                    stager.stage(
                        "classroom_coursework", page.body, ["courseWork"], expected=len(page.items)
                    )
                    self.progress.page("classroom", "courseWork", len(page.items))
            coursework_complete = True
            for course_id in course_ids:
                for page in prefetched(client.students(course_id), self.stop):
                    self._check_stop()
                    stager.stage(
                        "classroom_student", page.body, ["students"], expected=len(page.items)
                    )
                    roster.update(_user_ids(page.items))
                    self.progress.page("classroom", "students", len(page.items))
            for course_id in course_ids:
                for page in prefetched(client.submissions(course_id), self.stop):
                    self._check_stop()
                    stager.stage_later(
                        "classroom_submission",
                        page.body,
                        ["studentSubmissions"],
                        expected=len(page.items),
                    )
                    submitters.update(_user_ids(page.items))
                    self.progress.page("classroom", "studentSubmissions", len(page.items))
            for user_id in sorted(submitters - roster):
                self._check_stop()
                profile = client.profile(user_id)
                if profile is not None:
                    stager.stage("classroom_profile", profile.body, [], expected=1)
                    self.progress.page("classroom", "userProfiles", 1)
        except (FetchError, StagingError) as exc:
            error = str(exc)
            self._fetch_failed = True
        try:
            stager.flush()  # the pages still being staged, after a failure too
        except StagingError as exc:
            error = error or str(exc)
            self._fetch_failed = True
        details = {
            "coursework_complete": coursework_complete,
            "courses": len(course_ids),
            "pages": {k: v for k, v in stager.pages.items() if k.startswith("classroom")},
            "records": {k: v for k, v in stager.records.items() if k.startswith("classroom")},
        }
        self._record_fetch(run_id, "classroom", error is None, details, error)
        if stager.pages.get("classroom_coursework", 0) > 0:
            self._merge(run_id, "classroom", "sync.apply_classroom_coursework")
        if stager.pages.get("classroom_submission", 0) > 0:
            parts = 1
            if stager.records.get("classroom_submission", 0) >= MERGE_PARTS_FROM:
                parts = self.settings.compliance_sync_merge_parts
            self._merge(run_id, "classroom", "sync.apply_classroom_submissions", parts)

    # -- database calls ---------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped("stop requested")

    def _scalar(self, query: str, *params: Any) -> Any:
        row = self.conn.execute(query, params).fetchone()
        if row is None:
            return None
        return row[0]

    def _record_fetch(
        self, run_id: str, part: str, complete: bool, details: dict[str, Any], error: str | None
    ) -> None:
        self._scalar(
            "select sync.record_fetch(%s, %s, %s, %s, %s)",
            run_id,
            part,
            complete,
            Jsonb(details),
            error,
        )

    def _merge(self, run_id: str, part: str, function: str, parts: int = 1) -> None:
        """Call a merge function; ``parts`` > 1: that many parts at once, each over a connection
        of its own (in its own transaction). A part that fails is recorded as an error of the
        run; what the other parts merged stays."""
        self.progress.phase(f"{part}: merging")
        started = time.monotonic()
        if parts == 1 or self.settings.worker_dsn is None:
            outcomes = [self._call_merge(self.conn, function, run_id)]
        else:
            dsn = self.settings.worker_dsn

            def call_part(index: int) -> tuple[str, Any]:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    return self._call_merge(conn, function, run_id, index, parts)

            with ThreadPoolExecutor(max_workers=parts, thread_name_prefix="merge") as pool:
                outcomes = list(pool.map(call_part, range(parts)))
        for label, outcome in outcomes:
            if isinstance(outcome, psycopg.Error):
                message = outcome.diag.message_primary or str(outcome)
                log.error("run %s: %s failed: %s %s", run_id, label, outcome.sqlstate, message)
                self._scalar(
                    "select sync.record_error(%s, %s, %s, %s)",
                    run_id,
                    part,
                    "merge",
                    f"{label} failed ({outcome.sqlstate}): {message}",
                )
            else:
                log.info("run %s: %s: %s", run_id, label, outcome)
        log.info("run %s: %s in %.2f s", run_id, function, time.monotonic() - started)

    @staticmethod
    def _call_merge(
        conn: psycopg.Connection[Any], function: str, run_id: str, *part: int
    ) -> tuple[str, Any]:
        """(what was called, its counts or the psycopg.Error it raised)."""
        label = f"{function} part {part[0] + 1} of {part[1]}" if part else function
        args = ", ".join(["%s"] * (1 + len(part)))
        try:
            row = conn.execute(f"select {function}({args})", (run_id, *part)).fetchone()
        except psycopg.Error as exc:
            return label, exc
        return label, row[0] if row else None


_DONE = object()


def prefetched(pages: Iterator[T], stop: threading.Event, depth: int = 4) -> Iterator[T]:
    """The pages of ``pages``, fetched by a thread ``depth`` pages ahead of the consumer, so
    that fetching (HTTP, JSON) and staging (COPY, in the database) overlap. An exception of the
    fetch is raised to the consumer at the page where it happened; a consumer that stops early
    stops the fetching thread at its next page."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    cancel = threading.Event()

    def put(item: Any) -> bool:
        """Hand ``item`` to the consumer, unless it has gone (then False)."""
        while not cancel.is_set():
            try:
                box.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put(page) or stop.is_set():
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=produce, name="sync-fetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = box.get(timeout=0.2)
            except queue.Empty:
                if stop.is_set():
                    raise Stopped("stop requested") from None
                if not thread.is_alive() and box.empty():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
        thread.join(timeout=60)


def _user_ids(items: list[dict[str, Any]]) -> set[str]:
    return {str(i["userId"]) for i in items if isinstance(i, dict) and i.get("userId")}


def _owner_ids(courses: list[dict[str, Any]]) -> set[str]:
    return {str(c["ownerId"]) for c in courses if isinstance(c, dict) and c.get("ownerId")}
