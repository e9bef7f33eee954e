"""`compliance doctor`: is this installation fit to run? Each problem comes with its fix.

Checks, in order (a check that needs the database is skipped when it cannot be reached):

settings        DATABASE_URL, JWT_SECRET and every other setting the processes read
                (``sync.settings`` / ``web.settings`` when present) are set and well formed
database        DATABASE_URL reaches PostgreSQL
postgresql      the server is 15.9 or newer within its major version (15.9, 16.5, 17.1: the
                releases that fixed row security under role switching on pooled connections)
extensions      plpgsql, and every extension the schema's files create, are installed
roles           authenticator, anon, authenticated, sync_worker, web_app, analyst exist with
                the attributes of db/migrations/0001 (no superuser, no bypassrls, login as
                designed) and authenticator may become anon and authenticated
migrations      every file of db/migrations is applied (yoyo's table) and none is unknown
functions       every function of db/functions exists with the body its file gives
policies        every policy db/policies creates exists; every table forces row security
postgrest       when POSTGREST_URL is set: it answers, serves api.health, shares JWT_SECRET
web             when WEB_URL is set: GET /health answers 200
upstreams       ZENEFITS_API_KEY, ZENEFITS_COMPANY_ID, GOOGLE_SERVICE_ACCOUNT_KEY (well formed) and
                COMPLIANCE_ORG_SLUG are set; that organisation exists
organisations   notes (not problems) the organisations no sync has run for: new ones whose
                upstreams are not configured yet (``compliance org create`` made them), and
                the worker's own before its first sync

:func:`run_checks` returns :class:`Finding` objects; :func:`render` prints them; the exit status
is 0 only when no finding is a problem.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
from psycopg.rows import dict_row
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from compliance.db import redact_dsn
from compliance.migrate import DEFAULT_DB_DIR
from compliance.settings import Settings

__all__ = [
    "MIN_SERVER_VERSIONS",
    "ROLE_SPECS",
    "Finding",
    "Level",
    "RoleSpec",
    "render",
    "run_checks",
    "split_statements",
]

# -- what "well" means -----------------------------------------------------------------------

#: Oldest acceptable minor release per major version: the row-security fixes for role switching
#: on pooled connections (CVE-2024-10976) shipped in 15.9, 16.5 and 17.1. Below 15 the schema
#: itself cannot load (security_invoker views).
MIN_SERVER_VERSIONS: dict[int, int] = {15: 150009, 16: 160005, 17: 170001}
OLDEST_MAJOR = 15


@dataclass(frozen=True)
class RoleSpec:
    """The attributes a database role must have (None: either way is fine)."""

    name: str
    login: bool | None
    inherit: bool | None = None
    member_of: tuple[str, ...] = ()
    purpose: str = ""


#: The roles of db/migrations/0001_foundation.sql (DESIGN §6).
ROLE_SPECS: tuple[RoleSpec, ...] = (
    RoleSpec("authenticator", login=True, inherit=False, member_of=("anon", "authenticated"),
             purpose="PostgREST logs in with it and switches to anon/authenticated"),
    RoleSpec("anon", login=False, purpose="requests without a token (health only)"),
    RoleSpec("authenticated", login=False, purpose="every API user; RLS decides"),
    RoleSpec("sync_worker", login=True, purpose="the sync workers: staging and sync.apply_*"),
    RoleSpec("web_app", login=True, inherit=False, member_of=("authenticated",),
             purpose="the web app: reads events, writes export audit entries"),
    RoleSpec("analyst", login=False, purpose="read-only analytics views"),
)  # fmt: skip

#: Extensions needed whatever the files say (plpgsql runs the rules; it ships with PostgreSQL).
BASE_EXTENSIONS: tuple[str, ...] = ("plpgsql",)
#: Schemas whose tables must have row security enabled and forced.
RLS_SCHEMAS: tuple[str, ...] = ("app", "audit", "sync")
#: Modules that may define a Settings subclass with more variables (sync workers, web app).
SETTINGS_MODULES: tuple[str, ...] = ("sync.settings", "web.settings")

MIGRATE_FIX = "compliance db migrate   (applies migrations, re-applies functions and policies)"

#: How to fix a missing or malformed environment variable.
SETTING_FIXES: dict[str, str] = {
    "DATABASE_URL": "export DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/compliance "
    "(bin/up prints the one of the local cluster)",
    "JWT_SECRET": "export JWT_SECRET=$(python3 -c "
    "'import secrets; print(secrets.token_urlsafe(48))') and give PostgREST the same value "
    "(PGRST_JWT_SECRET)",
    "JWT_AUDIENCE": "unset JWT_AUDIENCE, or set it to the 'aud' PostgREST expects (jwt-aud)",
    "JWT_LIFETIME_SECONDS": "export JWT_LIFETIME_SECONDS=3600 "
    "(a whole number of seconds, at most 30 days)",
    "AUTHENTICATOR_PASSWORD": "unset it, or set the password PostgREST's db-uri uses",
    "ZENEFITS_API_KEY": "export ZENEFITS_API_KEY=<the API key of your Zenefits app> "
    "(Zenefits: Company Settings > API access; in demo mode bin/up sets a fake one)",
    "ZENEFITS_COMPANY_ID": "export ZENEFITS_COMPANY_ID=<your company's id in Zenefits, digits>",
    "GOOGLE_SERVICE_ACCOUNT_KEY": "export GOOGLE_SERVICE_ACCOUNT_KEY=/path/to/service-account.json "
    "(or its JSON text): a Google Cloud service account with domain-wide delegation for the "
    "Classroom read-only scopes",
    "COMPLIANCE_ORG_SLUG": "export COMPLIANCE_ORG_SLUG=<slug of the organisation to sync> "
    "(psql: select slug from app.organizations)",
    "COMPLIANCE_SYNC_INTERVAL_HOURS": "export COMPLIANCE_SYNC_INTERVAL_HOURS=24 (hours, > 0)",
    "COMPLIANCE_SYNC_RETRY_ATTEMPTS": "export COMPLIANCE_SYNC_RETRY_ATTEMPTS=3 (attempts, > 0)",
}


class Level(Enum):
    OK = "ok"
    PROBLEM = "PROBLEM"
    SKIPPED = "skipped"
    NOTE = "note"  # worth knowing, not a problem (e.g. an organisation not synced yet)


@dataclass
class Finding:
    """One result: which check, what was found, and (for a problem) how to fix it."""

    check: str
    level: Level
    message: str
    fix: str | None = None

    @property
    def is_problem(self) -> bool:
        return self.level is Level.PROBLEM


def _ok(check: str, message: str) -> Finding:
    return Finding(check, Level.OK, message)


def _problem(check: str, message: str, fix: str) -> Finding:
    return Finding(check, Level.PROBLEM, message, fix)


def _skipped(check: str, message: str) -> Finding:
    return Finding(check, Level.SKIPPED, message)


# -- settings ----------------------------------------------------------------------------------


def _settings_classes() -> Iterator[type[BaseSettings]]:
    yield Settings
    for name in SETTINGS_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseSettings)
                and value is not Settings
                and value.__module__ == module.__name__
            ):
                yield value


def _setting_problem(cls: type[BaseSettings], error: Mapping[str, Any]) -> Finding:
    loc = error.get("loc") or ()
    name = str(loc[0]).upper() if loc else "SETTINGS"
    info = cls.model_fields.get(str(loc[0]).lower()) if loc else None
    meaning = info.description if info is not None and info.description else ""
    if error.get("type") == "missing":
        message = f"{name} is not set" + (f": {meaning}" if meaning else "")
    else:
        text = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        message = f"{name} is malformed: {text}" + (f" (expected: {meaning})" if meaning else "")
    fix = SETTING_FIXES.get(name, f"set {name} in the environment (see .env.example)")
    return _problem("settings", message, fix)


def check_settings(env: Mapping[str, str]) -> list[Finding]:
    """Every settings class validates against ``env``; DATABASE_URL and JWT_SECRET are set."""
    findings: list[Finding] = []
    seen: set[str] = set()
    checked: list[str] = []
    with _environment(env):
        for cls in _settings_classes():
            checked.append(f"{cls.__module__}.{cls.__name__}")
            try:
                cls()
            except ValidationError as exc:
                for error in exc.errors(include_input=False):
                    finding = _setting_problem(cls, error)
                    if finding.message not in seen:
                        seen.add(finding.message)
                        findings.append(finding)
    for name in ("DATABASE_URL", "JWT_SECRET"):
        if not env.get(name) and not any(f.message.startswith(f"{name} ") for f in findings):
            info = Settings.model_fields[name.lower()]
            findings.append(
                _problem("settings", f"{name} is not set: {info.description}", SETTING_FIXES[name])
            )
    if not findings:
        findings.append(_ok("settings", "valid (" + ", ".join(checked) + ")"))
    return findings


class _environment:
    """Temporarily replace os.environ with ``env`` (settings classes read os.environ)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._saved: dict[str, str] = {}

    def __enter__(self) -> None:
        self._saved = dict(os.environ)
        if self._saved != self._env:
            os.environ.clear()
            os.environ.update(self._env)

    def __exit__(self, *_exc: object) -> None:
        if dict(os.environ) != self._saved:
            os.environ.clear()
            os.environ.update(self._saved)


