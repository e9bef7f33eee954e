"""The `compliance` command: database chores, demo tokens and a local development database.

    compliance db migrate            apply migrations, re-apply functions and policies
    compliance db reset --yes        drop and recreate the database, then migrate
    compliance db seed-demo          load the demo organisation
    compliance org create ...        a new organisation with its first superadmin
    compliance token --email E       print a JWT for that user (HS256, JWT_SECRET)
    compliance dev up | dev stop     a local PostgreSQL under .data/pg for development

Every failure prints one line, ``error: ...``, and exits non-zero.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import jwt
import psycopg
from psycopg import sql

from compliance.localpg import LocalCluster, LocalClusterError
from compliance.migrate import MigrateError, migrate, prepare_tests, reset
from compliance.settings import Settings, SettingsError, load_settings

P = ParamSpec("P")
R = TypeVar("R")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_DATA_DIR = REPO_ROOT / ".data" / "pg"
DEV_PORT_DEFAULT = 54329
DEV_DBNAME = "compliance"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors we expect into one ``error:`` line and exit status 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SettingsError as exc:
            for line in exc.problems:
                click.echo(f"error: {line}", err=True)
            sys.exit(1)
        except (MigrateError, LocalClusterError) as exc:
            _fail(str(exc))
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _fail(f"cannot reach the database: {first}")
        except psycopg.Error as exc:
            text = exc.diag.message_primary or str(exc).strip()
            _fail(f"database error {exc.sqlstate or ''}: {text}".replace("  ", " "))
        except NotImplementedError as exc:
            _fail(str(exc) or "not implemented yet")
        raise AssertionError("unreachable")

    return wrapper


def _settings(*required: str) -> Settings:
    return load_settings(*required)


def _password(settings: Settings) -> str | None:
    secret = settings.authenticator_password
    return secret.get_secret_value() if secret is not None else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Compliance training manager: database chores and local development."""


# -- db ------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Migrate, reset and seed the database named by DATABASE_URL."""


@db.command("migrate")
@click.option(
    "--db-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder holding migrations/, functions/, policies/ (default: the repo's db/).",
)
@friendly_errors
def db_migrate(db_dir: Path | None) -> None:
    """Apply new migrations, then re-apply every function and policy file."""
    settings = _settings("database_url")
    assert settings.database_url is not None
    migrate(
        settings.database_url, db_dir, authenticator_password=_password(settings), echo=click.echo
    )
    _set_service_passwords(settings)


#: Login roles whose password `db migrate` sets from the environment (authenticator: migrate()).
SERVICE_ROLE_PASSWORDS = (("web_app", "web_app_password"), ("sync_worker", "sync_worker_password"))


def _set_service_passwords(settings: Settings) -> None:
    """``alter role ... password`` for each service role whose password is configured."""
    wanted = [
        (role, secret.get_secret_value())
        for role, name in SERVICE_ROLE_PASSWORDS
        if (secret := getattr(settings, name)) is not None
    ]
    if not wanted or settings.database_url is None:
        return
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for role, password in wanted:
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
            click.echo(f"  set the password of role {role}")


@db.command("reset")
@click.option("--yes", is_flag=True, help="Confirm: every row in the database is lost.")
@click.option(
    "--db-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder holding migrations/, functions/, policies/ (default: the repo's db/).",
)
@friendly_errors
def db_reset(yes: bool, db_dir: Path | None) -> None:
    """Drop and recreate the database, then migrate (needs --yes)."""
    if not yes:
        _fail("db reset drops the whole database named by DATABASE_URL; run again with --yes")
    settings = _settings("database_url")
    assert settings.database_url is not None
    reset(
        settings.database_url, db_dir, authenticator_password=_password(settings), echo=click.echo
    )


@db.command("prepare-tests")
@click.option(
    "--db-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder holding tests/helpers/ (default: the repo's db/).",
)
@friendly_errors
def db_prepare_tests(db_dir: Path | None) -> None:
    """Ready a migrated test database for pg_prove: pgTAP, search_path, db/tests/helpers.

    Needs a superuser DATABASE_URL; never run it on a database with real data (the helpers
    create test fixtures). Then: pg_prove -d <db> db/tests/<area>/test_*.sql
    """
    settings = _settings("database_url")
    assert settings.database_url is not None
    prepare_tests(settings.database_url, db_dir, echo=click.echo)


