"""Data sets behind the fake upstreams: one Zenefits company and its Google Classroom.

A :class:`Dataset` holds departments, locations, people (with employments), courses, course work,
students and submissions, compactly enough for 10,000 people and 240,000 submissions; the fakes
render the wire JSON from it on each request. :func:`synthetic` makes one of any size,
deterministically; :func:`demo` makes the one that matches ``compliance db seed-demo``.

The ``expected_*`` functions say what the database must hold after a complete sync of a data set
(employees, modules, results). They restate the mapping documented in docs/sync.md on their
own, so that the tests compare the database with the source row by row.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "Course",
    "CourseWork",
    "Dataset",
    "Department",
    "Employment",
    "Location",
    "Person",
    "Student",
    "Submission",
    "demo",
    "expected_employees",
    "expected_modules",
    "expected_results",
    "synthetic",
]


@dataclass
class Department:
    zid: str
    name: str


@dataclass
class Location:
    zid: str
    name: str
    street1: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None


@dataclass
class Employment:
    eid: str
    hire_date: str | None
    termination_date: str | None = None
    is_active: bool = True


@dataclass
class Person:
    zid: str
    first_name: str
    last_name: str
    work_email: str | None
    title: str | None = None
    status: str | None = "active"
    dept_zid: str | None = None
    loc_zid: str | None = None
    manager_zid: str | None = None
    employments: list[Employment] = field(default_factory=list)
    personal_email: str | None = None
    preferred_name: str | None = None
    date_of_birth: str | None = None  # YYYY-MM-DD


@dataclass
class Course:
    id: str
    name: str
    state: str = "ACTIVE"


@dataclass
class CourseWork:
    id: str
    course_id: str
    title: str
    due: tuple[int, int, int] | None = None
    #: Classroom's dueTime (UTC), (hours, minutes); 00:00 is sent as ``{}`` (proto3 JSON)
    due_time: tuple[int, int] = (23, 59)
    max_points: float | None = 100
    description: str | None = None
    state: str = "PUBLISHED"


@dataclass
class Student:
    user_id: str
    given_name: str
    family_name: str
    email: str | None
    courses: tuple[str, ...] = ()


@dataclass
class Submission:
    """Compact: rendered to the wire format by the fake on each request."""

    id: str
    course_id: str
    cw_id: str
    user_id: str
    state: str  # NEW | CREATED | TURNED_IN | RETURNED | RECLAIMED_BY_STUDENT
    grade: float | None = None
    turned_in: str | None = None  # RFC 3339; None = never turned in
    updated: str = "2025-01-06T09:00:00.000Z"
    late: bool = False
    #: earlier turn-ins (RFC 3339), each a TURNED_IN entry of the history before ``turned_in``
    earlier_turn_ins: list[str] = field(default_factory=list)
    #: grades the teacher gave before ``grade`` (regrades), each a gradeHistory entry
    earlier_grades: list[float] = field(default_factory=list)


@dataclass
class Dataset:
    company_id: str
    company_name: str
    departments: list[Department]
    locations: list[Location]
    people: list[Person]
    courses: list[Course]
    coursework: list[CourseWork]
    students: list[Student]
    submissions: list[Submission]
    #: Users Classroom knows (userProfiles.get) but who are on no roster.
    extra_profiles: list[Student] = field(default_factory=list)


def _ts(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dana",
    "Eli",
    "Fatima",
    "Gus",
    "Hana",
    "Ivan",
    "Jade",
    "Kofi",
    "Lena",
    "Milo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Yara",
]
LAST = [
    "Okafor",
    "Marsh",
    "Ruiz",
    "Chen",
    "Novak",
    "Haddad",
    "Kowalski",
    "Mensah",
    "Sato",
    "Berg",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ito",
    "Jensen",
    "Khan",
    "Larsen",
]
TITLES = [
    "Medical Assistant",
    "Nurse",
    "Front Desk",
    "Physician",
    "Billing Specialist",
    "Technician",
]


def synthetic(
    people: int = 50,
    *,
    departments: int = 4,
    locations: int = 3,
    courses: int = 1,
    courseworks: int = 4,
    seed: int = 7,
    domain: str = "acme.test",
    company_id: str = "55501",
    unmatched_students: int = 1,
    terminated_share: float = 0.04,
    leave_share: float = 0.02,
) -> Dataset:
    """A company of ``people`` with a Classroom of ``courses`` x ``courseworks`` course works and
    one submission per student and course work (so ``people * courses * courseworks`` of them,
    plus the unmatched students'). Deterministic for a seed."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    depts = [
        Department(str(7700 + i), name)
        for i, name in enumerate(
            [
                "Clinical",
                "Front Office",
                "Billing",
                "Imaging",
                "Laboratory",
                "Pharmacy",
                "IT",
                "HR",
            ][:departments]
            + [f"Department {n}" for n in range(8, departments)]
        )
    ]
    locs = [
        Location(str(8800 + i), name, f"{100 + i} Main St", name.split()[0], "MI", f"4810{i}")
        for i, name in enumerate(
            (["Ann Arbor", "Wixom", "Plymouth"] + [f"Site {n}" for n in range(3, locations)])[
                :locations
            ]
        )
    ]
    managers = max(1, people // 50)
    persons: list[Person] = []
    for i in range(people):
        zid = str(9100001 + i)
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        roll = rng.random()
        status = (
            "terminated"
            if roll < terminated_share
            else "leave_of_absence"
            if roll < terminated_share + leave_share
            else "active"
        )
        hire = date(2015, 1, 1) + timedelta(days=rng.randrange(0, 3650))
        employments = [Employment(str(3300001 + 2 * i), hire.isoformat())]
        if i % 17 == 5:  # a rehire: an older, ended employment first
            employments.insert(
                0,
                Employment(
                    str(3300000 + 2 * i),
                    (hire - timedelta(days=900)).isoformat(),
                    (hire - timedelta(days=200)).isoformat(),
                    False,
                ),
            )
        if status == "terminated":
            employments[-1].termination_date = (hire + timedelta(days=400)).isoformat()
            employments[-1].is_active = False
        manager = (
            None if i == 0 else (str(9100001) if i < managers else str(9100001 + i % managers))
        )
        persons.append(
            Person(
                zid=zid,
                first_name=first,
                last_name=f"{last}{i}" if people > len(FIRST) else last,
                work_email=f"{first}.{last}{i}@{domain}".lower(),
                title=TITLES[i % len(TITLES)] if i % 13 != 4 else None,
                status=status,
                dept_zid=depts[i % len(depts)].zid if depts and i % 29 != 3 else None,
                loc_zid=locs[i % len(locs)].zid if locs else None,
                manager_zid=manager,
                employments=employments,
                personal_email=f"{first}{i}@mail.test".lower(),
                preferred_name=first,
            )
        )
    course_list = [Course(str(702745463000 + c), f"Compliance {2025 + c}") for c in range(courses)]
    works: list[CourseWork] = []
    for c, course in enumerate(course_list):
        for w in range(courseworks):
            month = w % 12 + 1
            works.append(
                CourseWork(
                    id=str(702745464000 + c * 1000 + w),
                    course_id=course.id,
                    title=f"{date(2025, month, 1):%B} {2025 + c + w // 12} training {w + 1}",
                    due=(2025 + c + w // 12, month, 28),
                    max_points=[100, 100, 50, 100][w % 4],
                    description=f"Monthly compliance training {w + 1}.",
                )
            )
    students = [
        Student(
            str(104455000000000000000 + i),
            p.first_name,
            p.last_name,
            (p.work_email or "").upper() if i % 11 == 2 else p.work_email,
            tuple(c.id for c in course_list),
        )
        for i, p in enumerate(persons)
    ]
    for u in range(unmatched_students):
        students.append(
            Student(
                str(104466000000000000000 + u),
                "Guest",
                f"Learner{u}",
                f"guest{u}@elsewhere.test",
                tuple(c.id for c in course_list),
            )
        )
    subs: list[Submission] = []
    base = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    n = 0
    for work in works:
        for s in students:
            if work.course_id not in s.courses:
                continue
            n += 1
            roll = rng.random()
            updated = base + timedelta(minutes=n)
            turned = base + timedelta(minutes=n, seconds=30)
            max_points = work.max_points or 100
            if roll < 0.55:
                state, grade = "RETURNED", round(rng.uniform(0.85, 1.0) * max_points, 2)
            elif roll < 0.65:
                state, grade = "RETURNED", round(rng.uniform(0.4, 0.75) * max_points, 2)
            elif roll < 0.75:
                state, grade = "TURNED_IN", None
            elif roll < 0.8:
                state, grade = "TURNED_IN", round(rng.uniform(0.8, 1.0) * max_points, 2)
            elif roll < 0.9:
                state, grade = "CREATED", None
            else:
                state, grade = "NEW", None
            subs.append(
                Submission(
                    id=f"Cg4I{n:010d}",
                    course_id=work.course_id,
                    cw_id=work.id,
                    user_id=s.user_id,
                    state=state,
                    grade=grade,
                    turned_in=_ts(turned) if state in ("TURNED_IN", "RETURNED") else None,
                    updated=_ts(updated),
                )
            )
    return Dataset(
        company_id=company_id,
        company_name="Acme Medical",
        departments=depts,
        locations=locs,
        people=persons,
        courses=course_list,
        coursework=works,
        students=students,
        submissions=subs,
    )


def demo(
    today: date | None = None,
    results: Mapping[tuple[str, str], tuple[float, datetime]] | None = None,
) -> Dataset:
    """The data set of ``compliance fake-upstreams``: the organisation of ``compliance db
    seed-demo`` (compliance/seed.py) as Zenefits and Google Classroom would hold it on ``today``
    (default: today in the organisation's zone).

    The same people (Zenefits ids ``zf-<n>``, e-mails, names, titles, departments after the
    demo's move, locations, managers, employments with their hire dates: two for the rehired
    person), departments (``zdep-<code>``) and locations (``zloc-<key>``), the courses of the demo
    year's twelve modules (the seed's course and course-work ids, names and due dates), every
    employee a student (the seed's Classroom user ids) plus one guest who is nobody's employee,
    and a submission per student and module: RETURNED with the seed's grade and turn-in time where
    ``results`` (from :func:`compliance.seed.demo_upstream_state`) has one, else CREATED for
    modules already due and NEW for later ones.
    """
    from compliance import seed

    today = today or datetime.now(seed.DEMO_ZONE).date()
    cal = seed.demo_calendar(today)
    results = results or {}
    depts = [Department(f"zdep-{code.lower()}", name) for _key, name, code, *_ in seed.DEPARTMENTS]
    dept_of = {key: f"zdep-{code.lower()}" for key, _name, code, *_ in seed.DEPARTMENTS}
    locs = [Location(f"zloc-{key}", name, street1=address) for key, name, address in seed.LOCATIONS]
    people = seed.people()
    zid = {p.key: f"zf-{1001 + p.index}" for p in people}

    def employments(p: seed.Person) -> list[Employment]:
        current = Employment(f"{3300001 + p.index}", cal.start_date(p).isoformat())
        if p.key != cal.rehired:
            return [current]
        earlier = Employment(f"{3390001 + p.index}", cal.first_start_date(p).isoformat(),
                             termination_date=cal.leave_day.isoformat(), is_active=False)
        return [earlier, current]  # fmt: skip

    persons = [
        Person(
            zid=zid[p.key],
            first_name=p.first,
            last_name=p.last,
            work_email=p.email,
            title=p.title,
            status="active",
            dept_zid=dept_of[cal.department(p)],
            loc_zid=f"zloc-{seed.LOCATION_CYCLE[p.index % len(seed.LOCATION_CYCLE)]}",
            manager_zid=zid[p.manager] if p.manager else None,
            employments=employments(p),
            preferred_name=p.first,
        )
        for p in people
        if cal.start_date(p) <= today
    ]
    courses = {
        m.course_id: Course(m.course_id, f"Monthly compliance training {m.key[:4]}")
        for m in cal.modules
    }
    works = [
        CourseWork(
            id=m.coursework_id,
            course_id=m.course_id,
            title=m.name,
            due=(m.due.year, m.due.month, m.due.day),
            max_points=100,
            description=m.description,
        )
        for m in cal.modules
        if m.introduced <= today
    ]
    course_ids = tuple(courses)
    students = [
        Student(seed.classroom_user_id(p), p.first, p.last, p.email, course_ids)
        for p in people
    ]  # fmt: skip
    students.append(
        Student("104466000000000000000", "Guest", "Learner", "guest.learner@example.org",
                course_ids)
    )  # fmt: skip
    submissions: list[Submission] = []
    n = 0
    for work in works:
        assert work.due is not None
        due = date(*work.due)
        for student in students:
            n += 1
            sub_id = f"Dm{work.id}{n:06d}"
            result = results.get((student.user_id, work.id))
            if result is not None:
                grade, turned = result
                submissions.append(
                    Submission(sub_id, work.course_id, work.id, student.user_id, "RETURNED",
                               grade=grade, turned_in=_ts(turned),
                               updated=_ts(turned + timedelta(days=2)))
                )  # fmt: skip
            else:
                state = "NEW" if due >= today else "CREATED"
                submissions.append(
                    Submission(sub_id, work.course_id, work.id, student.user_id, state,
                               updated=_ts(datetime.combine(min(due, today), datetime.min.time(),
                                                            tzinfo=UTC)))
                )  # fmt: skip
    return Dataset(
        company_id="55501",
        company_name=seed.DEMO_NAME,
        departments=depts,
        locations=locs,
        people=persons,
        courses=list(courses.values()),
        coursework=works,
        students=students,
        submissions=submissions,
    )


# -- what a complete sync must produce ------------------------------------------------------

STATUS = {
    "active": "active",
    "leave_of_absence": "inactive",
    "requested": "inactive",
    "setup": "inactive",
    "terminated": "terminated",
    "deleted": "terminated",
}


def hire_date(person: Person) -> str | None:
    """The active employment's hire date, else the most recent one."""
    dated = [e for e in person.employments if e.hire_date]
    if not dated:
        return None
    active = [e for e in dated if e.is_active or e.termination_date is None]
    pool = active or dated
    return max(e.hire_date for e in pool if e.hire_date)


def expected_employees(ds: Dataset) -> dict[str, dict[str, Any]]:
    """zenefits id -> the employee a complete sync makes of that person."""
    dept = {d.zid: d.name for d in ds.departments}
    loc = {x.zid: x.name for x in ds.locations}
    out: dict[str, dict[str, Any]] = {}
    for p in ds.people:
        status = STATUS.get((p.status or "").lower())
        if status is None:
            continue
        out[p.zid] = {
            "zenefits_id": p.zid,
            "email": p.work_email or p.personal_email,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "job_title": p.title,
            "status": status,
            "department": dept.get(p.dept_zid) if p.dept_zid else None,
            "location": loc.get(p.loc_zid) if p.loc_zid else None,
            "manager_zenefits_id": p.manager_zid,
            "start_date": hire_date(p),
        }
    return out


def expected_modules(ds: Dataset) -> dict[tuple[str, str], dict[str, Any]]:
    """(course id, course-work id) -> the module a complete sync makes of that course work."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for w in ds.coursework:
        due = date(*w.due).isoformat() if w.due else None
        out[(w.course_id, w.id)] = {
            "name": w.title,
            "due_date": due,
            "month_key": due[:7] if due else None,
            "active": w.state == "PUBLISHED",
            "classroom_max_points": w.max_points,
        }
    return out


def _score(grade: float, max_points: float | None) -> Decimal:
    if max_points:
        value = Decimal(str(round(grade, 2))) / Decimal(str(max_points)) * 100
        value = max(Decimal(0), min(Decimal(100), value))
    else:
        value = Decimal(str(round(grade, 2)))
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected_results(ds: Dataset) -> dict[str, dict[str, Any]]:
    """submission id -> {email, cw, score, completion, grade} for every result a complete sync
    records (TURNED_IN/RETURNED with a grade, of a student who is an employee)."""
    emails = {
        (p.work_email or "").lower() for p in ds.people if STATUS.get((p.status or "").lower())
    }
    by_user = {s.user_id: s for s in ds.students}
    works = {(w.course_id, w.id): w for w in ds.coursework}
    out: dict[str, dict[str, Any]] = {}
    for sub in ds.submissions:
        student = by_user.get(sub.user_id)
        work = works.get((sub.course_id, sub.cw_id))
        if student is None or work is None or (student.email or "").lower() not in emails:
            continue
        if sub.state not in ("TURNED_IN", "RETURNED") or sub.grade is None:
            continue
        out[sub.id] = {
            "email": (student.email or "").lower(),
            "course_id": sub.course_id,
            "cw_id": sub.cw_id,
            "score": _score(sub.grade, work.max_points),
            "grade": Decimal(str(round(sub.grade, 2))).quantize(Decimal("0.01")),
            "completion": sub.turned_in or sub.updated,
        }
    return out
