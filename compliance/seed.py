"""Demo data for `compliance db seed-demo` and `compliance dev up`.

One realistic organisation, **Ann Arbor Family Medicine** (slug ``annarbor-medical``), with three
locations (Ann Arbor, Wixom, Plymouth), six departments, 60 employees (a manager per department,
every manager reporting to the practice administrator), the twelve monthly training modules of
the year, department training rules, three compliance tiers with requirements of all four types
and job-role mappings, and one login of every application role:

    superadmin@annarbor-medical.test   superadmin  (Margaret Chen, practice administrator)
    hr@annarbor-medical.test           hr_admin    (Priya Raman, HR generalist)
    manager@annarbor-medical.test      manager     (Karen Whitfield, nurse manager)
    employee@annarbor-medical.test     employee    (Jordan Ellis, nurse, reports to Karen)
    viewer@annarbor-medical.test       viewer      (Daniel Brooks, external compliance auditor)

The demo tells a believable year up to the seed day (default: today in America/Detroit; see
"the demo's calendar" below): go-live of long-standing staff hired over many years, modules
introduced month by month, new hires, about nine in ten results on time, a few late by days, a
handful open, one exemption, recertification windows of the annual modules opening, one
department move, one mid-year department rule and one rehire. The year is played in order with
the engine's day pinned to each event's date, so every assignment gets the due date the rules
gave it on that day; nothing is due before its module existed.

Deterministic for a given day: every id is a UUIDv5 of a stable name, and results are picked by a
hash of person and module. A second run writes nothing. Rows are written as the connecting role
(the owner, which bypasses RLS); the database's rules fire as for any writer (employees get their
assignments, tier, requirements and stats from the engine, not from this file).
"""

from __future__ import annotations

import calendar
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

__all__ = ["DEMO_DOMAIN", "DEMO_SLUG", "DEMO_USERS", "demo_id", "seed_demo"]

DEMO_SLUG = "annarbor-medical"
DEMO_DOMAIN = "annarbor-medical.test"
DEMO_NAME = "Ann Arbor Family Medicine"
DEMO_TIMEZONE = "America/Detroit"
DEMO_ZONE = ZoneInfo(DEMO_TIMEZONE)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, DEMO_DOMAIN)

#: The demo logins: e-mail -> (application role, key of the linked employee or None).
DEMO_USERS: dict[str, tuple[str, str | None]] = {
    f"superadmin@{DEMO_DOMAIN}": ("superadmin", "administrator"),
    f"hr@{DEMO_DOMAIN}": ("hr_admin", "hr-generalist"),
    f"manager@{DEMO_DOMAIN}": ("manager", "nursing-manager"),
    f"employee@{DEMO_DOMAIN}": ("employee", "jordan-ellis"),
    f"viewer@{DEMO_DOMAIN}": ("viewer", None),
}


def demo_id(kind: str, key: str) -> uuid.UUID:
    """The stable id of a demo row (``demo_id("employee", "jordan-ellis")``)."""
    return uuid.uuid5(_NAMESPACE, f"{kind}/{key}")


# -- the organisation -------------------------------------------------------------------------

LOCATIONS = [
    ("ann-arbor", "Ann Arbor", "2350 Washtenaw Ave, Ann Arbor, MI 48104"),
    ("wixom", "Wixom", "28700 Beck Rd, Wixom, MI 48393"),
    ("plymouth", "Plymouth", "900 W Ann Arbor Trail, Plymouth, MI 48170"),
]

# Where people work: three in seven in Ann Arbor, two in Wixom, two in Plymouth.
LOCATION_CYCLE = ["ann-arbor", "wixom", "ann-arbor", "plymouth", "ann-arbor", "wixom", "plymouth"]

# key, name, code, manager title, staff titles (cycled), head count (manager included)
DEPARTMENTS = [
    (
        "front-desk",
        "Front Desk",
        "FD",
        "Front Desk Manager",
        [
            "Patient Services Representative",
            "Receptionist",
            "Scheduling Coordinator",
            "Referral Coordinator",
        ],
        11,
    ),
    (
        "nursing",
        "Nursing",
        "NUR",
        "Nurse Manager",
        [
            "Registered Nurse",
            "Licensed Practical Nurse",
            "Medical Assistant",
            "Certified Medical Assistant",
        ],
        17,
    ),
    (
        "physicians",
        "Physicians",
        "PHY",
        "Medical Director",
        ["Family Physician", "Physician Assistant", "Nurse Practitioner"],
        10,
    ),
    (
        "billing",
        "Billing",
        "BIL",
        "Billing Manager",
        ["Billing Specialist", "Medical Coder", "Insurance Verification Specialist"],
        9,
    ),
    (
        "laboratory",
        "Laboratory",
        "LAB",
        "Laboratory Supervisor",
        ["Medical Laboratory Technician", "Phlebotomist"],
        9,
    ),
    (
        "administration",
        "Administration",
        "ADM",
        "Practice Administrator",
        ["HR Generalist", "Compliance Officer", "Office Manager"],
        4,
    ),
]
CLINICAL = {"nursing", "physicians", "laboratory"}

