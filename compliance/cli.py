"""The `compliance` command: database chores, demo tokens and a local development database.

    compliance db migrate            apply migrations, re-apply functions and policies
    compliance db reset --yes        drop and recreate the database, then migrate
    compliance db seed-demo          load the demo organisation
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

from compliance.localpg import LocalCluster, LocalClusterError
from compliance.migrate import DEFAULT_DB_DIR, MigrateError, migrate, reset
from compliance.settings import Settings, SettingsError, load_settings

P = ParamSpec("P")
R = TypeVar("R")

REPO_ROOT = DEFAULT_DB_DIR.parent
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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="compliance")


if __name__ == "__main__":
    main()