def _seed(dsn: str) -> None:
    from compliance.seed import seed_demo

    started = time.monotonic()
    with psycopg.connect(dsn) as conn:
        seed_demo(conn)
        conn.commit()
    click.echo(f"seeded the demo organisation in {time.monotonic() - started:.2f} s")


@db.command("seed-demo")
@friendly_errors
def db_seed_demo() -> None:
    """Load the demo organisation, its people, modules and users."""
    settings = _settings("database_url")
    assert settings.database_url is not None
    _seed(settings.database_url)


# -- org -----------------------------------------------------------------------------------


@cli.group()
def org() -> None:
    """Organisations (operators): create one with its first superadmin."""


NEXT_STEPS = """\
Next steps for {slug}:
  1. Identity provider: people sign in with tokens of your identity provider (README
     "Sign-in through your identity provider"): set JWT_JWKS_URL (or JWT_JWKS_FILE),
     JWT_ISSUER and JWT_AUDIENCE for the web app, and PostgREST's jwt-secret (the JWKS),
     jwt-aud and jwt-role-claim-key. The first sign-in of {email} links their login.
     For a development token: compliance token --email {email} --org {slug}
  2. Upstream credentials: run a worker for this organisation with COMPLIANCE_ORG_SLUG={slug},
     ZENEFITS_API_KEY, ZENEFITS_COMPANY_ID, GOOGLE_SERVICE_ACCOUNT_KEY,
     GOOGLE_CLASSROOM_SUBJECT and GOOGLE_CLASSROOM_COURSE_ID (compliance doctor checks them).
  3. First sync: COMPLIANCE_ORG_SLUG={slug} compliance sync all
  4. Users: {email} invites colleagues with POST /rpc/invite_user (email, role, employee_id).
  HIPAA-covered? Keep the audit trail 6 years:
     update app.organizations set audit_retention_months = 72 where slug = '{slug}';"""


@org.command("create")
@click.option("--name", required=True, help="The organisation's name.")
@click.option("--slug", required=True, help="Short lower-case id, e.g. annarbor-medical.")
@click.option("--timezone", required=True, help="IANA time zone of its day, e.g. America/Detroit.")
@click.option("--admin-email", required=True, help="E-mail of its first superadmin.")
@click.option("--admin-name", default=None, help="Display name of the first superadmin.")
@friendly_errors
def org_create(
    name: str, slug: str, timezone: str, admin_email: str, admin_name: str | None
) -> None:
    """Create an organisation and its first superadmin (running it again changes nothing)."""
    settings = _settings("database_url")
    assert settings.database_url is not None
    try:
        with psycopg.connect(settings.database_url) as conn:
            row = conn.execute(
                "select app.create_organization(p_name => %s, p_slug => %s, p_timezone => %s,"
                " p_admin_email => %s, p_admin_name => %s)",
                [name, slug, timezone, admin_email, admin_name],
            ).fetchone()
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.UniqueViolation) as exc:
        lines = [exc.diag.message_primary or str(exc)]
        lines += [text for text in (exc.diag.message_detail, exc.diag.message_hint) if text]
        _fail("\n       ".join(lines))
    assert row is not None
    result = row[0]
    verb = "created" if result["created"] else "already exists (nothing changed)"
    click.echo(
        f"organisation {result['slug']} ({result['name']}, {result['timezone']}) {verb}:"
        f" id {result['organizationId']}, superadmin {result['adminEmail']}"
        f" (user {result['adminUserId']})"
    )
    click.echo(NEXT_STEPS.format(slug=result["slug"], email=result["adminEmail"]))


# -- token ---------------------------------------------------------------------------------