# People with a fixed name (the demo logins and the managers); everyone else is generated.
NAMED = {
    "administrator": ("Margaret", "Chen"),
    "hr-generalist": ("Priya", "Raman"),
    "front-desk-manager": ("Luis", "Ortega"),
    "nursing-manager": ("Karen", "Whitfield"),
    "physicians-manager": ("Samuel", "Adeyemi"),
    "billing-manager": ("Heather", "Kowalski"),
    "laboratory-manager": ("Vincent", "Nguyen"),
    "jordan-ellis": ("Jordan", "Ellis"),
}
FIRST_NAMES = [
    "Emily",
    "Michael",
    "Aisha",
    "David",
    "Sofia",
    "James",
    "Olivia",
    "Ethan",
    "Grace",
    "Noah",
    "Hannah",
    "Mateo",
    "Chloe",
    "Benjamin",
    "Zoe",
    "Daniel",
    "Leah",
    "Andrew",
    "Maya",
    "Ryan",
    "Nora",
    "Tyler",
    "Amara",
    "Caleb",
    "Lily",
    "Marcus",
    "Elena",
    "Owen",
    "Ruby",
    "Isaac",
]
LAST_NAMES = [
    "Anderson",
    "Brennan",
    "Castillo",
    "Dawson",
    "Eriksen",
    "Fitzgerald",
    "Garcia",
    "Hoffman",
    "Ibrahim",
    "Jensen",
    "Kaplan",
    "Lindqvist",
    "Morales",
    "Novak",
    "O'Connell",
    "Patel",
    "Quinn",
    "Rasmussen",
    "Sullivan",
    "Tanaka",
    "Underwood",
    "Valdez",
    "Walsh",
    "Xu",
    "Young",
    "Zimmerman",
    "Bishop",
    "Delgado",
    "Fischer",
    "Hughes",
]

# The twelve monthly modules: month, name, minutes, required for new hires, validity days,
# description.
MODULES = [
    (
        1,
        "HIPAA Privacy & Security",
        45,
        True,
        365,
        "Protected health information: uses, disclosures, minimum necessary, breach reporting.",
    ),
    (
        2,
        "OSHA Bloodborne Pathogens",
        40,
        True,
        365,
        "Exposure control plan, universal precautions, sharps safety and post-exposure steps.",
    ),
    (
        3,
        "Fire Safety & Evacuation",
        25,
        True,
        None,
        "RACE and PASS, extinguisher use, evacuation routes of each location.",
    ),
    (
        4,
        "Workplace Violence Prevention",
        30,
        False,
        None,
        "Recognising escalation, de-escalation, reporting and the panic-button procedure.",
    ),
    (
        5,
        "Infection Control & Hand Hygiene",
        35,
        False,
        None,
        "Standard and transmission-based precautions, hand hygiene moments, PPE.",
    ),
    (
        6,
        "Hazard Communication (GHS)",
        25,
        False,
        None,
        "Safety data sheets, labels and pictograms, chemical storage in the laboratory.",
    ),
    (
        7,
        "Patient Rights & Confidentiality",
        30,
        False,
        None,
        "Patient rights, consent, confidentiality at the front desk and on the phone.",
    ),
    (
        8,
        "Emergency Preparedness",
        30,
        False,
        None,
        "Severe weather, power loss, active threat and medical emergency procedures.",
    ),
    (
        9,
        "Corporate Compliance & FWA",
        40,
        False,
        None,
        "Fraud, waste and abuse, the False Claims Act, Stark and anti-kickback basics.",
    ),
    (
        10,
        "Cybersecurity Awareness",
        25,
        False,
        None,
        "Phishing, passwords and MFA, device security, reporting an incident.",
    ),
    (
        11,
        "Harassment Prevention",
        45,
        True,
        None,
        "Michigan and federal rules, bystander intervention, how to report.",
    ),
    (
        12,
        "Cultural Competency & Health Equity",
        30,
        False,
        None,
        "Communication across cultures, interpreters, implicit bias in care.",
    ),
]
CLASSROOM_COURSE_PREFIX = "68420193"

