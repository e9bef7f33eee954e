"""`compliance doctor` against the throwaway cluster: healthy is 0, each fault names its fix."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from click.testing import CliRunner

from compliance.cli import cli
from compliance.doctor import (
    Finding,
    Level,
    check_server_version,
    read_schema_files,
    run_checks,
    split_statements,
)
from compliance.localpg import free_port
from compliance.migrate import DEFAULT_DB_DIR

SECRET = "d" * 48
ORG_SLUG = "doctor-checks"
FAKE_KEY = {
    "type": "service_account",
    "client_email": "sync@example.iam.gserviceaccount.com",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----\n",
    "token_uri": "http://127.0.0.1:1/token",
}


def healthy_env(dsn: str) -> dict[str, str]:
    """Everything a production process needs (the upstream values are fakes)."""
    return {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": dsn,
        "JWT_SECRET": SECRET,
        "ZENEFITS_API_URL": "http://127.0.0.1:1",
        "ZENEFITS_API_KEY": "zenefits-test-key",
        "ZENEFITS_COMPANY_ID": "1",
        "GOOGLE_SERVICE_ACCOUNT_KEY": json.dumps(FAKE_KEY),
        "GOOGLE_CLASSROOM_COURSE_ID": "1",
        "GOOGLE_CLASSROOM_API_URL": "http://127.0.0.1:1",
        "COMPLIANCE_ORG_SLUG": ORG_SLUG,
    }


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_problem]


def the_problem(findings: list[Finding], check: str) -> Finding:
    found = [f for f in problems(findings) if f.check == check]
    assert len(found) == 1, "\n".join(f"{f.check}: {f.message}" for f in problems(findings))
    return found[0]


@pytest.fixture(autouse=True)
def the_synced_organisation(superuser: Any) -> None:
    superuser.execute(
        "insert into app.organizations (name, slug) values ('Doctor Checks', %s)"
        " on conflict (slug) do nothing",
        [ORG_SLUG],
    )


@pytest.fixture
def db_copy(tmp_path: Path) -> Path:
    """A copy of db/ (migrations, functions, policies) to edit."""
    target = tmp_path / "db"
    for folder in ("migrations", "functions", "policies"):
        shutil.copytree(DEFAULT_DB_DIR / folder, target / folder)
    return target


# -- healthy ---------------------------------------------------------------------------------------


def test_a_healthy_installation_has_no_problem(dsn: str) -> None:
    findings = run_checks(healthy_env(dsn))
    assert problems(findings) == []
    levels = {f.check: f.level for f in findings}
    for check in ("settings", "database", "postgresql", "extensions", "roles", "migrations",
                  "functions", "policies", "organisation", "upstreams"):  # fmt: skip
        assert levels[check] is Level.OK, check
    assert levels["postgrest"] is Level.SKIPPED
    assert levels["web"] is Level.SKIPPED


def test_the_command_exits_0_when_all_is_well(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in healthy_env(dsn).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POSTGREST_URL", raising=False)
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("all is well")
    assert SECRET not in result.output


# -- roles -----------------------------------------------------------------------------------------


def test_a_missing_role_is_a_problem_with_its_fix(dsn: str, superuser: Any) -> None:
    superuser.execute("alter role analyst rename to analyst_hidden_by_doctor_test")
    try:
        findings = run_checks(healthy_env(dsn))
    finally:
        superuser.execute("alter role analyst_hidden_by_doctor_test rename to analyst")
    problem = the_problem(findings, "roles")
    assert "role analyst is missing" in problem.message
    assert problem.fix is not None
    assert "compliance db migrate" in problem.fix


def test_a_role_that_bypasses_row_security_is_a_problem(dsn: str, superuser: Any) -> None:
    superuser.execute("alter role web_app bypassrls")
    try:
        findings = run_checks(healthy_env(dsn))
    finally:
        superuser.execute("alter role web_app nobypassrls")
    problem = the_problem(findings, "roles")
    assert problem.message == "role web_app bypasses row security"
    assert problem.fix == "as a superuser: alter role web_app nobypassrls"


def test_a_lost_membership_is_a_problem(dsn: str, superuser: Any) -> None:
    superuser.execute("revoke anon from authenticator")
    try:
        findings = run_checks(healthy_env(dsn))
    finally:
        superuser.execute("grant anon to authenticator")
    problem = the_problem(findings, "roles")
    assert problem.fix == "as a superuser: grant anon to authenticator"


# -- migrations, functions, policies ---------------------------------------------------------------


def test_an_unapplied_migration_is_a_problem(dsn: str, db_copy: Path) -> None:
    (db_copy / "migrations" / "0999_doctor_test.sql").write_text(
        "-- depends: 0001_foundation\nselect 1;\n"
    )
    result = CliRunner().invoke(cli, ["doctor", "--db-dir", str(db_copy)], env=healthy_env(dsn))
    assert result.exit_code == 1, result.output
    assert "1 migration(s) not applied: 0999_doctor_test" in result.output
    assert "fix: compliance db migrate" in result.output


def test_a_function_changed_since_the_last_migrate_is_a_problem(dsn: str, db_copy: Path) -> None:
    health = db_copy / "functions" / "040_health.sql"
    health.write_text(health.read_text().replace("'ok'", "'fine'"))
    problem = the_problem(run_checks(healthy_env(dsn), db_dir=db_copy), "functions")
    assert "differ from their file: api.health (db/functions/040_health.sql)" in problem.message
    assert problem.fix is not None
    assert problem.fix.startswith("compliance db migrate")


def test_a_new_function_not_yet_applied_is_a_problem(dsn: str, db_copy: Path) -> None:
    (db_copy / "functions" / "999_doctor.sql").write_text(
        "create or replace function app.doctor_probe() returns int\n"
        "language sql immutable set search_path = '' as $$ select 1 $$;\n"
    )
    problem = the_problem(run_checks(healthy_env(dsn), db_dir=db_copy), "functions")
    assert "missing: app.doctor_probe (db/functions/999_doctor.sql)" in problem.message


def test_a_missing_policy_is_a_problem(dsn: str, db_copy: Path) -> None:
    (db_copy / "policies" / "98_doctor.sql").write_text(
        'create policy "doctor probe" on app.organizations for select to authenticated\n'
        "    using (false);\n"
    )
    problem = the_problem(run_checks(healthy_env(dsn), db_dir=db_copy), "policies")
    assert '"doctor probe" on app.organizations' in problem.message


def test_a_table_without_forced_row_security_is_a_problem(dsn: str, superuser: Any) -> None:
    superuser.execute("alter table app.notifications no force row level security")
    try:
        findings = run_checks(healthy_env(dsn))
    finally:
        superuser.execute("alter table app.notifications force row level security")
    problem = the_problem(findings, "policies")
    assert "app.notifications" in problem.message


# -- settings and the database address -------------------------------------------------------------


def test_a_bad_setting_is_a_problem_without_its_value(dsn: str) -> None:
    env = healthy_env(dsn) | {"JWT_SECRET": "short-secret-value"}
    result = CliRunner().invoke(cli, ["doctor"], env=env)
    assert result.exit_code == 1
    assert "JWT_SECRET is malformed: must be at least 32 characters long" in result.output
    assert "fix: export JWT_SECRET=$(python3 -c" in result.output
    assert "short-secret-value" not in result.output


def test_missing_settings_are_each_named(dsn: str) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    findings = run_checks(env)
    messages = [f.message for f in problems(findings)]
    assert any(m.startswith("DATABASE_URL is not set") for m in messages)
    assert any(m.startswith("JWT_SECRET is not set") for m in messages)
    assert any(m.startswith("ZENEFITS_API_KEY is not set") for m in messages)
    assert any(m.startswith("GOOGLE_SERVICE_ACCOUNT_KEY is not set") for m in messages)
    skipped = {f.check for f in findings if f.level is Level.SKIPPED}
    assert "database" in skipped


def test_an_unreachable_database_is_a_problem_and_its_checks_are_skipped() -> None:
    env = healthy_env(f"postgresql://postgres@127.0.0.1:{free_port()}/compliance")
    findings = run_checks(env)
    problem = the_problem(findings, "database")
    assert problem.message.startswith("cannot connect to")
    assert problem.fix is not None
    assert "bin/up" in problem.fix
    skipped = {f.check for f in findings if f.level is Level.SKIPPED}
    assert {"roles", "migrations", "functions", "policies"} <= skipped


def test_a_malformed_service_account_key_is_a_problem(dsn: str, tmp_path: Path) -> None:
    env = healthy_env(dsn) | {"GOOGLE_SERVICE_ACCOUNT_KEY": '{"type": "user"}'}
    problem = the_problem(run_checks(env), "upstreams")
    assert "not a service-account key" in problem.message
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(FAKE_KEY))
    env["GOOGLE_SERVICE_ACCOUNT_KEY"] = str(key_file)
    assert problems(run_checks(env)) == []
    env["GOOGLE_SERVICE_ACCOUNT_KEY"] = str(tmp_path / "absent.json")
    assert "names no readable file" in the_problem(run_checks(env), "upstreams").message


def test_upstreams_may_be_left_out(dsn: str) -> None:
    env = healthy_env(dsn)
    del env["ZENEFITS_API_KEY"]
    findings = run_checks(env, upstreams=False)
    assert problems(findings) == []


# -- the server version ----------------------------------------------------------------------------


class _VersionConn:
    def __init__(self, num: int) -> None:
        self.num = num

    def execute(self, _query: str) -> _VersionConn:
        return self

    def fetchone(self) -> dict[str, Any]:
        return {"num": self.num, "text": "PostgreSQL"}


@pytest.mark.parametrize(
    ("num", "ok"),
    [(150008, False), (150009, True), (150020, True), (160004, False), (160005, True),
     (170000, False), (170001, True), (180000, True), (140015, False)],
)  # fmt: skip
def test_the_server_must_carry_the_row_security_fixes(num: int, ok: bool) -> None:
    finding = check_server_version(_VersionConn(num))  # type: ignore[arg-type]
    assert finding.is_problem is not ok
    if not ok:
        assert finding.fix is not None
        assert "upgrade to PostgreSQL" in finding.fix


def test_the_real_server_is_recent_enough(superuser: psycopg.Connection[Any]) -> None:
    assert not check_server_version(superuser).is_problem


# -- PostgREST -------------------------------------------------------------------------------------


class _FakePostgrest(BaseHTTPRequestHandler):
    reject_tokens = False

    def do_GET(self) -> None:
        if self.path != "/rpc/health":
            self._send(404, {"code": "PGRST202", "message": "not found"})
        elif self.headers.get("Authorization") and self.reject_tokens:
            self._send(401, {"code": "PGRST301", "message": "JWSError JWSInvalidSignature"})
        elif self.headers.get("Authorization"):
            self._send(401, {"code": "PT401", "message": "unknown user"})
        else:
            self._send(200, {"status": "ok"})

    def _send(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def fake_postgrest() -> Iterator[tuple[str, type[_FakePostgrest]]]:
    handler = type("Handler", (_FakePostgrest,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_reachable_postgrest_is_checked(
    dsn: str, fake_postgrest: tuple[str, type[_FakePostgrest]]
) -> None:
    url, handler = fake_postgrest
    env = healthy_env(dsn) | {"POSTGREST_URL": url}
    findings = run_checks(env)
    assert problems(findings) == []
    assert [f.level for f in findings if f.check == "postgrest"] == [Level.OK]
    handler.reject_tokens = True
    problem = the_problem(run_checks(env), "postgrest")
    assert "refuses tokens signed with JWT_SECRET" in problem.message
    assert problem.fix is not None
    assert "PGRST_JWT_SECRET" in problem.fix


def test_an_unreachable_postgrest_is_a_problem(dsn: str) -> None:
    env = healthy_env(dsn) | {"POSTGREST_URL": f"http://127.0.0.1:{free_port()}"}
    problem = the_problem(run_checks(env), "postgrest")
    assert "unreachable" in problem.message
    assert problem.fix is not None
    assert "docker compose up postgrest" in problem.fix


# -- reading the schema's files --------------------------------------------------------------------


def test_statements_split_outside_quotes_and_bodies() -> None:
    text = (
        "-- a comment; with a semicolon\n"
        "create function a.f() returns text language sql as $x$ select ';' $x$;\n"
        "/* block; */ select 'it''s; fine';\n"
        'create policy "p; q" on app.t for select using (true);\n'
        "select 1"
    )
    statements = split_statements(text)
    assert len(statements) == 4
    assert statements[0].startswith("create function a.f()")
    assert statements[1] == "select 'it''s; fine';"
    assert statements[3] == "select 1"


def test_the_repository_files_are_read(tmp_path: Path) -> None:
    files = read_schema_files(DEFAULT_DB_DIR)
    assert "0001_foundation" in files.migrations
    assert ("api", "health") in files.functions
    label, bodies = files.functions[("app", "jwt_claims")]
    assert label == "db/functions/010_identity.sql"
    assert bodies[0] is not None
    assert "request.jwt.claims" in bodies[0]
    assert ("app", "organizations", "members read their organization") in files.policies


def test_the_synced_organisation_must_exist(dsn: str) -> None:
    env = healthy_env(dsn) | {"COMPLIANCE_ORG_SLUG": "no-such-org"}
    problem = the_problem(run_checks(env), "organisation")
    assert "no organisation has the slug 'no-such-org'" in problem.message
    del env["COMPLIANCE_ORG_SLUG"]
    problem = the_problem(run_checks(env), "upstreams")
    assert problem.message.startswith("COMPLIANCE_ORG_SLUG is not set")


class _FakeWeb(BaseHTTPRequestHandler):
    status = 200
    body: ClassVar[dict[str, Any]] = {"status": "ok"}

    def do_GET(self) -> None:
        data = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


def test_the_web_app_is_checked_when_its_address_is_given(dsn: str) -> None:
    handler = type("WebHandler", (_FakeWeb,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = healthy_env(dsn) | {"WEB_URL": f"http://127.0.0.1:{server.server_address[1]}"}
        assert problems(run_checks(env)) == []
        handler.status = 503
        handler.body = {
            "success": False,
            "error": {"code": "SERVICE_UNAVAILABLE", "message": "unhealthy",
                      "details": {"reasons": ["listener down"]}},
        }  # fmt: skip
        problem = the_problem(run_checks(env), "web")
        assert problem.message.endswith("answered 503: listener down")
    finally:
        server.shutdown()
        server.server_close()
    env["WEB_URL"] = f"http://127.0.0.1:{free_port()}"
    assert "unreachable" in the_problem(run_checks(env), "web").message
