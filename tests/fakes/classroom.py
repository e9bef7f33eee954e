"""A fake of the Google Classroom API v1 and its OAuth token endpoint (EXTERNAL_APIS.md §1-2,
checklist §5.1).

- ``POST /token``: the service-account JWT-bearer grant (``aud`` is always
  ``https://oauth2.googleapis.com/token``, ``sub`` optional); the assertion's RS256 signature is
  checked against the key :func:`make_service_account` made. Answers an access token; API calls
  must carry one it issued (else 401 UNAUTHENTICATED).
- ``GET /v1/courses`` (``courseStates`` repeated), ``/v1/courses/{id}``,
  ``/v1/courses/{id}/courseWork`` (PUBLISHED only unless ``courseWorkStates`` says otherwise),
  ``/v1/courses/{id}/courseWork/{cw|-}/studentSubmissions``, ``/v1/courses/{id}/students``
  (pageSize default 30), ``/v1/userProfiles/{id|email}`` (403 for an unknown user).
- Unknown query parameters (``alt``, ``fields``, ``prettyPrint``...) are ignored; page tokens are
  opaque and tied to the query; ``nextPageToken`` is omitted on the last page; fields holding a
  default value are omitted (no ``late: false``, no grade when ungraded).
- Errors: ``{"error": {"code", "message", "status"}}``.

Control (besides faults): ``POST /_fake/submissions`` with {"id"} or {"userId"|"email",
"courseWorkId"} and the fields to change (state, grade, turned_in, updated), and
``POST /_fake/coursework`` with {"id", ...} to change or add a course work.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.dataset import CourseWork, Dataset, Student, Submission
from tests.fakes.server import FakeServer, Reply, Request

__all__ = ["FakeClassroom", "make_service_account"]

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_KEY_CACHE: dict[str, Any] = {}


def make_service_account(
    token_uri: str, client_email: str = "compliance-sync@fake-project.iam.gserviceaccount.com"
) -> tuple[dict[str, Any], Any]:
    """A throwaway service-account key (RSA 2048) whose tokens come from ``token_uri``; returns
    (the key's JSON as a dict, its public key). One RSA key per process."""
    if "key" not in _KEY_CACHE:
        _KEY_CACHE["key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = _KEY_CACHE["key"]
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": hashlib.sha1(pem.encode()).hexdigest(),  # noqa: S324 - an id, not security
        "private_key": pem,
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    return info, key.public_key()


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeClassroom(FakeServer):
    name = "classroom"

    def __init__(
        self,
        dataset: Dataset,
        *,
        public_key: Any = None,
        max_page_size: int = 1000,
        teacher_id: str = "117283749302918475631",
        teacher_name: tuple[str, str] | None = ("Dana", "Reyes"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.public_key = public_key
        self.max_page_size = max_page_size
        self.teacher_id = teacher_id
        # the owner of every course (given, family name); None: no profile shown (403)
        self.teacher_name = teacher_name
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self._index_version = -1
        self._version = 0
        self._subs_by_course: dict[str, list[Submission]] = {}
        self._works: dict[tuple[str, str], CourseWork] = {}
        self._students: dict[str, Student] = {}
        self._listings: dict[tuple[str, str, tuple[str, ...]], list[Submission]] = {}
        self._render_cache: dict[str, bytes] = {}

    # -- indexes (rebuilt when the data set changes) -----------------------------------------

    def touch(self) -> None:
        """Say the data set changed (after editing it directly)."""
        with self._lock:
            self._version += 1

    def _index(self) -> None:
        with self._lock:
            if self._index_version == self._version:
                return
            by_course: dict[str, list[Submission]] = {}
            for sub in self.dataset.submissions:
                by_course.setdefault(sub.course_id, []).append(sub)
            self._subs_by_course = by_course
            self._works = {(w.course_id, w.id): w for w in self.dataset.coursework}
            self._students = {
                s.user_id: s for s in [*self.dataset.students, *self.dataset.extra_profiles]
            }
            self._listings = {}
            self._render_cache = {}
            self._index_version = self._version

    def warm(self) -> None:
        """Render every submission now (kept until the data set changes), so that the first
        listing is served as quickly as the next ones: the fake must not be what a benchmark
        measures."""
        self._index()
        for sub in self.dataset.submissions:
            self._rendered(sub)

    # -- wire format ------------------------------------------------------------------------

    def error_body(self, status: int, message: str) -> Any:
        return {
            "error": {
                "code": status,
                "message": message,
                "status": CANONICAL.get(status, "UNKNOWN"),
            }
        }

    def course_json(self, course: Any) -> dict[str, Any]:
        return {
            "id": course.id,
            "name": course.name,
            "ownerId": self.teacher_id,
            "creationTime": "2025-01-06T09:12:44.101Z",
            "updateTime": "2025-02-01T10:00:03.870Z",
            "enrollmentCode": "k3x9qpa",
            "courseState": course.state,
            "alternateLink": f"https://classroom.google.com/c/{course.id}",
            "calendarId": f"c_classroom{course.id}@group.calendar.google.com",
        }

    def coursework_json(self, w: CourseWork) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "courseId": w.course_id,
            "id": w.id,
            "title": w.title,
            "state": w.state,
            "creationTime": "2025-01-06T09:20:00.000Z",
            "updateTime": "2025-01-06T09:21:15.332Z",
            "workType": "ASSIGNMENT",
            "assigneeMode": "ALL_STUDENTS",
            "submissionModificationMode": "MODIFIABLE_UNTIL_TURNED_IN",
            "creatorUserId": self.teacher_id,
        }
        if w.description:
            doc["description"] = w.description
        if w.state == "PUBLISHED":
            doc["alternateLink"] = f"https://classroom.google.com/c/{w.course_id}/a/{w.id}/details"
        if w.due:
            doc["dueDate"] = {"year": w.due[0], "month": w.due[1], "day": w.due[2]}
            hours, minutes = w.due_time
            doc["dueTime"] = {
                k: v for k, v in (("hours", hours), ("minutes", minutes)) if v
            }  # proto3 JSON leaves out zeros: 00:00 is {}
        if w.max_points:
            doc["maxPoints"] = w.max_points
        return doc

    def profile_json(self, s: Student) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": s.user_id,
            "name": {
                "givenName": s.given_name,
                "familyName": s.family_name,
                "fullName": f"{s.given_name} {s.family_name}",
            },
        }
        if s.email:
            doc["emailAddress"] = s.email
        return doc

    def submission_json(self, s: Submission) -> dict[str, Any]:
        work = self._works.get((s.course_id, s.cw_id))
        doc: dict[str, Any] = {
            "courseId": s.course_id,
            "courseWorkId": s.cw_id,
            "id": s.id,
            "userId": s.user_id,
            "state": s.state,
            "alternateLink": f"https://classroom.google.com/c/{s.course_id}/a/{s.cw_id}/submissions/student/{s.user_id}",
            "courseWorkType": "ASSIGNMENT",
            "assignmentSubmission": {},
        }
        if s.state == "NEW":
            return doc
        created = "2025-01-06T09:00:00.000Z"
        doc["creationTime"] = created
        doc["updateTime"] = s.updated
        if s.late:
            doc["late"] = True
        history: list[dict[str, Any]] = [
            {
                "stateHistory": {
                    "state": "CREATED",
                    "stateTimestamp": created,
                    "actorUserId": s.user_id,
                }
            }
        ]
        for turned_in in [*s.earlier_turn_ins, *([s.turned_in] if s.turned_in else [])]:
            history.append(
                {
                    "stateHistory": {
                        "state": "TURNED_IN",
                        "stateTimestamp": turned_in,
                        "actorUserId": s.user_id,
                    }
                }
            )
        graded = [*s.earlier_grades, *([s.grade] if s.grade is not None else [])]
        for points in graded:
            grade: dict[str, Any] = {
                "pointsEarned": points,
                "gradeTimestamp": s.updated,
                "actorUserId": self.teacher_id,
                "gradeChangeType": "ASSIGNED_GRADE_POINTS_EARNED_CHANGE",
            }
            if work is not None and work.max_points:
                grade["maxPoints"] = work.max_points
            history.append({"gradeHistory": grade})
        if s.grade is not None:
            doc["draftGrade"] = s.grade
            doc["assignedGrade"] = s.grade
        if s.state == "RETURNED":
            history.append(
                {
                    "stateHistory": {
                        "state": "RETURNED",
                        "stateTimestamp": s.updated,
                        "actorUserId": self.teacher_id,
                    }
                }
            )
        doc["submissionHistory"] = history
        return doc

    # -- paging -----------------------------------------------------------------------------

    def page(
        self, request: Request, key: str, items: list[Any], render: Any, default_size: int = 100
    ) -> Reply:
        try:
            size = int(request.one("pageSize") or 0) or default_size
        except ValueError:
            return Reply(400, self.error_body(400, "Invalid value for pageSize"))
        size = max(1, min(size, self.max_page_size))
        query = {
            k: v
            for k, v in request.query.items()
            if k not in ("pageToken", "alt", "fields", "prettyPrint", "key", "quotaUser")
        }
        fingerprint = hashlib.sha256(
            (request.path + json.dumps(sorted(query.items()))).encode()
        ).hexdigest()[:16]
        offset = 0
        token = request.one("pageToken")
        if token:
            try:
                spec = json.loads(_b64decode(token))
                offset = int(spec["o"])
                if spec["q"] != fingerprint:
                    raise ValueError("query changed")
            except (ValueError, KeyError, TypeError):
                return Reply(400, self.error_body(400, "Invalid page token"))
        chunk = items[offset : offset + size]
        token_out = None
        if offset + size < len(items):
            raw_token = json.dumps({"o": offset + size, "q": fingerprint}).encode()
            token_out = base64.urlsafe_b64encode(raw_token).decode().rstrip("=")
        if key == "studentSubmissions":
            # Each submission is rendered once and kept (until the data set changes): the fake
            # must not be what a benchmark measures.
            fields = []
            if chunk:
                rendered = b",".join(self._rendered(sub) for sub in chunk)
                fields.append(b'"studentSubmissions":[' + rendered + b"]")
            if token_out:
                fields.append(b'"nextPageToken":"' + token_out.encode() + b'"')
            return Reply(200, b"{" + b",".join(fields) + b"}")
        body: dict[str, Any] = {key: [render(item) for item in chunk]} if chunk else {}
        if token_out:
            body["nextPageToken"] = token_out
        return Reply(200, body)

    def _rendered(self, sub: Submission) -> bytes:
        cached = self._render_cache.get(sub.id)
        if cached is None:
            cached = json.dumps(self.submission_json(sub), separators=(",", ":")).encode()
            self._render_cache[sub.id] = cached
        return cached

    # -- routes -----------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if request.path == "/token":
            return self.token(request)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return Reply(
                401, self.error_body(401, "Request had invalid authentication credentials.")
            )
        if request.method != "GET":
            return Reply(405, self.error_body(405, "method not allowed"))
        self._index()
        parts = [unquote(p) for p in request.path.split("/") if p]
        if parts[:1] != ["v1"]:
            return Reply(404, self.error_body(404, "Requested entity was not found."))
        parts = parts[1:]
        ds = self.dataset
        if parts == ["courses"]:
            states = request.query.get("courseStates")
            courses = [c for c in ds.courses if not states or c.state in states]
            return self.page(request, "courses", courses, self.course_json)
        if parts[:1] == ["courses"] and len(parts) >= 2:
            course = next((c for c in ds.courses if c.id == parts[1]), None)
            if course is None:
                return Reply(404, self.error_body(404, "Requested entity was not found."))
            rest = parts[2:]
            if not rest:
                return Reply(200, self.course_json(course))
            if rest == ["courseWork"]:
                states = request.query.get("courseWorkStates") or ["PUBLISHED"]
                works = [w for w in ds.coursework if w.course_id == course.id and w.state in states]
                return self.page(request, "courseWork", works, self.coursework_json)
            if rest == ["students"]:
                students = [s for s in ds.students if course.id in s.courses]
                return self.page(
                    request,
                    "students",
                    students,
                    lambda s: {
                        "courseId": course.id,
                        "userId": s.user_id,
                        "profile": self.profile_json(s),
                    },
                    default_size=30,
                )
            if len(rest) == 3 and rest[0] == "courseWork" and rest[2] == "studentSubmissions":
                cw = rest[1]
                if cw != "-" and (course.id, cw) not in self._works:
                    return Reply(404, self.error_body(404, "Requested entity was not found."))
                states = request.query.get("states")
                cache_key = (course.id, cw, tuple(states or ()))
                subs = self._listings.get(cache_key)
                if subs is None:
                    subs = [
                        s
                        for s in self._subs_by_course.get(course.id, [])
                        if (cw == "-" or s.cw_id == cw) and (not states or s.state in states)
                    ]
                    self._listings[cache_key] = subs
                return self.page(request, "studentSubmissions", subs, self.submission_json)
        if parts[:1] == ["userProfiles"] and len(parts) == 2:
            wanted = parts[1]
            if wanted == self.teacher_id and self.teacher_name is not None:
                given, family = self.teacher_name
                return Reply(
                    200,
                    {
                        "id": self.teacher_id,
                        "name": {
                            "givenName": given,
                            "familyName": family,
                            "fullName": f"{given} {family}",
                        },
                        "verifiedTeacher": True,
                    },
                )
            student = self._students.get(wanted) or next(
                (s for s in self._students.values() if (s.email or "").lower() == wanted.lower()),
                None,
            )
            if student is None:
                return Reply(403, self.error_body(403, "The caller does not have permission"))
            return Reply(200, self.profile_json(student))
        return Reply(404, self.error_body(404, "Requested entity was not found."))

    def token(self, request: Request) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            head, claims_b64, signature = form["assertion"].split(".")
            claims = json.loads(_b64decode(claims_b64))
            header = json.loads(_b64decode(head))
        except (KeyError, ValueError):
            return Reply(400, {"error": "invalid_grant", "error_description": "bad assertion"})
        if header.get("alg") != "RS256" or claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return Reply(400, {"error": "invalid_grant", "error_description": "bad audience"})
        if self.public_key is not None:
            try:
                self.public_key.verify(
                    _b64decode(signature),
                    f"{head}.{claims_b64}".encode(),
                    padding.PKCS1v15(),
                    hashes.SHA256(),
                )
            except InvalidSignature:
                return Reply(400, {"error": "invalid_grant", "error_description": "bad signature"})
        if int(claims.get("exp", 0)) < datetime.now(UTC).timestamp():
            return Reply(400, {"error": "invalid_grant", "error_description": "expired"})
        token = f"ya29.fake-{len(self.tokens) + 1}"
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # -- control ----------------------------------------------------------------------------

    def control(self, request: Request) -> Reply | None:
        parts = [p for p in request.path.split("/") if p][1:]
        if request.method != "POST" or len(parts) != 1:
            return None
        spec = json.loads(request.body or b"{}")
        if parts[0] == "submissions":
            self._index()
            user_id = spec.pop("userId", None)
            email = spec.pop("email", None)
            if email is not None:
                user_id = next(
                    (
                        s.user_id
                        for s in self._students.values()
                        if (s.email or "").lower() == str(email).lower()
                    ),
                    None,
                )
            sub_id = spec.pop("id", None)
            cw_id = spec.pop("courseWorkId", None)
            found = [
                s
                for s in self.dataset.submissions
                if (sub_id and s.id == sub_id)
                or (not sub_id and s.user_id == user_id and s.cw_id == cw_id)
            ]
            if not found:
                return Reply(404, {"error": "no such submission"})
            for key, value in spec.items():
                if not hasattr(found[0], key):
                    return Reply(400, {"error": f"unknown field {key}"})
                setattr(found[0], key, value)
            self.touch()
            return Reply(200, self.submission_json(found[0]))
        if parts[0] == "coursework":
            work = next((w for w in self.dataset.coursework if w.id == spec.get("id")), None)
            if work is None:
                work = CourseWork(**spec)
                self.dataset.coursework.append(work)
            else:
                for key, value in spec.items():
                    setattr(work, key, tuple(value) if key == "due" and value else value)
            self.touch()
            return Reply(200, self.coursework_json(work))
        return None