# Department rules: module month -> priority, for every department or a set of them.
RULES_ALL = {
    1: "critical",
    3: "high",
    4: "standard",
    8: "standard",
    9: "standard",
    10: "high",
    11: "high",
    12: "optional",
}
RULES_CLINICAL = {2: "critical", 5: "critical", 6: "high"}
RULES_PATIENT_FACING = {7: "high"}  # front desk, nursing, physicians

TIERS = [
    (
        "level-1",
        "Level 1 - Foundation",
        1,
        True,
        0,
        0,
        "Every employee: privacy, safety and conduct basics.",
    ),
    (
        "level-2",
        "Level 2 - Clinical Practitioner",
        2,
        False,
        80,
        60,
        "Licensed and clinical staff: infection control, licensure, BLS.",
    ),
    (
        "level-3",
        "Level 3 - Compliance Leader",
        3,
        False,
        95,
        150,
        "Providers and leaders: advanced certification and programme oversight.",
    ),
]
# tier, key, name, type, module month (training), category, difficulty, points, validity days
REQUIREMENTS = [
    (
        "level-1",
        "hipaa-training",
        "HIPAA Privacy & Security training",
        "training",
        1,
        "Privacy",
        "basic",
        20,
        None,
    ),
    (
        "level-1",
        "fire-training",
        "Fire Safety & Evacuation training",
        "training",
        3,
        "Safety",
        "basic",
        10,
        None,
    ),
    (
        "level-1",
        "handbook",
        "Signed Employee Handbook acknowledgement",
        "document",
        None,
        "HR",
        "basic",
        10,
        None,
    ),
    (
        "level-1",
        "confidentiality",
        "Annual confidentiality attestation",
        "attestation",
        None,
        "Privacy",
        "basic",
        10,
        365,
    ),
    (
        "level-2",
        "bbp-training",
        "OSHA Bloodborne Pathogens training",
        "training",
        2,
        "Safety",
        "standard",
        20,
        None,
    ),
    (
        "level-2",
        "infection-training",
        "Infection Control training",
        "training",
        5,
        "Clinical",
        "standard",
        20,
        None,
    ),
    (
        "level-2",
        "bls",
        "BLS/CPR certification (American Heart Association)",
        "certification",
        None,
        "Clinical",
        "advanced",
        30,
        730,
    ),
    (
        "level-2",
        "license",
        "Current professional license on file",
        "document",
        None,
        "Licensure",
        "standard",
        20,
        365,
    ),
    (
        "level-2",
        "coi",
        "Conflict of interest disclosure",
        "attestation",
        None,
        "Compliance",
        "basic",
        10,
        365,
    ),
    ("level-3", "acls", "ACLS certification", "certification", None, "Clinical", "expert", 40, 730),
    (
        "level-3",
        "fwa-training",
        "Corporate Compliance & FWA training",
        "training",
        9,
        "Compliance",
        "advanced",
        30,
        None,
    ),
    (
        "level-3",
        "committee",
        "Compliance committee charter review",
        "document",
        None,
        "Compliance",
        "advanced",
        20,
        None,
    ),
    (
        "level-3",
        "oversight",
        "Compliance programme oversight attestation",
        "attestation",
        None,
        "Compliance",
        "expert",
        20,
        365,
    ),
]
ROLE_TIERS = {
    "Practice Administrator": "level-3",
    "Compliance Officer": "level-3",
    "Medical Director": "level-3",
    "Family Physician": "level-3",
    "Nurse Practitioner": "level-3",
    "Physician Assistant": "level-2",
    "Nurse Manager": "level-2",
    "Registered Nurse": "level-2",
    "Licensed Practical Nurse": "level-2",
    "Laboratory Supervisor": "level-2",
    "Medical Laboratory Technician": "level-2",
    "Phlebotomist": "level-2",
}


@dataclass(frozen=True)
class Person:
    key: str
    first: str
    last: str
    department: str
    title: str
    manager: str | None
    index: int

    @property
    def email(self) -> str:
        local = f"{self.first}.{self.last}".lower().replace("'", "")
        return f"{local}@{DEMO_DOMAIN}"


def people() -> list[Person]:
    """The 60 employees, managers before the people they manage."""
    found: list[Person] = []
    generated = 0
    administrator = Person(
        "administrator",
        *NAMED["administrator"],
        "administration",
        "Practice Administrator",
        None,
        0,
    )
    found.append(administrator)
    for key, _name, _code, manager_title, titles, heads in DEPARTMENTS:
        if key == "administration":
            manager_key = "administrator"
        else:
            manager_key = f"{key}-manager"
            found.append(
                Person(
                    manager_key,
                    *NAMED[manager_key],
                    key,
                    manager_title,
                    "administrator",
                    len(found),
                )
            )
        for n in range(heads - 1):
            if key == "administration" and n == 0:
                person_key, first, last = "hr-generalist", *NAMED["hr-generalist"]
            elif key == "nursing" and n == 0:
                person_key, first, last = "jordan-ellis", *NAMED["jordan-ellis"]
            else:
                first = FIRST_NAMES[generated % len(FIRST_NAMES)]
                shift = generated // len(FIRST_NAMES) * 7
                last = LAST_NAMES[(generated + shift) % len(LAST_NAMES)]
                person_key = f"{first}-{last}".lower().replace("'", "")
                generated += 1
            found.append(
                Person(
                    person_key, first, last, key, titles[n % len(titles)], manager_key, len(found)
                )
            )
    return found