def make_token(settings: Settings, *, user_id: str, email: str, ttl: int | None = None) -> str:
    """An HS256 JWT as PostgREST expects it: sub, role=authenticated, email, exp (, aud)."""
    if settings.jwt_secret is None:
        raise SettingsError(["JWT_SECRET is not set: HS256 secret shared with PostgREST"])
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "role": "authenticated",
        "email": email,
        "iat": now,
        "exp": now + (ttl if ttl is not None else settings.jwt_lifetime_seconds),
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


@cli.command("token")
@click.option("--email", required=True, help="E-mail of the app_users row to sign in as.")
@click.option("--org", default=None, help="Organisation slug, when the e-mail is in several.")
@click.option("--ttl", type=click.IntRange(min=1), default=None, help="Lifetime in seconds.")
@friendly_errors
def token(email: str, org: str | None, ttl: int | None) -> None:
    """Print a JWT for the user with this e-mail (for curl against PostgREST)."""
    settings = _settings("database_url", "jwt_secret")
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as conn:
        if org is None:
            rows = conn.execute(
                "select id::text, email from app.app_users where lower(email) = lower(%s)",
                [email],
            ).fetchall()
        else:
            rows = conn.execute(
                "select u.id::text, u.email from app.app_users u"
                " join app.organizations o on o.id = u.org_id"
                " where lower(u.email) = lower(%s) and o.slug = %s",
                [email, org],
            ).fetchall()
    where = f" in organisation {org!r}" if org else ""
    if not rows:
        _fail(f"no user with e-mail {email!r}{where} (is the demo seeded? compliance db seed-demo)")
    if len(rows) > 1:
        _fail(f"{len(rows)} users have e-mail {email!r}{where}; pass --org SLUG to choose")
    user_id, found_email = rows[0]
    click.echo(make_token(settings, user_id=user_id, email=found_email, ttl=ttl))


# -- dev -----------------------------------------------------------------------------------