# -- upstream credentials ------------------------------------------------------------------------


def _service_account_problem(raw: str) -> str | None:
    """Why GOOGLE_SERVICE_ACCOUNT_KEY is unusable (None: looks right). Never echoes the value."""
    text = raw.strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        if not path.is_file():
            return "names no readable file (expected a path to a key file or its JSON text)"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            return f"file cannot be read: {exc.strerror}"
    try:
        info = json.loads(text)
    except ValueError:
        return "is not valid JSON"
    if not isinstance(info, dict):
        return "is not a JSON object"
    if info.get("type") != "service_account":
        return 'is not a service-account key ("type" is not "service_account")'
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        return "lacks " + ", ".join(missing)
    if "PRIVATE KEY" not in str(info.get("private_key")):
        return "has a private_key that is not a PEM key"
    return None


def check_upstreams(env: Mapping[str, str]) -> list[Finding]:
    """The credentials the sync workers need are present (the values are never printed)."""
    findings: list[Finding] = []
    if not env.get("ZENEFITS_API_KEY", "").strip():
        findings.append(
            _problem(
                "upstreams",
                "ZENEFITS_API_KEY is not set: the roster sync cannot call Zenefits",
                SETTING_FIXES["ZENEFITS_API_KEY"],
            )
        )
    if not env.get("ZENEFITS_COMPANY_ID", "").strip():
        findings.append(
            _problem(
                "upstreams",
                "ZENEFITS_COMPANY_ID is not set: the roster sync reads one company",
                SETTING_FIXES["ZENEFITS_COMPANY_ID"],
            )
        )
    raw = env.get("GOOGLE_SERVICE_ACCOUNT_KEY", "")
    if not raw.strip():
        findings.append(
            _problem(
                "upstreams",
                "GOOGLE_SERVICE_ACCOUNT_KEY is not set: the Classroom sync cannot sign in",
                SETTING_FIXES["GOOGLE_SERVICE_ACCOUNT_KEY"],
            )
        )
    elif (why := _service_account_problem(raw)) is not None:
        findings.append(
            _problem(
                "upstreams",
                f"GOOGLE_SERVICE_ACCOUNT_KEY {why}",
                SETTING_FIXES["GOOGLE_SERVICE_ACCOUNT_KEY"],
            )
        )
    if not env.get("COMPLIANCE_ORG_SLUG", "").strip():
        findings.append(
            _problem(
                "upstreams",
                "COMPLIANCE_ORG_SLUG is not set: the worker syncs one organisation",
                SETTING_FIXES["COMPLIANCE_ORG_SLUG"],
            )
        )
    if not findings:
        where = env.get("ZENEFITS_API_URL") or "https://api.zenefits.com"
        findings.append(
            _ok("upstreams", f"Zenefits key and Google service account present ({where})")
        )
    return findings


