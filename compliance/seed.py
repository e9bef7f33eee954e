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

Deterministic: every id is a UUIDv5 of a stable name, dates are fixed (start dates) or derived
from the year of the modules (the current year unless ``year`` is given). Once the database has
given every employee their assignments, 85 in 100 of those due before the seed date get a
passing result (the same ones on every run: a hash of employee and module picks them).
Idempotent: every row
is an upsert on its primary key that updates only columns whose value differs, so a second run
writes nothing. Rows are written as the connecting role (the owner, which bypasses RLS); the
database's rules fire as for any writer (new employees get their assignments, tier, requirements
and stats from the engine, not from this file).
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

__all__ = ["DEMO_DOMAIN", "DEMO_SLUG", "DEMO_USERS", "demo_id", "seed_demo"]

DEMO_SLUG = "annarbor-medical"
DEMO_DOMAIN = "annarbor-medical.test"
DEMO_NAME = "Ann Arbor Family Medicine"
DEMO_TIMEZONE = "America/Detroit"
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


def _start_date(person: Person) -> date:
    """A fixed hire date: managers between 2012 and 2016, staff between 2015 and 2025."""
    if person.key == "administrator" or person.key.endswith("-manager"):
        return date(2012, 3, 5) + timedelta(days=(person.index * 173) % 1500)
    return date(2015, 1, 12) + timedelta(days=(person.index * 211) % 3900)


def _rows(year: int) -> Iterable[tuple[str, list[dict[str, Any]]]]:
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
    course = f"{CLASSROOM_COURSE_PREFIX}{year}"
    yield (
        "app.training_modules",
        [
            {
                "org_id": org,
                "id": demo_id("module", f"{year}-{month:02d}"),
                "month_key": f"{year}-{month:02d}",
                "name": name,
                "due_date": _last_day(year, month),
                "classroom_course_id": course,
                "classroom_coursework_id": f"{year}{month:02d}1187",
                "classroom_url": f"https://classroom.google.com/c/{course}/a/{year}{month:02d}1187/details",
                "description": description,
                "estimated_minutes": minutes,
                "passing_score": 80,
                "max_attempts": 3,
                "required_for_new_hires": new_hires,
                "grace_period_days": 7,
                "validity_days": validity,
                "active": True,
            }
            for month, name, minutes, new_hires, validity, description in MODULES
        ],
    )
    rules = []
    for key, *_ in DEPARTMENTS:
        wanted = dict(RULES_ALL)
        if key in CLINICAL:
            wanted.update(RULES_CLINICAL)
        if key in ("front-desk", "nursing", "physicians"):
            wanted.update(RULES_PATIENT_FACING)
        if key == "front-desk":
            wanted[12] = "standard"
        for month, priority in sorted(wanted.items()):
            rules.append(
                {
                    "org_id": org,
                    "id": demo_id("rule", f"{key}/{year}-{month:02d}"),
                    "department_id": demo_id("department", key),
                    "module_id": demo_id("module", f"{year}-{month:02d}"),
                    "required": priority != "optional",
                    "priority": priority,
                    "grace_days": 7,
                    "reminder_days_before": 14 if priority == "critical" else 7,
                    "completion_target": 100 if priority == "critical" else 95,
                    "effective_start": date(year, 1, 1),
                    "effective_end": None,
                }
            )
    yield "app.department_training_requirements", rules
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
        "app.compliance_requirements",
        [
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
                "module_id": demo_id("module", f"{year}-{month:02d}") if month else None,
                "validity_days": validity,
                "review_required": rtype != "training",
                "active": True,
            }
            for tier, key, name, rtype, month, category, difficulty, points, validity in (
                REQUIREMENTS
            )
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
    yield (
        "app.employees",
        [
            {
                "org_id": org,
                "id": demo_id("employee", p.key),
                "zenefits_id": f"zf-{1001 + p.index}",
                "email": p.email,
                "first_name": p.first,
                "last_name": p.last,
                "department_id": demo_id("department", p.department),
                "location_id": demo_id("location", LOCATION_CYCLE[p.index % len(LOCATION_CYCLE)]),
                "job_title": p.title,
                "start_date": _start_date(p),
                "status": "active",
                "manager_id": demo_id("employee", p.manager) if p.manager else None,
                "classroom_user_id": f"1{(p.index * 7919 + 104729) % 10**20:020d}",
            }
            for p in people()
        ],
    )
    names = {p.key: f"{p.first} {p.last}" for p in people()}
    yield (
        "app.app_users",
        [
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
        ],
    )


# Results for the assignments the database created: of those due before the seed date, 85 in
# 100 are completed (chosen by a hash of employee and module, so the same ones every time), a
# few days before their due date, with a passing score between 80 and 100. Only assignments
# without a result are touched, so a second run the same day changes nothing.
_RESULTS = """
    with picked as materialized (
        select a.org_id, a.id,
               ('x' || substr(md5(e.zenefits_id || '/' || m.month_key), 1, 7))::bit(28)::int as h
        from app.training_assignments a
        join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
        join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
        where a.org_id = %(org)s and a.due_date < %(today)s and a.score is null
          and a.status in ('not_started', 'in_progress', 'overdue')
          and e.zenefits_id is not null and m.month_key is not null
    )
    update app.training_assignments a
    set score = 80 + r.h %% 21,
        completion_date = (a.due_date - r.h %% 6) + time '10:30' at time zone %(tz)s,
        status = 'completed'
    from picked r
    where a.org_id = r.org_id and a.id = r.id and r.h %% 100 < 85
"""


def seed_demo(
    conn: psycopg.Connection[Any], *, year: int | None = None, today: date | None = None
) -> None:
    """Load the demo organisation and its users into the database behind ``conn``.

    ``year`` is the year of the twelve monthly modules (default: the current year); ``today``
    the seed date (default: the organisation's today, its local date as the database answers
    it), before which most assignments get a passing result. Runs in a transaction (a savepoint
    if one is open); the caller commits.
    """
    if today is None:
        with conn.cursor(row_factory=tuple_row) as cur:
            row = cur.execute("select app.today_in(%s)", [DEMO_TIMEZONE]).fetchone()
        assert row is not None
        today = row[0]
    assert today is not None
    year = year or today.year
    with conn.transaction():
        # The organisation goes live on 1 January: the rules assign as of that day (due dates
        # never before it), so the results below have a year of due dates to fall on.
        conn.execute(
            "select set_config('app.today', %s, true)", [min(date(year, 1, 1), today).isoformat()]
        )
        for table, rows in _rows(year):
            key = ("id",) if table == "app.organizations" else ("org_id", "id")
            _upsert(conn, table, rows, key)
        # The rows above are new in this transaction: give the planner their numbers.
        conn.execute("select set_config('app.today', '', true)")
        conn.execute("analyze app.employees, app.training_modules, app.training_assignments")
        conn.execute(
            _RESULTS.encode(),
            {"org": demo_id("organization", DEMO_SLUG), "today": today, "tz": DEMO_TIMEZONE},
        )