# -- the demo's calendar -----------------------------------------------------------------------
#
# The demo tells a year of the practice's life up to the seed day T (the organisation's local
# day): the practice went live on the first of the month twelve months before T's month, importing
# its long-standing staff; the twelve monthly modules were introduced month by month (the first at
# go-live); people were hired during the year; one receptionist moved to Nursing, a Laboratory rule
# was added mid-year, a billing specialist left and was rehired, a nurse on leave was exempted;
# about nine in ten results came in on time, a few late by days, a handful are open.


@dataclass(frozen=True)
class DemoModule:
    """One of the twelve modules of the demo year, as introduced."""

    number: int  # 1..12: its place in MODULES (rules and requirements name modules by it)
    key: str  # month key, YYYY-MM
    name: str
    minutes: int
    new_hires: bool
    validity: int | None
    description: str
    introduced: date
    due: date

    @property
    def course_id(self) -> str:
        return f"{CLASSROOM_COURSE_PREFIX}{self.key[:4]}"

    @property
    def coursework_id(self) -> str:
        return f"{self.key.replace('-', '')}1187"


@dataclass(frozen=True)
class DemoCalendar:
    """When each thing of the demo's year happened, for a seed day ``today``."""

    today: date
    go_live: date
    modules: tuple[DemoModule, ...]
    moved: str  # person key: Front Desk -> Nursing on `move_day`
    move_day: date
    rule_day: date  # Laboratory must take Patient Rights from this day
    rehired: str  # person key: terminated on `leave_day`, rehired on `rehire_day`
    leave_day: date
    rehire_day: date
    on_leave: tuple[str, ...]  # person keys: the first with an open assignment is exempted

    def module(self, number: int) -> DemoModule:
        return self.modules[number - 1]

    def start_date(self, person: Person) -> date:
        """The hire date of the person's current employment."""
        if person.key == self.rehired:
            return self.rehire_day
        if person.index % 9 == 4 and person.manager and not person.key.endswith("-manager"):
            # hired during the demo year, spread over it
            return self.go_live + timedelta(days=20 + (person.index * 53) % 300)
        return _long_standing_start(person)

    def first_start_date(self, person: Person) -> date:
        """The hire date of the person's first employment (differs for the rehire)."""
        if person.key == self.rehired:
            return _long_standing_start(person)
        return self.start_date(person)

    def department(self, person: Person) -> str:
        """The department at the seed day."""
        return "nursing" if person.key == self.moved else person.department


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def _long_standing_start(person: Person) -> date:
    """A fixed hire date years ago: managers between 2012 and 2016, staff between 2015 and 2024."""
    if person.key == "administrator" or person.key.endswith("-manager"):
        return date(2012, 3, 5) + timedelta(days=(person.index * 173) % 1500)
    return date(2015, 1, 12) + timedelta(days=(person.index * 211) % 3500)


def demo_calendar(today: date) -> DemoCalendar:
    """The demo's year ending on ``today`` (deterministic for a given day)."""
    this_month = today.replace(day=1)
    go_live = _add_months(this_month, -12)
    modules = []
    for index, (number, name, minutes, new_hires, validity, description) in enumerate(MODULES):
        month = _add_months(this_month, index - 11)
        modules.append(
            DemoModule(
                number=number,
                key=f"{month.year}-{month.month:02d}",
                name=name,
                minutes=minutes,
                new_hires=new_hires,
                validity=validity,
                description=description,
                introduced=go_live if index == 0 else month,
                due=_last_day(month.year, month.month),
            )
        )
    staff = [p for p in people() if p.manager and not p.key.endswith("-manager")]
    desk = [p for p in staff if p.department == "front-desk" and p.index % 9 != 4]
    billing = [p for p in staff if p.department == "billing" and p.index % 9 != 4]
    nurses = [
        p for p in staff
        if p.department == "nursing" and p.index % 9 != 4 and p.key != "jordan-ellis"
    ]  # fmt: skip
    return DemoCalendar(
        today=today,
        go_live=go_live,
        modules=tuple(modules),
        moved=desk[1].key,
        move_day=_add_months(this_month, -4) + timedelta(days=9),
        rule_day=_add_months(this_month, -3) + timedelta(days=12),
        rehired=billing[1].key,
        leave_day=_add_months(this_month, -8) + timedelta(days=1),  # a module just assigned
        rehire_day=_add_months(this_month, -2) + timedelta(days=3),
        on_leave=tuple(
            p.key for p in nurses[2:] + nurses[:2]
            + [p for p in staff if p.department not in ("nursing", "billing")]
        ),
    )