# -- the schema's files --------------------------------------------------------------------------

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def split_statements(text: str) -> list[str]:
    """Top-level SQL statements of a file, comments outside statements dropped.

    Knows line and block comments, quoted strings and identifiers, and dollar quotes, so a
    ``;`` inside a function body or a string does not end a statement.
    """
    statements: list[str] = []
    start = i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch in "'\"":
            i += 1
            while i < n:
                if text[i] == ch:
                    if i + 1 < n and text[i + 1] == ch:
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif ch == "$" and (match := _DOLLAR.match(text, i)) and not _in_word(text, i):
            tag = match.group(0)
            end = text.find(tag, match.end())
            i = n if end < 0 else end + len(tag)
        elif ch == ";":
            statements.append(text[start : i + 1])
            i += 1
            start = i
        else:
            i += 1
    if text[start:].strip():
        statements.append(text[start:])
    return [s for s in (_strip_leading_comments(s) for s in statements) if s]


def _in_word(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")


def _strip_leading_comments(statement: str) -> str:
    s = statement.strip()
    while True:
        if s.startswith("--"):
            s = s.split("\n", 1)[1].strip() if "\n" in s else ""
        elif s.startswith("/*") and "*/" in s:
            s = s.split("*/", 1)[1].strip()
        else:
            return s


_NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)'
_QUALIFIED = rf"(?P<name>{_NAME}(?:\s*\.\s*{_NAME})?)"
_CREATE_FUNCTION = re.compile(
    rf"^create\s+(?:or\s+replace\s+)?(?:function|procedure)\s+{_QUALIFIED}\s*\(", re.I
)
_CREATE_POLICY = re.compile(
    rf"^create\s+policy\s+(?P<policy>{_NAME})\s+on\s+(?:only\s+)?{_QUALIFIED}", re.I
)
_CREATE_EXTENSION = re.compile(
    rf"^create\s+extension\s+(?:if\s+not\s+exists\s+)?(?P<ext>{_NAME})", re.I
)


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _qualified(raw: str) -> tuple[str, str]:
    parts = [_unquote(p) for p in re.findall(_NAME, raw)]
    return ("public", parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _body(statement: str) -> str | None:
    """The dollar-quoted body of a CREATE FUNCTION statement (None for other forms)."""
    match = re.search(r"\bas\s+(\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$)", statement, re.I)
    if match is None:
        return None
    tag = match.group(1)
    end = statement.find(tag, match.end())
    return statement[match.end() : end] if end >= 0 else None


@dataclass
class SchemaFiles:
    """What the db/ folder says should exist in the database."""

    migrations: list[str] = field(default_factory=list)
    #: (schema, name) -> {file: body or None}; the last file that defines a name wins
    functions: dict[tuple[str, str], tuple[str, list[str | None]]] = field(default_factory=dict)
    #: (schema, table, policy) -> file
    policies: dict[tuple[str, str, str], str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def read_schema_files(db_dir: Path) -> SchemaFiles:
    files = SchemaFiles()
    migrations = db_dir / "migrations"
    if migrations.is_dir():
        files.migrations = sorted(p.stem for p in migrations.glob("*.sql"))
    for folder in ("migrations", "functions", "policies"):
        for path in sorted((db_dir / folder).glob("*.sql"), key=lambda p: p.name):
            label = f"db/{folder}/{path.name}"
            text = path.read_text(encoding="utf-8")
            bodies: dict[tuple[str, str], list[str | None]] = {}
            for statement in split_statements(text):
                if match := _CREATE_EXTENSION.match(statement):
                    files.extensions.setdefault(_unquote(match.group("ext")), label)
                if folder == "functions" and (match := _CREATE_FUNCTION.match(statement)):
                    key = _qualified(match.group("name"))
                    bodies.setdefault(key, []).append(_body(statement))
                elif folder == "policies" and (match := _CREATE_POLICY.match(statement)):
                    schema, table = _qualified(match.group("name"))
                    files.policies[(schema, table, _unquote(match.group("policy")))] = label
            for key, found in bodies.items():
                files.functions[key] = (label, found)
    return files


# -- database checks -------------------------------------------------------------------------------


def _version_text(num: int) -> str:
    return f"{num // 10000}.{num % 10000}"


def check_server_version(conn: psycopg.Connection[Any]) -> Finding:
    row = conn.execute(
        "select current_setting('server_version_num')::int as num, version() as text"
    ).fetchone()
    assert row is not None
    num: int = row["num"]
    major = num // 10000
    label = _version_text(num)
    if major < OLDEST_MAJOR:
        return _problem(
            "postgresql",
            f"PostgreSQL {label} is too old: the schema needs 15 or newer",
            "upgrade to PostgreSQL 15.9 or newer (Debian: apt-get install postgresql-15; "
            "docker: image postgres:15)",
        )
    minimum = MIN_SERVER_VERSIONS.get(major)
    if minimum is not None and num < minimum:
        return _problem(
            "postgresql",
            f"PostgreSQL {label} lacks the row-security fixes for role switching on pooled "
            f"connections (CVE-2024-10976, fixed in {_version_text(minimum)})",
            f"upgrade to PostgreSQL {_version_text(minimum)} or newer "
            f"(Debian: apt-get install --only-upgrade postgresql-{major}; docker: pull "
            f"postgres:{major})",
        )
    return _ok("postgresql", f"PostgreSQL {label}")


def check_extensions(conn: psycopg.Connection[Any], files: SchemaFiles) -> list[Finding]:
    wanted = {name: "PostgreSQL itself" for name in BASE_EXTENSIONS}
    wanted.update(files.extensions)
    rows = conn.execute(
        "select a.name, e.extversion is not null as installed"
        " from pg_available_extensions a left join pg_extension e on e.extname = a.name"
        " where a.name = any(%s)",
        [sorted(wanted)],
    ).fetchall()
    state = {r["name"]: r["installed"] for r in rows}
    findings: list[Finding] = []
    for name, source in sorted(wanted.items()):
        if state.get(name):
            continue
        if name in state:
            findings.append(
                _problem(
                    "extensions",
                    f"extension {name} (needed by {source}) is not installed in this database",
                    f"{MIGRATE_FIX}; or as a superuser: create extension {name}",
                )
            )
        else:
            findings.append(
                _problem(
                    "extensions",
                    f"extension {name} (needed by {source}) is not available on the server",
                    f"install its package on the database server (Debian: "
                    f"apt-get install postgresql-15-{name.replace('_', '-')}), then {MIGRATE_FIX}",
                )
            )
    if not findings:
        findings.append(_ok("extensions", "installed: " + ", ".join(sorted(wanted))))
    return findings


def check_roles(
    conn: psycopg.Connection[Any], specs: tuple[RoleSpec, ...] = ROLE_SPECS
) -> list[Finding]:
    rows = conn.execute(
        "select rolname, rolsuper, rolbypassrls, rolcanlogin, rolinherit, rolcreaterole,"
        " rolcreatedb from pg_roles where rolname = any(%s)",
        [[s.name for s in specs]],
    ).fetchall()
    roles = {r["rolname"]: r for r in rows}
    members = {
        (r["member"], r["grp"])
        for r in conn.execute(
            "select m.rolname as member, g.rolname as grp from pg_auth_members am"
            " join pg_roles m on m.oid = am.member join pg_roles g on g.oid = am.roleid"
            " where m.rolname = any(%s)",
            [[s.name for s in specs]],
        ).fetchall()
    }
    findings: list[Finding] = []
    for spec in specs:
        role = roles.get(spec.name)
        if role is None:
            findings.append(
                _problem(
                    "roles",
                    f"role {spec.name} is missing ({spec.purpose})",
                    f"{MIGRATE_FIX}; on a fresh database it creates every role",
                )
            )
            continue
        wrong: list[tuple[str, str]] = []
        if role["rolsuper"]:
            wrong.append(("is a superuser", "nosuperuser"))
        if role["rolbypassrls"]:
            wrong.append(("bypasses row security", "nobypassrls"))
        if role["rolcreaterole"]:
            wrong.append(("may create roles", "nocreaterole"))
        if role["rolcreatedb"]:
            wrong.append(("may create databases", "nocreatedb"))
        if spec.login is not None and role["rolcanlogin"] != spec.login:
            wrong.append(("cannot log in", "login") if spec.login else ("can log in", "nologin"))
        if spec.inherit is not None and role["rolinherit"] != spec.inherit:
            wrong.append(
                ("does not inherit", "inherit") if spec.inherit else ("inherits", "noinherit")
            )
        for attribute, option in wrong:
            findings.append(
                _problem(
                    "roles",
                    f"role {spec.name} {attribute}",
                    f"as a superuser: alter role {spec.name} {option}",
                )
            )
        for group in spec.member_of:
            if (spec.name, group) not in members:
                findings.append(
                    _problem(
                        "roles",
                        f"role {spec.name} is not a member of {group}",
                        f"as a superuser: grant {group} to {spec.name}",
                    )
                )
    if not findings:
        findings.append(_ok("roles", ", ".join(s.name for s in specs) + " as designed"))
    return findings


def check_migrations(conn: psycopg.Connection[Any], files: SchemaFiles) -> list[Finding]:
    table = conn.execute("select to_regclass('_yoyo_migration') as t").fetchone()
    if table is None or table["t"] is None:
        return [
            _problem(
                "migrations",
                "the database was never migrated (no _yoyo_migration table)",
                MIGRATE_FIX,
            )
        ]
    applied = {r["migration_id"] for r in conn.execute("select migration_id from _yoyo_migration")}
    pending = [m for m in files.migrations if m not in applied]
    unknown = sorted(applied - set(files.migrations))
    findings: list[Finding] = []
    if pending:
        findings.append(
            _problem(
                "migrations",
                f"{len(pending)} migration(s) not applied: {', '.join(pending)}",
                MIGRATE_FIX,
            )
        )
    if unknown:
        findings.append(
            _problem(
                "migrations",
                f"the database has migration(s) this checkout lacks: {', '.join(unknown)}",
                "run the code that matches the database (git pull / deploy the newer release); "
                "never delete files from db/migrations",
            )
        )
    if not findings:
        findings.append(_ok("migrations", f"{len(applied)} applied, none pending"))
    return findings


def check_functions(conn: psycopg.Connection[Any], files: SchemaFiles) -> list[Finding]:
    rows = conn.execute(
        "select n.nspname as schema, p.proname as name, p.prosrc as body"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname <> all('{pg_catalog,information_schema}')"
    ).fetchall()
    bodies: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        bodies.setdefault((r["schema"], r["name"]), set()).add(r["body"] or "")
    missing: list[str] = []
    stale: list[str] = []
    for key, (label, expected) in sorted(files.functions.items()):
        have = bodies.get(key)
        name = f"{key[0]}.{key[1]}"
        if have is None:
            missing.append(f"{name} ({label})")
        elif any(body is not None and body not in have for body in expected):
            stale.append(f"{name} ({label})")
    findings: list[Finding] = []
    if missing:
        findings.append(
            _problem(
                "functions",
                f"{len(missing)} function(s) of db/functions missing: {_some(missing)}",
                MIGRATE_FIX,
            )
        )
    if stale:
        findings.append(
            _problem(
                "functions",
                f"{len(stale)} function(s) differ from their file: {_some(stale)}",
                MIGRATE_FIX,
            )
        )
    if not findings:
        findings.append(_ok("functions", f"{len(files.functions)} function(s) match db/functions"))
    return findings


def _some(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_policies(conn: psycopg.Connection[Any], files: SchemaFiles) -> list[Finding]:
    have = {
        (r["schemaname"], r["tablename"], r["policyname"])
        for r in conn.execute("select schemaname, tablename, policyname from pg_policies")
    }
    missing = [
        f'"{p}" on {s}.{t} ({label})'
        for (s, t, p), label in sorted(files.policies.items())
        if (s, t, p) not in have
    ]
    open_tables = [
        f"{r['schema']}.{r['name']}"
        for r in conn.execute(
            "select n.nspname as schema, c.relname as name from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind in ('r', 'p') and n.nspname = any(%s)"
            " and not (c.relrowsecurity and c.relforcerowsecurity) order by 1, 2",
            [list(RLS_SCHEMAS)],
        )
    ]
    findings: list[Finding] = []
    if missing:
        findings.append(
            _problem(
                "policies",
                f"{len(missing)} policy(ies) of db/policies missing: {_some(missing)}",
                MIGRATE_FIX,
            )
        )
    if open_tables:
        findings.append(
            _problem(
                "policies",
                f"row security is not enabled and forced on: {_some(open_tables)}",
                "alter table <table> enable row level security, force row level security "
                "(in a new migration), then " + MIGRATE_FIX,
            )
        )
    if not findings:
        findings.append(
            _ok(
                "policies",
                f"{len(have)} policies present; every table of {', '.join(RLS_SCHEMAS)} "
                "forces row security",
            )
        )
    return findings


def check_organisation(conn: psycopg.Connection[Any], slug: str) -> Finding:
    """The organisation the worker syncs exists."""
    row = conn.execute("select name from app.organizations where slug = %s", [slug]).fetchone()
    if row is None:
        return _problem(
            "organisation",
            f"no organisation has the slug {slug!r} (COMPLIANCE_ORG_SLUG)",
            "set COMPLIANCE_ORG_SLUG to an existing slug (select slug from app.organizations), "
            "or create the organisation (compliance db seed-demo loads annarbor-medical)",
        )
    return _ok("organisation", f"{slug}: {row['name']}")


def check_unsynced_organisations(conn: psycopg.Connection[Any], slug: str) -> list[Finding]:
    """Organisations no sync has run for yet: new ones (``compliance org create``) whose
    upstreams are not configured yet, or the worker's own before its first sync."""
    rows = conn.execute(
        "select o.slug from app.organizations o"
        " where not exists (select from app.sync_runs r where r.org_id = o.id)"
        " order by o.created_at desc, o.slug"  # the newest first: usually the one being set up
    ).fetchall()
    findings: list[Finding] = []
    others = [r["slug"] for r in rows if r["slug"] != slug]
    if slug and any(r["slug"] == slug for r in rows):
        findings.append(
            Finding(
                "organisations",
                Level.NOTE,
                f"{slug} (COMPLIANCE_ORG_SLUG) has not been synced yet",
                "run `compliance sync all` (or start `compliance worker`, which syncs at once)",
            )
        )
    if others:
        worker = f"the worker syncs {slug}" if slug else "COMPLIANCE_ORG_SLUG is not set"
        findings.append(
            Finding(
                "organisations",
                Level.NOTE,
                f"{len(others)} organisation(s) with no upstreams configured yet, never synced"
                f" ({worker}): {_some(others)}",
                "for each, run a worker with COMPLIANCE_ORG_SLUG=<slug> and that organisation's"
                " ZENEFITS_API_KEY, ZENEFITS_COMPANY_ID, GOOGLE_SERVICE_ACCOUNT_KEY,"
                " GOOGLE_CLASSROOM_SUBJECT, GOOGLE_CLASSROOM_COURSE_ID, then `compliance sync all`",
            )
        )
    return findings


# -- PostgREST -------------------------------------------------------------------------------------


def check_postgrest(url: str | None, jwt_secret: str | None, timeout: float = 5.0) -> list[Finding]:
    if not url:
        return [_skipped("postgrest", "POSTGREST_URL not set (set it to check PostgREST)")]
    base = url.rstrip("/")
    fix_start = (
        f"start PostgREST (postgrest postgrest.conf, or docker compose up postgrest) and check "
        f"that POSTGREST_URL={base} is its address"
    )
    try:
        with httpx.Client(timeout=timeout) as client:
            health = client.get(f"{base}/rpc/health")
            findings: list[Finding] = []
            if health.status_code != 200:
                findings.append(
                    _problem(
                        "postgrest",
                        f"GET {base}/rpc/health answered {health.status_code}: "
                        f"{_short(health.text)}",
                        "check PostgREST's log; its db-uri must reach the database as "
                        "authenticator and db-schemas must be api; then " + MIGRATE_FIX,
                    )
                )
            if jwt_secret:
                token = jwt.encode(
                    {"sub": str(uuid.UUID(int=0)), "role": "authenticated",
                     "exp": int(time.time()) + 60},
                    jwt_secret,
                    algorithm="HS256",
                )  # fmt: skip
                probe = client.get(
                    f"{base}/rpc/health", headers={"Authorization": f"Bearer {token}"}
                )
                code = _json_code(probe)
                if code.startswith("PGRST30"):
                    findings.append(
                        _problem(
                            "postgrest",
                            f"PostgREST refuses tokens signed with JWT_SECRET ({code}: "
                            f"{_short(probe.text)})",
                            "give PostgREST the same secret: PGRST_JWT_SECRET=$JWT_SECRET "
                            "(and PGRST_JWT_AUD=$JWT_AUDIENCE when set), then restart it",
                        )
                    )
    except httpx.HTTPError as exc:
        return [_problem("postgrest", f"PostgREST at {base} unreachable: {exc}", fix_start)]
    if not findings:
        findings.append(_ok("postgrest", f"{base} serves the api schema"))
    return findings


def check_web(url: str | None, timeout: float = 5.0) -> list[Finding]:
    """GET /health of the web app when WEB_URL is set: 200 is well (degraded says why)."""
    if not url:
        return [_skipped("web", "WEB_URL not set (set it to check the web app)")]
    base = url.rstrip("/")
    try:
        response = httpx.get(f"{base}/health", timeout=timeout)
    except httpx.HTTPError as exc:
        return [
            _problem(
                "web",
                f"the web app at {base} is unreachable: {exc}",
                f"start it (compliance web, or docker compose up web) and check that "
                f"WEB_URL={base} is its address",
            )
        ]
    reasons = _reasons(response)
    if response.status_code == 200:
        note = f" (degraded: {'; '.join(reasons)})" if reasons else ""
        return [_ok("web", f"{base}/health answers 200{note}")]
    return [
        _problem(
            "web",
            f"GET {base}/health answered {response.status_code}"
            + (f": {'; '.join(reasons)}" if reasons else f": {_short(response.text)}"),
            "see the web app's log; it needs the database (WEB_DATABASE_URL or DATABASE_URL "
            "as role web_app) and its LISTEN connection",
        )
    ]


def _reasons(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    found = body.get("reasons")
    if found is None and isinstance(body.get("error"), dict):
        details = body["error"].get("details") or {}
        found = details.get("reasons") if isinstance(details, dict) else None
    return [str(r) for r in found] if isinstance(found, list) else []


def _json_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code") or "") if isinstance(body, dict) else ""


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- all together ----------------------------------------------------------------------------------


DatabaseCheck = Callable[[psycopg.Connection[Any], SchemaFiles], list[Finding]]


def run_checks(
    env: Mapping[str, str] | None = None,
    *,
    db_dir: Path | None = None,
    upstreams: bool = True,
    connect_timeout: int = 5,
) -> list[Finding]:
    """Run every check against ``env`` (default: os.environ); returns the findings in order."""
    env = dict(os.environ if env is None else env)
    findings = check_settings(env)
    root = db_dir or DEFAULT_DB_DIR
    files = read_schema_files(root)
    dsn = env.get("DATABASE_URL") or ""
    database_checks: list[tuple[str, DatabaseCheck]] = [
        ("extensions", check_extensions),
        ("roles", lambda conn, _files: check_roles(conn)),
        ("migrations", check_migrations),
        ("functions", check_functions),
        ("policies", check_policies),
    ]
    if not dsn:
        findings.append(_skipped("database", "DATABASE_URL not set"))
    else:
        try:
            conn = psycopg.connect(
                dsn, connect_timeout=connect_timeout, autocommit=True, row_factory=dict_row
            )
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            findings.append(
                _problem(
                    "database",
                    f"cannot connect to {redact_dsn(dsn)}: {first}",
                    "start PostgreSQL (bin/up, compliance dev up, or docker compose up db) and "
                    "check host, port, user, password and database name in DATABASE_URL",
                )
            )
            for name, _check in database_checks:
                findings.append(_skipped(name, "needs the database"))
        else:
            with conn:
                findings.append(_ok("database", f"connected to {redact_dsn(dsn)}"))
                findings.append(check_server_version(conn))
                slug = (env.get("COMPLIANCE_ORG_SLUG") or "").strip()
                if upstreams and slug:
                    database_checks.append(
                        ("organisation", lambda c, _files: [check_organisation(c, slug)])
                    )
                database_checks.append(
                    ("organisations", lambda c, _files: check_unsynced_organisations(c, slug))
                )
                for name, check in database_checks:
                    try:
                        findings.extend(check(conn, files))
                    except psycopg.Error as exc:
                        text = exc.diag.message_primary or str(exc).strip()
                        findings.append(
                            _problem(
                                name,
                                f"could not check: {exc.sqlstate} {text}",
                                "connect as the database owner (DATABASE_URL's user must read "
                                "the catalogs and yoyo's tables)",
                            )
                        )
    secret = env.get("JWT_SECRET") or None
    findings.extend(check_postgrest(env.get("POSTGREST_URL") or None, secret))
    findings.extend(check_web(env.get("WEB_URL") or None))
    if upstreams:
        findings.extend(check_upstreams(env))
    else:
        findings.append(_skipped("upstreams", "not checked (--no-upstreams)"))
    return findings


def render(findings: list[Finding]) -> str:
    """The report: one line per finding, a ``fix:`` line under each problem, a summary."""
    width = max((len(f.check) for f in findings), default=8)
    lines: list[str] = []
    for f in findings:
        lines.append(f"{f.level.value:<8} {f.check:<{width}}  {f.message}")
        if f.fix:
            lines.append(f"{'':<8} {'':<{width}}  fix: {f.fix}")
    problems = sum(f.is_problem for f in findings)
    lines.append(
        "all is well" if problems == 0 else f"{problems} problem(s): fix them and run again"
    )
    return "\n".join(lines)