def _server_can_reach(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    return all(
        parent.stat().st_mode & 0o001 for parent in path.resolve().parents if parent.exists()
    )


def dev_data_dir() -> Path:
    """``.data/pg`` in the repo, unless (as root) the postgres user cannot enter the repo's
    parents (e.g. under /root): then a per-repo folder under /var/tmp."""
    if _server_can_reach(DEV_DATA_DIR):
        return DEV_DATA_DIR
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"compliance-dev-{digest}" / "pg"  # noqa: S108 - per-repo name


def _dev_port() -> int:
    raw = os.environ.get("COMPLIANCE_DEV_PG_PORT", str(DEV_PORT_DEFAULT))
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(
            [f"COMPLIANCE_DEV_PG_PORT is malformed: {raw!r} is not a port"]
        ) from None
    if not 1024 <= port <= 65535:
        raise SettingsError([f"COMPLIANCE_DEV_PG_PORT is malformed: {port} is not in 1024..65535"])
    return port


@cli.group()
def dev() -> None:
    """A local PostgreSQL for development (under .data/pg; port 54329 or COMPLIANCE_DEV_PG_PORT)."""


@dev.command("up")
@click.option("--seed/--no-seed", default=True, help="Load the demo organisation (default: yes).")
@friendly_errors
def dev_up(seed: bool) -> None:
    """Start the local cluster, migrate, seed the demo, print the DATABASE_URL to export."""
    cluster = LocalCluster(dev_data_dir(), _dev_port())
    cluster.start()
    _create_if_missing(cluster, DEV_DBNAME)
    dsn = cluster.dsn(DEV_DBNAME)
    settings = _settings()
    migrate(dsn, authenticator_password=_password(settings), echo=click.echo)
    if seed and _has_no_users(dsn):
        _seed(dsn)
    elif seed:
        click.echo("demo already seeded (start afresh with: compliance dev stop --destroy)")
    click.echo(f"PostgreSQL is up in {cluster.datadir}; use it with:")
    click.echo(f"export DATABASE_URL={dsn}")


def _has_no_users(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        table = conn.execute("select to_regclass('app.app_users')").fetchone()
        if table is None or table[0] is None:
            return True
        row = conn.execute("select exists (select from app.app_users)").fetchone()
    return not (row and row[0])


def _create_if_missing(cluster: LocalCluster, name: str) -> bool:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone()
    if not exists:
        cluster.create_database(name)
    return not exists


@dev.command("stop")
@click.option("--destroy", is_flag=True, help="Also delete the cluster's folder (all data).")
@friendly_errors
def dev_stop(destroy: bool) -> None:
    """Stop the local cluster (and with --destroy delete it)."""
    cluster = LocalCluster(dev_data_dir(), _dev_port())
    if destroy:
        cluster.destroy()
        click.echo(f"stopped and deleted {cluster.datadir}")
    else:
        cluster.stop()
        click.echo(f"stopped PostgreSQL of {cluster.datadir}")


# -- up --------------------------------------------------------------------------------------


def _port_option(name: str, what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    return click.option(
        f"--{name}-port",
        type=click.IntRange(1024, 65535),
        default=None,
        help=f"Port of {what} (default: the usual one, or a free one if it is taken).",
    )


@cli.command("up")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the cluster, logs, JWT secret and env file live (default: .data in the repo).",
)
@_port_option("pg", "the local PostgreSQL (default 54329 or COMPLIANCE_DEV_PG_PORT)")
@_port_option("web", "the web app (default 8080)")
@_port_option("postgrest", "PostgREST (default 3000)")
@_port_option("fakes", "the fake Zenefits (default 8081; the fake Classroom takes the next)")
@click.option(
    "--demo/--no-demo",
    default=True,
    help="Sync from the fake upstreams (default) or from the real ones in the environment.",
)
@click.option("--seed/--no-seed", default=True, help="Load the demo organisation when empty.")
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=0.5),
    default=10.0,
    show_default=True,
    help="Seconds a component has to stop after SIGTERM before it is killed.",
)
@friendly_errors
def up(
    data_dir: Path | None,
    pg_port: int | None,
    web_port: int | None,
    postgrest_port: int | None,
    fakes_port: int | None,
    demo: bool,
    seed: bool,
    stop_timeout: float,
) -> None:
    """Run the whole system here: PostgreSQL, migrate, demo data, fake upstreams, worker,
    web app and PostgREST; print URLs and demo tokens; Ctrl-C stops everything.

    Uses DATABASE_URL when it is set, else a local cluster under the data folder.
    """
    from compliance.run import DEFAULT_DATA_DIR, UpConfig, run_up

    settings = _settings()
    config = UpConfig(
        data_dir=data_dir or DEFAULT_DATA_DIR,
        database_url=settings.database_url,
        pg_port=pg_port,
        web_port=web_port,
        postgrest_port=postgrest_port,
        fakes_port=fakes_port,
        demo=demo,
        seed=seed,
        stop_timeout=stop_timeout,
    )
    sys.exit(run_up(config))


# -- doctor --------------------------------------------------------------------------------


@cli.command("doctor")
@click.option(
    "--db-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder holding migrations/, functions/, policies/ (default: the repo's db/).",
)
@click.option("--no-upstreams", is_flag=True, help="Skip the Zenefits/Google credential check.")
def doctor(db_dir: Path | None, no_upstreams: bool) -> None:
    """Check settings, PostgreSQL, roles, migrations, PostgREST, credentials; say how to fix.

    Exit status 0 only when all is well.
    """
    from compliance.doctor import render, run_checks

    findings = run_checks(db_dir=db_dir, upstreams=not no_upstreams)
    click.echo(render(findings))
    sys.exit(1 if any(f.is_problem for f in findings) else 0)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="compliance")


if __name__ == "__main__":
    # `python -m compliance.cli`: import the module under its own name, so that the commands
    # registered by the block below (after this guard) are part of the group that runs.
    from compliance.cli import main as _main

    _main()


# -- commands of other packages: each registers itself on `cli` here; keep this block last -----
cli.add_command(__import__("web.cli", fromlist=["web"]).web)
cli.add_command(__import__("sync.cli", fromlist=["sync_group"]).sync_group)
cli.add_command(__import__("sync.cli", fromlist=["worker_command"]).worker_command)
cli.add_command(__import__("sync.cli", fromlist=["fake_upstreams_command"]).fake_upstreams_command)