def planned_result(
    person: Person, module_key: str, due: date, grace: int, assigned: date, today: date
) -> tuple[datetime, float] | None:
    """The demo's result of one assignment, or None while it stays open.

    About 88 in 100 are completed on time (between the day assigned and the due date), 6 late by
    one to six days past the grace, and the rest stay open; an open one older than six weeks was
    completed late after all (by one to three weeks). Nothing is completed after ``today``.
    """
    h = int(hashlib.md5(f"{person.key}/{module_key}/{due}".encode()).hexdigest()[:8], 16)  # noqa: S324
    outcome, spread = h % 100, h // 100
    if outcome < 88:
        day = assigned + timedelta(days=1 + spread % max(1, (due - assigned).days))
    elif outcome < 94:
        day = due + timedelta(days=grace + 1 + spread % 6)
    elif due + timedelta(days=grace + 45) < today:
        day = due + timedelta(days=grace + 8 + spread % 14)
    else:
        return None
    if day > today or day < assigned:
        return None
    at = datetime.combine(day, time(9, 30), tzinfo=DEMO_ZONE) + timedelta(minutes=spread % 600)
    return at, float(80 + (h >> 3) % 21)


# -- writing ------------------------------------------------------------------------------------


def _upsert(
    conn: psycopg.Connection[Any],
    table: str,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str] = ("org_id", "id"),
) -> None:
    """Insert the rows; on a key conflict update only the columns whose value differs.

    One statement for all the rows, so the database's statement-level rules run once per table.
    """
    if not rows:
        return
    columns = list(rows[0])
    schema, name = table.split(".")
    target = sql.Identifier(schema, name)
    updates = [c for c in columns if c not in key]
    query = sql.SQL(
        "insert into {target} as t ({cols}) values ({vals}) on conflict ({key}) do update "
        "set {sets} where ({old}) is distinct from ({new})"
    ).format(
        target=target,
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        vals=sql.SQL("), (").join(
            sql.SQL(", ").join(sql.Placeholder() * len(columns)) for _ in rows
        ),
        key=sql.SQL(", ").join(map(sql.Identifier, key)),
        sets=sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in updates
        ),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in updates),
        new=sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in updates),
    )
    conn.execute(query, [row[c] for row in rows for c in columns])


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _catalog_rows(cal: DemoCalendar) -> Iterable[tuple[str, list[dict[str, Any]]]]:
    """What exists from go-live on: the organisation, its places, tiers and requirements."""
    org = demo_id("organization", DEMO_SLUG)
    yield (
        "app.organizations",
        [
            {
                "id": org,
                "name": DEMO_NAME,
                "slug": DEMO_SLUG,
                "timezone": DEMO_TIMEZONE,
                "default_passing_score": 80,
                "audit_retention_months": 72,
                "escalation_days": 14,
                "reminder_days": 7,
            }
        ],
    )
    yield (
        "app.locations",
        [
            {
                "org_id": org,
                "id": demo_id("location", key),
                "name": name,
                "address": address,
                "zenefits_id": f"zloc-{key}",
            }
            for key, name, address in LOCATIONS
        ],
    )
    yield (
        "app.departments",
        [
            {
                "org_id": org,
                "id": demo_id("department", key),
                "name": name,
                "code": code,
                "zenefits_id": f"zdep-{code.lower()}",
            }
            for key, name, code, *_ in DEPARTMENTS
        ],
    )
    yield (
        "app.compliance_tiers",
        [
            {
                "org_id": org,
                "id": demo_id("tier", key),
                "name": name,
                "level": level,
                "description": description,
                "min_completion_pct": pct,
                "min_points": points,
                "is_default": default,
            }
            for key, name, level, default, pct, points, description in TIERS
        ],
    )
    yield (
        "app.role_tier_mappings",
        [
            {
                "org_id": org,
                "id": demo_id("role-tier", title.lower()),
                "job_role": title,
                "tier_id": demo_id("tier", tier),
            }
            for title, tier in sorted(ROLE_TIERS.items())
        ],
    )


