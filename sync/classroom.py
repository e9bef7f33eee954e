"""Google Classroom API client (google-api-python-client): courses -> courseWork ->
studentSubmissions -> userProfiles, page by page, as the API sent them.

- The service is built from the bundled discovery document (``static_discovery=True``: no
  network call), with service-account credentials (GOOGLE_SERVICE_ACCOUNT_KEY; its
  ``token_uri`` decides where tokens come from, e.g. a fake's), optionally acting as a Workspace
  user (GOOGLE_CLASSROOM_SUBJECT), and an ``httplib2.Http(timeout=...)`` so every call,
  token requests included, has a timeout.
- Paging is by hand, passing ``pageToken`` until ``nextPageToken`` is empty: the library's
  ``list_next`` breaks on repeated query parameters.
- Bodies are read raw (``RawModel``) so they can be staged exactly as sent; they are parsed here,
  and anything that is not a JSON object (``isinstance(doc, dict)``) is a malformed answer and
  retried, like timeouts, cut connections, 429 and 5xx. ``Retry-After`` is read from the
  ``HttpError``'s response; the library's own ``num_retries`` is not used (it ignores it).
- Students come from each course's roster (``courses.students.list``, with their profiles);
  ``userProfiles.get`` is asked only for submitters missing from the roster (403/404 = unknown).
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import google.auth.exceptions
import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.model import RawModel

from sync.retry import FetchError, Page, PermanentError, Retry, TransientError, parse_retry_after

__all__ = ["SCOPES", "ClassroomClient", "Page"]

log = logging.getLogger(__name__)

SCOPES = [
    "https://www.googleapis.com/auth/classroom.courses.readonly",
    "https://www.googleapis.com/auth/classroom.coursework.students.readonly",
    "https://www.googleapis.com/auth/classroom.rosters.readonly",
    "https://www.googleapis.com/auth/classroom.profile.emails",
]
_RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "RESOURCE_EXHAUSTED"}
MAX_PAGES = 100_000


class ClassroomClient:
    """Reads courses, course work, rosters and submissions of Google Classroom."""

    def __init__(
        self,
        service_account_info: dict[str, Any],
        *,
        retry: Retry,
        api_url: str | None = None,
        subject: str | None = None,
        timeout: float = 30.0,
        page_size: int = 1000,
    ) -> None:
        self.retry = retry
        self.page_size = page_size
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            service_account_info, scopes=SCOPES, subject=subject
        )
        authed = google_auth_httplib2.AuthorizedHttp(
            credentials, http=httplib2.Http(timeout=max(1, round(timeout)))
        )
        options = {"api_endpoint": api_url} if api_url else None
        self._svc: Any = build(
            "classroom",
            "v1",
            http=authed,
            client_options=options,
            static_discovery=True,
            cache_discovery=False,
            model=RawModel(),
        )
        # The resource objects, built once (building them per call costs more than parsing).
        self._courses = self._svc.courses()
        self._coursework = self._courses.courseWork()
        self._students = self._courses.students()
        self._submissions = self._coursework.studentSubmissions()
        self._profiles = self._svc.userProfiles()

    # -- lists ------------------------------------------------------------------------------

    def courses(self) -> Iterator[Page]:
        """Every ACTIVE course the account can see."""
        return self._pages(
            "courses",
            "courses",
            lambda token: self._courses.list(
                courseStates=["ACTIVE"], pageSize=self.page_size, **_token(token)
            ),
        )

    def course(self, course_id: str) -> Page:
        """One course (``courses.get``)."""
        body, doc = self.retry.call(
            lambda: self._execute(self._courses.get(id=course_id)),
            f"Classroom course {course_id}",
        )
        return Page(body, [doc])

    def coursework(self, course_id: str) -> Iterator[Page]:
        """The course's PUBLISHED course work."""
        return self._pages(
            f"courseWork of course {course_id}",
            "courseWork",
            lambda token: self._coursework.list(
                courseId=course_id, pageSize=self.page_size, **_token(token)
            ),
        )

    def students(self, course_id: str) -> Iterator[Page]:
        """The course's students, with their profiles."""
        return self._pages(
            f"students of course {course_id}",
            "students",
            lambda token: self._students.list(
                courseId=course_id, pageSize=self.page_size, **_token(token)
            ),
        )

    def submissions(self, course_id: str) -> Iterator[Page]:
        """Every student submission of every course work of the course (courseWorkId '-')."""
        return self._pages(
            f"studentSubmissions of course {course_id}",
            "studentSubmissions",
            lambda token: self._submissions.list(
                courseId=course_id, courseWorkId="-", pageSize=self.page_size, **_token(token)
            ),
        )

    def profile(self, user_id: str) -> Page | None:
        """A user's profile, or None when Classroom does not know the user (403/404)."""
        try:
            body, doc = self.retry.call(
                lambda: self._execute(self._profiles.get(userId=user_id)),
                f"Classroom userProfile {user_id}",
            )
        except FetchError as exc:
            cause = exc.__cause__
            if isinstance(cause, PermanentError) and cause.status in (403, 404):
                return None
            raise
        return Page(body, [doc])

    # -- machinery --------------------------------------------------------------------------

    def _pages(
        self, what: str, key: str, make_request: Callable[[str | None], Any]
    ) -> Iterator[Page]:
        token: str | None = None
        seen: set[str] = set()
        number = 0
        while True:
            number += 1
            if number > MAX_PAGES:
                raise FetchError(f"Classroom {what}: more than {MAX_PAGES} pages")
            body, doc = self.retry.call(
                functools.partial(self._execute_new, make_request, token),
                f"Classroom {what} page {number}",
            )
            items = doc.get(key, [])
            if not isinstance(items, list):
                raise FetchError(f"Classroom {what} page {number}: {key} is not a list")
            yield Page(body, items)
            next_token = doc.get("nextPageToken")
            if not isinstance(next_token, str) or not next_token:
                return
            if next_token in seen:
                raise FetchError(f"Classroom {what}: nextPageToken repeats")
            seen.add(next_token)
            token = next_token

    def _execute_new(
        self, make_request: Callable[[str | None], Any], token: str | None
    ) -> tuple[bytes, dict[str, Any]]:
        return self._execute(make_request(token))

    def _execute(self, request: Any) -> tuple[bytes, dict[str, Any]]:
        try:
            raw = request.execute(num_retries=0)
        except HttpError as exc:
            status = int(exc.resp.status)
            reason = _reason(exc)
            if status == 429 or status >= 500 or (status == 403 and reason in _RATE_LIMIT_REASONS):
                raise TransientError(
                    f"HTTP {status} {reason or ''}".strip(),
                    retry_after=parse_retry_after(exc.resp.get("retry-after")),
                ) from None
            raise PermanentError(
                f"HTTP {status} {reason or ''}: {_message(exc)}".strip(), status
            ) from None
        except google.auth.exceptions.RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise TransientError(f"token request failed: {exc}") from None
            raise PermanentError(
                f"the service account could not get a token: {exc} "
                "(check GOOGLE_SERVICE_ACCOUNT_KEY and the domain-wide delegation)"
            ) from None
        except google.auth.exceptions.TransportError as exc:
            raise TransientError(f"token request failed: {exc}") from None
        except TimeoutError:
            raise TransientError("timed out") from None
        except (http.client.HTTPException, httplib2.HttpLib2Error, OSError) as exc:
            raise TransientError(f"connection failed ({type(exc).__name__}: {exc})") from None
        body = raw if isinstance(raw, bytes) else str(raw).encode()
        try:
            doc = json.loads(body)
        except ValueError:
            raise TransientError(f"malformed JSON ({len(body)} bytes)") from None
        if not isinstance(doc, dict):
            raise TransientError("malformed answer: not a JSON object")
        return body, doc


def _token(token: str | None) -> dict[str, str]:
    return {"pageToken": token} if token else {}


def _error_doc(exc: HttpError) -> dict[str, Any]:
    try:
        doc = json.loads(exc.content)
    except (ValueError, TypeError):
        return {}
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else {}


def _reason(exc: HttpError) -> str | None:
    error = _error_doc(exc)
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
        if isinstance(reason, str):
            return reason
    status = error.get("status")
    return status if isinstance(status, str) else None


def _message(exc: HttpError) -> str:
    message = _error_doc(exc).get("message")
    return message if isinstance(message, str) else str(exc.reason or "")
