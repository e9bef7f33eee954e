"""The plumbing: settings, PostgREST's status mapping, acting_as, migrate, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from click.testing import CliRunner

from compliance.cli import cli, make_token
from compliance.db import ApiError, acting_as, claims_for, http_status_for, redact_dsn
from compliance.migrate import migrate, yoyo_uri
from compliance.settings import SettingsError, load_settings

SECRET = "s" * 40

# -- settings ----------------------------------------------------------------------------------


def test_settings_report_each_missing_variable_on_its_own_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(SettingsError) as caught:
        load_settings("database_url", "jwt_secret")
    lines = str(caught.value).splitlines()
    assert [line.split()[0] for line in lines] == ["DATABASE_URL", "JWT_SECRET"]
    assert all("is not set" in line for line in lines)


def test_settings_errors_never_show_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "tooshort-secret-value")
    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2@db/x")
    monkeypatch.setenv("JWT_LIFETIME_SECONDS", "soon")
    with pytest.raises(SettingsError) as caught:
        load_settings("database_url", "jwt_secret")
    text = str(caught.value)
    assert "tooshort-secret-value" not in text
    assert "hunter2" not in text
    assert {line.split()[0] for line in text.splitlines()} == {
        "DATABASE_URL",
        "JWT_SECRET",
        "JWT_LIFETIME_SECONDS",
    }


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost:5432/x")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("JWT_AUDIENCE", "")
    settings = load_settings("database_url", "jwt_secret")
    assert settings.jwt_audience is None
    assert settings.jwt_lifetime_seconds == 3600
    assert "p@" not in repr(settings)


# -- the status PostgREST answers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqlstate", "authenticated", "status"),
    [
        ("PT401", True, 401),
        ("PT403", True, 403),
        ("PT409", True, 409),
        ("23505", True, 409),
        ("23503", True, 409),
        ("42501", True, 403),
        ("42501", False, 401),
        ("22023", True, 400),
        ("23514", True, 400),
        ("22P02", True, 400),
        ("23502", True, 400),
        ("P0001", True, 400),
        ("P0002", True, 500),
        ("42883", True, 404),
        ("42P01", True, 404),
        ("25006", True, 405),
        ("40001", True, 500),
        ("08006", True, 503),
        ("53300", True, 503),
        ("XX000", True, 500),
        ("42703", True, 400),
        ("PTabc", True, 500),
    ],
)
def test_http_status_like_postgrest(sqlstate: str, authenticated: bool, status: int) -> None:
    assert http_status_for(sqlstate, authenticated=authenticated) == status


def test_redact_dsn_hides_the_password() -> None:
    assert "hunter2" not in redact_dsn("postgresql://u:hunter2@h:5/db")
    assert "***" in redact_dsn("postgresql://u:hunter2@h:5/db")


def test_yoyo_uri_quotes_and_keeps_sockets() -> None:
    uri = yoyo_uri("host=/run/pg port=5433 dbname=x user=u password=p@ss/w")
    assert uri.startswith("postgresql+psycopg://u:p%40ss%2Fw@/x?")
    assert "host=%2Frun%2Fpg" in uri


# -- acting as a user, as PostgREST does -------------------------------------------------------


def _user(superuser: psycopg.Connection[Any], role: str = "hr_admin") -> str:
    found = superuser.execute(
        "select to_regprocedure('tests.create_user(uuid, app.app_role, text, uuid)') as f"
    ).fetchone()
    if found is None or found["f"] is None:
        pytest.skip("db/tests/helpers has no tests.create_user yet")
    slug = f"infra-{uuid.uuid4().hex[:8]}"
    row = superuser.execute(
        "select tests.create_user(tests.create_org(%s), %s::app.app_role) as id", [slug, role]
    ).fetchone()
    assert row is not None
    return str(row["id"])


def test_acting_as_sets_what_postgrest_sets(authenticator_dsn: str, superuser: Any) -> None:
    user = _user(superuser)
    with psycopg.connect(authenticator_dsn) as conn:
        with acting_as(conn, claims_for(user, email="x@y"), method="get", path="/things") as cur:
            cur.execute(
                "select current_user, current_setting('request.jwt.claims')::jsonb ->> 'sub',"
                " current_setting('request.method'), current_setting('request.path'),"
                " current_setting('transaction_read_only')"
            )
            assert cur.fetchone() == ("authenticated", user, "GET", "/things", "on")
        # Everything was local to the transaction.
        row = conn.execute("select current_user, current_setting('request.jwt.claims', true)")
        assert row.fetchone() in {("authenticator", ""), ("authenticator", None)}
        conn.rollback()


def test_get_requests_cannot_write(api: Any, superuser: Any) -> None:
    user = _user(superuser)
    with pytest.raises(ApiError) as caught:
        api.call(user, "create temp table t (x int)", method="GET")
    assert caught.value.sqlstate == "25006"
    assert caught.value.http_status == 405


def test_pre_request_refuses_an_unknown_user(api: Any) -> None:
    with pytest.raises(ApiError) as caught:
        api.call(str(uuid.uuid4()), "select 1 as one")
    assert caught.value.http_status == 401
    assert caught.value.sqlstate == "PT401"


def test_api_call_returns_dict_rows(api: Any, superuser: Any) -> None:
    user = _user(superuser)
    assert api.call(user, "select %s::int as n, current_user as who", [7]) == [
        {"n": 7, "who": "authenticated"}
    ]
    assert api.one(user, "select 1 as one") == {"one": 1}


def test_an_error_rolls_the_transaction_back(api: Any, superuser: Any) -> None:
    user = _user(superuser)
    with pytest.raises(ApiError):
        api.call(user, "select 1/0")
    # The connection is usable again at once.
    assert api.call(user, "select 2 as two") == [{"two": 2}]


# -- migrate and the CLI ------------------------------------------------------------------------


def test_migrate_twice_changes_nothing(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = migrate(dsn)
    assert report.migrations == []
    assert "re-applied" in capsys.readouterr().out


def test_migrate_names_the_failing_file(tmp_path: Path, dsn: str) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "10_broken.sql").write_text("select 1; select nope();")
    with pytest.raises(Exception, match=r"functions/10_broken\.sql failed"):
        migrate(dsn, tmp_path, echo=lambda _: None)


def test_reset_needs_yes() -> None:
    result = CliRunner().invoke(cli, ["db", "reset"], env={"DATABASE_URL": "postgresql:///x"})
    assert result.exit_code == 1
    assert "--yes" in result.output


def test_token_for_a_user(dsn: str, superuser: Any) -> None:
    user = _user(superuser, "viewer")
    email = superuser.execute("select email from app.app_users where id = %s", [user]).fetchone()
    env = {"DATABASE_URL": dsn, "JWT_SECRET": SECRET, "JWT_AUDIENCE": "compliance"}
    result = CliRunner().invoke(cli, ["token", "--email", email["email"].upper()], env=env)
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), SECRET, algorithms=["HS256"], audience="compliance")
    assert claims["sub"] == user
    assert claims["role"] == "authenticated"
    assert claims["email"] == email["email"]


def test_token_for_nobody_is_one_clear_line(dsn: str) -> None:
    env = {"DATABASE_URL": dsn, "JWT_SECRET": SECRET}
    result = CliRunner().invoke(cli, ["token", "--email", "nobody@nowhere.test"], env=env)
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: no user with e-mail")


def test_make_token_expires() -> None:
    settings = load_settings(jwt_secret=SECRET, database_url="postgresql:///x")
    token = make_token(settings, user_id="u", email="e@x", ttl=-10)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, SECRET, algorithms=["HS256"])


def test_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "compliance.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "dev" in done.stdout


@pytest.mark.skipif(
    not os.environ.get("COMPLIANCE_TEST_AT"), reason="only under bin/test --at (a moved clock)"
)
def test_the_moved_clock_reaches_the_server(superuser: Any) -> None:
    """bin/test --at moves the clock of the tests and of the PostgreSQL they start alike."""
    at = datetime.strptime(os.environ["COMPLIANCE_TEST_AT"], "%Y-%m-%d %H:%M:%S UTC")
    at = at.replace(tzinfo=UTC)
    row = superuser.execute(
        "select now() as now, current_setting('TimeZone') as zone,"
        " pg_postmaster_start_time() as started"
    ).fetchone()
    # The clock runs from the moved time: the suite is well under a day in.
    for seen in (row["started"], row["now"], datetime.now(UTC)):
        assert at <= seen < at + timedelta(days=1), (seen, at)
    assert row["zone"] == os.environ["COMPLIANCE_TEST_SERVER_TIMEZONE"]