def _module_rows(
    cal: DemoCalendar, module: DemoModule
) -> Iterable[tuple[str, list[dict[str, Any]]]]:
    """A module as introduced, with the department rules and requirements that name it."""
    org = demo_id("organization", DEMO_SLUG)
    course = module.course_id
    yield (
        "app.training_modules",
        [
            {
                "org_id": org,
                "id": demo_id("module", module.key),
                "month_key": module.key,
                "name": module.name,
                "due_date": module.due,
                "classroom_course_id": course,
                "classroom_coursework_id": module.coursework_id,
                "classroom_url": (
                    f"https://classroom.google.com/c/{course}/a/{module.coursework_id}/details"
                ),
                "description": module.description,
                "estimated_minutes": module.minutes,
                "passing_score": 80,
                "max_attempts": 3,
                "required_for_new_hires": module.new_hires,
                "grace_period_days": 7,
                "validity_days": module.validity,
                "active": True,
            }
        ],
    )
    rules = []
    for key, *_ in DEPARTMENTS:
        priority = _rules_of(key).get(module.number)
        if priority is None or (key, module.number) == MID_YEAR_RULE:
            continue
        rules.append(_rule(key, module, priority, module.introduced))
    yield "app.department_training_requirements", rules
    yield "app.compliance_requirements", _requirement_rows(lambda n: n == module.number, cal)


#: The department rule added mid-year (Laboratory must take Patient Rights & Confidentiality).
MID_YEAR_RULE = ("laboratory", 7)


def _rules_of(department: str) -> dict[int, str]:
    wanted = dict(RULES_ALL)
    if department in CLINICAL:
        wanted.update(RULES_CLINICAL)
    if department in ("front-desk", "nursing", "physicians"):
        wanted.update(RULES_PATIENT_FACING)
    if department == "front-desk":
        wanted[12] = "standard"
    if department == MID_YEAR_RULE[0]:
        wanted[MID_YEAR_RULE[1]] = "high"
    return wanted


def _rule(department: str, module: DemoModule, priority: str, start: date) -> dict[str, Any]:
    return {
        "org_id": demo_id("organization", DEMO_SLUG),
        "id": demo_id("rule", f"{department}/{module.key}"),
        "department_id": demo_id("department", department),
        "module_id": demo_id("module", module.key),
        "required": priority != "optional",
        "priority": priority,
        "grace_days": 7,
        "reminder_days_before": 14 if priority == "critical" else 7,
        "completion_target": 100 if priority == "critical" else 95,
        "effective_start": start,
        "effective_end": None,
    }


def _requirement_rows(modules: Any, cal: DemoCalendar) -> list[dict[str, Any]]:
    """The requirements whose module number passes ``modules`` (None: those without a module)."""
    org = demo_id("organization", DEMO_SLUG)
    return [
        {
            "org_id": org,
            "id": demo_id("requirement", key),
            "name": name,
            "description": f"{name} ({rtype}).",
            "type": rtype,
            "category": category,
            "difficulty": difficulty,
            "points": points,
            "tier_id": demo_id("tier", tier),
            "module_id": demo_id("module", cal.module(month).key) if month else None,
            "validity_days": validity,
            "review_required": rtype != "training",
            "active": True,
        }
        for tier, key, name, rtype, month, category, difficulty, points, validity in REQUIREMENTS
        if (month is None and modules is None) or (month is not None and modules and modules(month))
    ]


def _employee_row(cal: DemoCalendar, person: Person, *, department: str, start: date,
                  status: str = "active") -> dict[str, Any]:  # fmt: skip
    return {
        "org_id": demo_id("organization", DEMO_SLUG),
        "id": demo_id("employee", person.key),
        "zenefits_id": f"zf-{1001 + person.index}",
        "email": person.email,
        "first_name": person.first,
        "last_name": person.last,
        "department_id": demo_id("department", department),
        "location_id": demo_id("location", LOCATION_CYCLE[person.index % len(LOCATION_CYCLE)]),
        "job_title": person.title,
        "start_date": start,
        "status": status,
        "manager_id": demo_id("employee", person.manager) if person.manager else None,
        "classroom_user_id": classroom_user_id(person),
    }


def classroom_user_id(person: Person) -> str:
    """The person's Google Classroom user id (the fake Classroom has the same)."""
    return f"1{(person.index * 7919 + 104729) % 10**20:020d}"


def _user_rows() -> list[dict[str, Any]]:
    org = demo_id("organization", DEMO_SLUG)
    names = {p.key: f"{p.first} {p.last}" for p in people()}
    return [
        {
            "org_id": org,
            "id": demo_id("user", email),
            "email": email,
            "display_name": names[employee] if employee else "Daniel Brooks",
            "app_role": role,
            "employee_id": demo_id("employee", employee) if employee else None,
            "active": True,
        }
        for email, (role, employee) in DEMO_USERS.items()
    ]


# -- the timeline --------------------------------------------------------------------------------
#
# The seed plays the year in order, each step in a transaction of its own day: the engine's day is
# pinned (app.today) to the step's date, so the database's rules give every assignment the due
# date it would have had on that day (a module introduced in March is due at the end of March; a
# person moved in August owes Nursing's modules from August). Results are recorded on their own
# day, in order; the daily jobs run for each of the last 60 days.

def _pin(conn: psycopg.Connection[Any], day: date) -> None:
    conn.execute("select set_config('app.today', %s, true)", [day.isoformat()])


def _steps(cal: DemoCalendar) -> list[tuple[date, int, str, Any]]:
    """(day, order within the day, kind, what) for every event of the year."""
    steps: list[tuple[date, int, str, Any]] = [(cal.go_live, 0, "go_live", None)]
    for module in cal.modules:
        steps.append((module.introduced, 1, "module", module))
    for person in people():
        start = cal.first_start_date(person)
        if start >= cal.go_live:
            steps.append((start, 2, "hire", person))
    steps.append((cal.move_day, 3, "move", cal.moved))
    steps.append((cal.rule_day, 3, "rule", MID_YEAR_RULE))
    steps.append((cal.leave_day, 3, "leave", cal.rehired))
    steps.append((cal.rehire_day, 3, "rehire", cal.rehired))
    steps.append((cal.today - timedelta(days=3), 3, "exempt", cal.on_leave))
    return sorted((s for s in steps if s[0] <= cal.today), key=lambda s: (s[0], s[1]))


def _play(
    conn: psycopg.Connection[Any], cal: DemoCalendar, day: date, kind: str, what: Any
) -> None:
    org = demo_id("organization", DEMO_SLUG)
    if kind == "go_live":
        for table, rows in _catalog_rows(cal):
            key = ("id",) if table == "app.organizations" else ("org_id", "id")
            _upsert(conn, table, rows, key)
        _upsert(conn, "app.compliance_requirements", _requirement_rows(None, cal))
        staff = [p for p in people() if cal.first_start_date(p) < cal.go_live]
        rows = [
            _employee_row(cal, p, department=p.department, start=cal.first_start_date(p))
            for p in staff
        ]
        _upsert(conn, "app.employees", rows)
    elif kind == "module":
        for table, rows in _module_rows(cal, what):
            _upsert(conn, table, rows)
    elif kind == "hire":
        person = what
        _upsert(conn, "app.employees",
                [_employee_row(cal, person, department=person.department, start=day)])  # fmt: skip
    elif kind == "move":
        conn.execute(
            "update app.employees set department_id = %s where org_id = %s and id = %s",
            [demo_id("department", "nursing"), org, demo_id("employee", what)],
        )
    elif kind == "rule":
        department, number = what
        module = cal.module(number)
        _upsert(conn, "app.department_training_requirements",
                [_rule(department, module, "high", day)])  # fmt: skip
    elif kind == "leave":
        conn.execute(
            "update app.employees set status = 'terminated' where org_id = %s and id = %s",
            [org, demo_id("employee", what)],
        )
    elif kind == "rehire":
        conn.execute(
            "update app.employees set status = 'active', start_date = %s"
            " where org_id = %s and id = %s",
            [day, org, demo_id("employee", what)],
        )
    elif kind == "exempt":
        # the first of the candidates (in order) with an open required assignment: its latest
        conn.execute(
            """update app.training_assignments a
               set status = 'exempted',
                   exemption_reason = 'On approved medical leave; HR will reassign on return.'
               where a.id = (
                   select b.id
                   from unnest(%s::uuid[]) with ordinality as c(employee_id, n)
                   join app.training_assignments b
                     on b.org_id = %s and b.employee_id = c.employee_id and b.is_required
                    and b.status in ('not_started', 'in_progress', 'overdue')
                   order by c.n, b.due_date desc
                   limit 1)""",
            [[demo_id("employee", key) for key in what], org],
        )


def _new_assignments(
    conn: psycopg.Connection[Any], seen: dict[uuid.UUID, date], day: date
) -> list[dict[str, Any]]:
    """The assignments created since the last look (noted as assigned on ``day``)."""
    rows = conn.execute(
        """select a.id, e.zenefits_id, m.month_key, a.due_date, a.grace_days
           from app.training_assignments a
           join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
           join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
           where a.org_id = %s and a.is_required""",
        [demo_id("organization", DEMO_SLUG)],
    ).fetchall()
    fresh = []
    for row in rows:
        if row[0] not in seen:
            seen[row[0]] = day
            fresh.append({"id": row[0], "zid": row[1], "module": row[2], "due": row[3],
                          "grace": row[4], "assigned": day})  # fmt: skip
    return fresh


_RECORD = """
    update app.training_assignments a
    set score = r.score, completion_date = r.at, status = 'completed'
    from unnest(%s::uuid[], %s::numeric[], %s::timestamptz[]) as r(id, score, at),
         app.employees e
    where a.org_id = %s and a.id = r.id and a.is_required
      and a.status in ('not_started', 'in_progress', 'overdue')
      and e.org_id = a.org_id and e.id = a.employee_id and e.status = 'active'
"""


def seed_demo(conn: psycopg.Connection[Any], *, today: date | None = None) -> None:
    """Load the demo organisation and its users into the database behind ``conn``.

    ``today`` is the seed day (default: today in the organisation's zone); the demo's year ends
    on it. A second run writes nothing: when the organisation exists, only rows that differ from
    what the seed would write are updated (none, unless someone changed them). Runs in
    transactions of its own (one per day of the timeline); the caller commits the last.
    """
    org = demo_id("organization", DEMO_SLUG)
    if today is None:
        row = conn.execute("select (now() at time zone %s)::date", [DEMO_TIMEZONE]).fetchone()
        assert row is not None
        today = row[0]
    cal = demo_calendar(today)
    exists = conn.execute("select 1 from app.organizations where id = %s", [org]).fetchone()
    if exists:
        with conn.transaction():
            _pin(conn, today)
            _upsert(conn, "app.app_users", _user_rows())
            conn.execute("select app.billing_demo_subscription(%s)", [org])
        return
    by_zid = {f"zf-{1001 + p.index}": p for p in people()}
    seen: dict[uuid.UUID, date] = {}
    planned: dict[date, list[tuple[uuid.UUID, float, datetime]]] = {}
    steps = _steps(cal)
    days = sorted({s[0] for s in steps} | {cal.go_live + timedelta(days=n)
                   for n in range((today - cal.go_live).days + 1)})  # fmt: skip
    for day in days:
        todays_steps = [s for s in steps if s[0] == day]
        results = planned.pop(day, [])
        daily = day >= today - timedelta(days=60)
        if not (todays_steps or results or daily):
            continue
        with conn.transaction():
            _pin(conn, day)
            for _day, _order, kind, what in todays_steps:
                _play(conn, cal, day, kind, what)
            if todays_steps:
                for a in _new_assignments(conn, seen, day):
                    result = planned_result(by_zid[a["zid"]], a["module"], a["due"], a["grace"],
                                            a["assigned"], today)  # fmt: skip
                    if result is not None:
                        at, score = result
                        planned.setdefault(at.date(), []).append((a["id"], score, at))
                results = results + planned.pop(day, [])
            if results:
                conn.execute(
                    _RECORD,
                    [[r[0] for r in results], [r[1] for r in results],
                     [r[2] for r in results], org],
                )
            if daily:
                conn.execute("select app.run_daily_jobs(%s, %s)", [org, day])
    with conn.transaction():
        _pin(conn, today)
        _upsert(conn, "app.app_users", _user_rows())
        # an active subscription (the demo's billing; idempotent)
        conn.execute("select app.billing_demo_subscription(%s)", [org])


def demo_upstream_state(
    conn: psycopg.Connection[Any],
) -> tuple[date, dict[tuple[str, str], tuple[float, datetime]]] | None:
    """What the demo's Google Classroom holds, read from a seeded database: the demo's day (today
    in the organisation's zone, within the seed's month) and each completed result by (Classroom
    user id, course work id). None when the demo organisation is not there."""
    org = demo_id("organization", DEMO_SLUG)
    row = conn.execute(
        "select max(month_key) from app.training_modules where org_id = %s", [org]
    ).fetchone()
    if row is None or row[0] is None:
        return None
    year, month = (int(part) for part in row[0].split("-"))
    local = conn.execute("select (now() at time zone %s)::date", [DEMO_TIMEZONE]).fetchone()
    assert local is not None
    # the demo as it was seeded: today within the seed's month, else that month's last day
    today = local[0] if (local[0].year, local[0].month) == (year, month) else _last_day(year, month)
    results = {
        (r[0], r[1]): (float(r[2]), r[3])
        for r in conn.execute(
            """select e.classroom_user_id, m.classroom_coursework_id, a.score, a.completion_date
               from app.training_assignments a
               join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
               join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
               where a.org_id = %s and a.status = 'completed' and a.score is not null
                 and e.classroom_user_id is not null and m.classroom_coursework_id is not null
               order by a.completion_date""",
            [org],
        )
    }
    return today, results
