"""`compliance up`: the whole system on one machine, supervised, stopped cleanly by Ctrl-C.

What it does, in order:

1. the data folder (``.data/`` in the repo, or ``--data-dir``): the JWT secret (made once,
   mode 0600), the local PostgreSQL cluster, the logs, ``env`` (exports for another shell) and
   ``run/up.json`` (the supervisor's and each child's pid, the addresses);
2. PostgreSQL: ``$DATABASE_URL`` when set, else a local cluster under the data folder, started
   (or reused) on 127.0.0.1;
3. ``migrate`` and, when the database has no user yet, the demo organisation (``seed-demo``);
4. the components, each a child process in its own process group: the fake upstreams (demo
   mode), the worker (which syncs at once), the web app and PostgREST (when a ``postgrest``
   binary is on PATH). A component whose command is not available is skipped with a message
   saying why and what to do; the list is data (:func:`plan_components`), not code;
5. prints the URLs, one demo token per application role and how to stop, then supervises:
   a child that dies stops the whole system (exit status 1);
6. on SIGINT (Ctrl-C), SIGTERM or SIGHUP: SIGTERM to each child's process group in reverse
   order, SIGKILL to whatever is left after ``--stop-timeout`` seconds, then the local cluster
   is stopped (fast) when this run started it. Every child also gets SIGTERM from the kernel if
   the supervisor itself is killed (PR_SET_PDEATHSIG), so nothing is orphaned.

Running it again reuses the data folder: the cluster, its data and the JWT secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, TextIO

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from compliance.db import redact_dsn
from compliance.localpg import LocalCluster, LocalClusterError, free_port
from compliance.migrate import MigrateError, migrate

__all__ = [
    "DEMO_USERS",
    "Component",
    "Supervisor",
    "UpConfig",
    "plan_components",
    "run_up",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / ".data"
DBNAME = "compliance"

#: One demo user per application role (seed-demo creates them); tokens are printed for each.
DEMO_USERS: tuple[tuple[str, str], ...] = (
    ("superadmin", "superadmin@annarbor-medical.test"),
    ("hr_admin", "hr@annarbor-medical.test"),
    ("manager", "manager@annarbor-medical.test"),
    ("employee", "employee@annarbor-medical.test"),
    ("viewer", "viewer@annarbor-medical.test"),
)

#: Where to get PostgREST when it is not on PATH.
POSTGREST_HINT = (
    "no `postgrest` on PATH: download the static Linux binary of PostgREST v12 or newer "
    "(postgrest-<version>-linux-static-x86-64.tar.xz from the PostgREST releases on GitHub), "
    "put it on PATH and run this again; `docker compose up` includes PostgREST"
)

#: Runs a child so that the kernel sends it SIGTERM when the supervisor dies (Linux
#: PR_SET_PDEATHSIG survives exec), then execs the real command.
_PDEATHSIG_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)

Echo = Callable[[str], None]


class UpError(Exception):
    """The system could not be brought up; the message says why and what to do."""


# -- configuration -------------------------------------------------------------------------------


@dataclass
class UpConfig:
    """How to run the system. Ports left None get their default, or a free one if taken."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    pg_port: int | None = None
    web_port: int | None = None
    postgrest_port: int | None = None
    fakes_port: int | None = None
    demo: bool = True
    seed: bool = True
    stop_timeout: float = 10.0
    ready_timeout: float = 60.0
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


DEFAULT_PORTS = {"pg": 54329, "web": 8080, "postgrest": 3000, "fakes": 8081, "classroom": 8082}


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) != 0


def pick_port(wanted: int | None, default: int, what: str, echo: Echo) -> int:
    """``wanted`` as given (it must be free), else ``default`` if free, else any free port."""
    if wanted is not None:
        if not _port_free(wanted):
            raise UpError(f"port {wanted} for {what} is already in use; choose another")
        return wanted
    if _port_free(default):
        return default
    port = free_port()
    echo(f"port {default} for {what} is taken; using {port}")
    return port


def _server_can_reach(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    return all(p.stat().st_mode & 0o001 for p in path.resolve().parents if p.exists())


def cluster_dir(data_dir: Path) -> Path:
    """``<data>/pg``, unless (as root) the postgres user cannot enter the data folder's parents
    (e.g. a checkout under /root): then a folder named after it under /var/tmp."""
    wanted = data_dir / "pg"
    if _server_can_reach(wanted):
        return wanted
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"compliance-dev-{digest}" / "pg"  # noqa: S108 - per-folder name


def jwt_secret(config: UpConfig) -> str:
    """``$JWT_SECRET``, else the one kept in ``<data>/jwt_secret`` (made on the first run)."""
    if config.env.get("JWT_SECRET"):
        return config.env["JWT_SECRET"]
    path = config.data_dir / "jwt_secret"
    if path.is_file() and len(path.read_text().strip()) >= 32:
        return path.read_text().strip()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


# -- components ----------------------------------------------------------------------------------


@dataclass
class Component:
    """One child process of the system, as data.

    ``command``: the `compliance` sub-command it runs (skipped when not registered);
    ``binary``: an executable it needs on PATH (skipped when missing, saying ``missing``);
    readiness: ``ready_file`` exists (deleted before the start), else ``health_url`` answers
    a GET (any HTTP status: the server is up), else ``port`` accepts TCP connections, else the
    process is still alive after ``settle`` seconds;
    ``env_files``: KEY=value files (written by components started before) merged into ``env``
    at start; ``urls``: addresses to publish (run/up.json) besides ``url``.
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    binary: str | None = None
    missing: str = ""
    health_url: str | None = None
    port: int | None = None
    ready_file: Path | None = None
    env_files: list[Path] = field(default_factory=list)
    url: str | None = None
    urls: dict[str, str] = field(default_factory=dict)
    about: str = ""
    settle: float = 1.0
    ready_timeout: float = 60.0


def compliance_argv(*args: str) -> list[str]:
    """Run a `compliance` sub-command with this interpreter (the same venv, no PATH lookup)."""
    return [sys.executable, "-c", "from compliance.cli import main; main()", *args]


def registered_commands() -> set[str]:
    from compliance.cli import cli

    return set(cli.commands)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (blank lines and # comments skipped; an ``export`` prefix allowed)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if value[:1] in ("'", '"'):
            parts = shlex.split(value)
            value = parts[0] if parts else ""
        values[key.strip()] = value
    return values


def demo_org_slug(env: Mapping[str, str]) -> str:
    """The organisation the worker syncs: COMPLIANCE_ORG_SLUG, else the demo's."""
    if env.get("COMPLIANCE_ORG_SLUG"):
        return env["COMPLIANCE_ORG_SLUG"]
    try:
        from compliance.seed import DEMO_SLUG
    except ImportError:  # pragma: no cover - the seed always defines it
        return "annarbor-medical"
    return str(DEMO_SLUG)


@dataclass
class Addresses:
    """Where everything listens; written to run/up.json and the env file."""

    database_url: str
    web_url: str
    postgrest_url: str
    fakes_url: str
    ports: dict[str, int]


def plan_components(
    config: UpConfig, addresses: Addresses, secret: str, postgrest_dsn: str
) -> list[Component]:
    """The system's processes, in start order (they stop in reverse order)."""
    host = config.host
    base_env = {
        "DATABASE_URL": addresses.database_url,
        "JWT_SECRET": secret,
        "PYTHONUNBUFFERED": "1",
    }
    components: list[Component] = []
    worker_env = base_env | {"COMPLIANCE_ORG_SLUG": demo_org_slug(config.env)}
    worker_files: list[Path] = []
    if config.demo:
        zenefits, classroom = addresses.ports["fakes"], addresses.ports["classroom"]
        folder = config.data_dir / "fake-upstreams"
        env_file = folder / "env"
        components.append(
            Component(
                name="fake-upstreams",
                argv=compliance_argv(
                    "fake-upstreams",
                    "--zenefits-port",
                    str(zenefits),
                    "--classroom-port",
                    str(classroom),
                    "--org",
                    worker_env["COMPLIANCE_ORG_SLUG"],
                    "--key-dir",
                    str(folder),
                    "--env-file",
                    str(env_file),
                    "--stripe-webhook-url",
                    f"{addresses.web_url}/webhooks/stripe",
                ),
                env=base_env,
                command="fake-upstreams",
                ready_file=env_file,
                url=addresses.fakes_url,
                urls={
                    "fake-zenefits": f"http://{host}:{zenefits}",
                    "fake-classroom": f"http://{host}:{classroom}",
                },
                about="fake Zenefits and Google Classroom (the demo data set; /_fake/... edits)",
            )
        )
        worker_files.append(env_file)
    components.append(
        Component(
            name="worker",
            argv=compliance_argv("worker"),
            env=worker_env,
            env_files=worker_files,
            command="worker",
            about="syncs at once, then every COMPLIANCE_SYNC_INTERVAL_HOURS and on request",
            settle=2.0,
        )
    )
    web_port = addresses.ports["web"]
    components.append(
        Component(
            name="web",
            argv=compliance_argv("web"),
            env=base_env
            | {
                "WEB_HOST": host,
                "WEB_PORT": str(web_port),
                "WEB_ALLOWED_ORIGINS": config.env.get("WEB_ALLOWED_ORIGINS")
                or f"{addresses.web_url},http://localhost:{web_port}",
            },
            env_files=worker_files,  # the demo: the fake Stripe's STRIPE_* settings
            command="web",
            health_url=f"{addresses.web_url}/health",
            url=addresses.web_url,
            about="exports, WebSocket relay (/ws), presence, /health, OpenAPI at /schema",
        )
    )
    pgrst_port = addresses.ports["postgrest"]
    admin_port = free_port()
    components.append(
        Component(
            name="postgrest",
            argv=["postgrest", str(REPO_ROOT / "postgrest.conf")],
            env={
                "PGRST_DB_URI": postgrest_dsn,
                "PGRST_JWT_SECRET": secret,
                "PGRST_SERVER_HOST": host,
                "PGRST_SERVER_PORT": str(pgrst_port),
                "PGRST_ADMIN_SERVER_PORT": str(admin_port),
                "PGRST_LOG_LEVEL": "error",
            },
            binary="postgrest",
            missing=POSTGREST_HINT,
            health_url=f"http://{host}:{pgrst_port}/",
            url=addresses.postgrest_url,
            about="the API: views and /rpc functions of schema api",
        )
    )
    return components


# -- supervising children ------------------------------------------------------------------------


class Child:
    """A started component: its process (leader of its own process group) and its log."""

    def __init__(self, component: Component, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.component = component
        self.proc = proc
        self.log = log
        self.pgid = proc.pid  # start_new_session: the child leads its own group
        self.lines: list[str] = []
        self.reader: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.component.name

    def alive(self) -> bool:
        return self.proc.poll() is None

    def group_alive(self) -> bool:
        """Whether any process of the child's group is left."""
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)

    def tail(self, count: int = 15) -> str:
        return "\n".join(f"    {line}" for line in self.lines[-count:])


class Supervisor:
    """Starts components as children, relays their output, stops them all on request."""

    def __init__(
        self, log_dir: Path, out: TextIO | None = None, stop_timeout: float = 10.0
    ) -> None:
        self.log_dir = log_dir
        self.out = out or sys.stdout
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.width = 14

    def say(self, text: str) -> None:
        with self._lock:
            print(text, file=self.out, flush=True)

    def available(self, component: Component, commands: set[str]) -> str | None:
        """Why the component cannot run here (None: it can)."""
        if component.command is not None and component.command not in commands:
            return (
                f"`compliance {component.command}` is not available in this checkout yet "
                "(its package has not registered the command); the rest runs without it"
            )
        if component.binary is not None and shutil.which(component.binary) is None:
            return component.missing or f"`{component.binary}` is not on PATH"
        return None

    def start(self, component: Component, base_env: Mapping[str, str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{component.name}.log"
        env = {**base_env, **component.env}
        for path in component.env_files:
            env.update(read_env_file(path))
        if component.ready_file is not None:
            component.ready_file.unlink(missing_ok=True)
        argv = [sys.executable, "-c", _PDEATHSIG_LAUNCHER, str(os.getpid()), *component.argv]
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO_ROOT,
        )
        child = Child(component, proc, log)
        child.reader = threading.Thread(
            target=self._relay, args=(child,), name=f"relay-{component.name}", daemon=True
        )
        child.reader.start()
        self.children.append(child)
        return child

    def _relay(self, child: Child) -> None:
        stream: IO[bytes] | None = child.proc.stdout
        if stream is None:
            return
        prefix = f"{child.name:<{self.width}}| "
        with child.log.open("a", encoding="utf-8") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                child.lines.append(line)
                del child.lines[:-200]
                log.write(line + "\n")
                log.flush()
                self.say(prefix + line)

    def wait_ready(self, child: Child) -> None:
        """Return once the child is ready; raise UpError if it dies or takes too long."""
        component = child.component
        deadline = time.monotonic() + component.ready_timeout
        started = time.monotonic()
        with httpx.Client(timeout=2.0) as client:
            while True:
                if not child.alive():
                    self._join_reader(child)
                    raise UpError(
                        f"{child.name} exited with status {child.proc.returncode} while "
                        f"starting (log: {child.log}):\n{child.tail()}"
                    )
                if self.stopping.is_set():
                    raise UpError("stopped while starting")
                if component.ready_file is not None:
                    with contextlib.suppress(OSError):
                        if component.ready_file.stat().st_size > 0:
                            return
                elif component.health_url is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        client.get(component.health_url)
                        return
                elif component.port is not None:
                    if not _port_free(component.port):
                        return
                elif time.monotonic() - started >= component.settle:
                    return
                if time.monotonic() > deadline:
                    raise UpError(
                        f"{child.name} not ready after {component.ready_timeout:.0f} s "
                        f"(log: {child.log}):\n{child.tail()}"
                    )
                time.sleep(0.1)

    def _join_reader(self, child: Child) -> None:
        if child.reader is not None:
            child.reader.join(timeout=2)

    def first_dead(self) -> Child | None:
        for child in self.children:
            if not child.alive():
                return child
        return None

    def stop_all(self) -> list[str]:
        """SIGTERM every child's group (reverse start order), SIGKILL what is left after the
        timeout. Returns the names of the children that had to be killed."""
        killed: list[str] = []
        running = [c for c in reversed(self.children) if c.group_alive() or c.alive()]
        for child in running:
            self.say(f"==> stopping {child.name}")
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline:
            for child in running:
                child.proc.poll()
            if not any(c.alive() or c.group_alive() for c in running):
                break
            time.sleep(0.05)
        for child in running:
            if child.alive() or child.group_alive():
                self.say(f"==> {child.name} ignored SIGTERM for {self.stop_timeout:.0f} s: killing")
                child.signal_group(signal.SIGKILL)
                killed.append(child.name)
        for child in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=5)
            self._join_reader(child)
        return killed


# -- the database --------------------------------------------------------------------------------


@dataclass
class Database:
    dsn: str
    cluster: LocalCluster | None = None
    started_here: bool = False

    def stop(self) -> None:
        if self.cluster is not None and self.started_here:
            self.cluster.stop()


def prepare_database(config: UpConfig, echo: Echo) -> Database:
    """Use DATABASE_URL, or start (or reuse) the local cluster; create the database."""
    if config.database_url:
        echo(f"==> using DATABASE_URL ({shown(config.database_url)})")
        return Database(config.database_url)
    folder = cluster_dir(config.data_dir)
    port = config.pg_port or int(config.env.get("COMPLIANCE_DEV_PG_PORT") or DEFAULT_PORTS["pg"])
    cluster = LocalCluster(folder, port)
    was_running = cluster.is_running()
    fresh = not cluster.initialised
    cluster.start()
    if was_running:
        echo(f"==> PostgreSQL already running on 127.0.0.1:{port} ({folder}); reusing it")
    else:
        what = "created and started" if fresh else "started (data reused)"
        echo(f"==> PostgreSQL {what} on 127.0.0.1:{port} (data in {folder})")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        found = conn.execute("select 1 from pg_database where datname = %s", [DBNAME]).fetchone()
    if not found:
        cluster.create_database(DBNAME)
    return Database(cluster.dsn(DBNAME), cluster, started_here=not was_running)


def shown(dsn: str) -> str:
    """The DSN as given when it holds no password, else with the password masked."""
    try:
        has_password = bool(conninfo_to_dict(dsn).get("password"))
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    return redact_dsn(dsn) if has_password else dsn


def has_users(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        table = conn.execute("select to_regclass('app.app_users')").fetchone()
        if table is None or table[0] is None:
            return False
        row = conn.execute("select exists (select from app.app_users)").fetchone()
    return bool(row and row[0])


def seed_if_empty(dsn: str, echo: Echo) -> None:
    if has_users(dsn):
        echo("==> demo data already there (start afresh: compliance dev stop --destroy)")
        return
    try:
        from compliance.seed import seed_demo

        started = time.monotonic()
        with psycopg.connect(dsn) as conn:
            seed_demo(conn)
            conn.commit()
    except NotImplementedError as exc:
        echo(f"==> demo data not loaded: {exc or 'seed-demo is not built yet'}")
        return
    except psycopg.Error as exc:
        text = exc.diag.message_primary or str(exc).strip()
        raise UpError(
            f"loading the demo data failed ({exc.sqlstate}: {text}); nothing of it was kept"
        ) from exc
    echo(f"==> demo organisation loaded in {time.monotonic() - started:.1f} s")


def demo_tokens(dsn: str, secret: str, env: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(role, e-mail, token) for each demo user (else any active user of that role)."""
    from compliance.cli import make_token
    from compliance.settings import load_settings

    settings = load_settings(
        jwt_secret=secret,
        jwt_audience=env.get("JWT_AUDIENCE") or None,
        jwt_lifetime_seconds=int(env.get("JWT_LIFETIME_SECONDS") or 60 * 60 * 12),
    )
    tokens: list[tuple[str, str, str]] = []
    with psycopg.connect(dsn) as conn:
        if conn.execute("select to_regclass('app.app_users')").fetchone() in (None, (None,)):
            return []
        for role, email in DEMO_USERS:
            row = conn.execute(
                "select id::text, email from app.app_users"
                " where active and app_role::text = %s"
                " order by lower(email) = lower(%s) desc, email limit 1",
                [role, email],
            ).fetchone()
            if row is not None:
                token = make_token(settings, user_id=row[0], email=row[1])
                tokens.append((role, row[1], token))
    return tokens


def postgrest_dsn(database_url: str, env: Mapping[str, str]) -> str:
    """The database as role authenticator (PostgREST's login), same host and database."""
    params = conninfo_to_dict(database_url)
    password = env.get("AUTHENTICATOR_PASSWORD") or None
    params.pop("password", None)
    params["user"] = "authenticator"
    if password:
        params["password"] = password
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


# -- the whole run -------------------------------------------------------------------------------


class _Signals:
    """Turn SIGINT/SIGTERM/SIGHUP into an event while installed (restored on exit)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.received: int | None = None
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum
        self.event.set()

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _shell_quote(value: str) -> str:
    return shlex.quote(value)


@contextlib.contextmanager
def _state_file(path: Path, state: dict[str, Any]) -> Iterator[Callable[[], None]]:
    def write() -> None:
        _write_private(path, json.dumps(state, indent=2) + "\n")

    write()
    try:
        yield write
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def run_up(config: UpConfig, out: TextIO | None = None) -> int:
    """Bring the system up and supervise it until a signal or a failure; returns the exit code."""
    out = out or sys.stdout

    def echo(text: str) -> None:
        print(text, file=out, flush=True)

    data_dir = config.data_dir.resolve()
    config.data_dir = data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    reused = (data_dir / "jwt_secret").exists()
    echo(f"==> data folder {data_dir}" + (" (reused)" if reused else " (new)"))
    secret = jwt_secret(config)
    with contextlib.suppress(FileNotFoundError):
        (data_dir / "env").unlink()  # written anew once everything is up
    supervisor = Supervisor(data_dir / "logs", out=out, stop_timeout=config.stop_timeout)
    database: Database | None = None
    with _Signals(supervisor.stopping) as signals:
        try:
            database = prepare_database(config, echo)
            dsn = database.dsn
            migrate(
                dsn,
                authenticator_password=config.env.get("AUTHENTICATOR_PASSWORD") or None,
                echo=lambda line: None if line.startswith("  applied") else echo("    " + line),
            )
            if config.seed:
                seed_if_empty(dsn, echo)
            if supervisor.stopping.is_set():
                raise UpError("stopped while starting")
            return _run_components(config, supervisor, dsn, secret, started, echo)
        except (UpError, MigrateError, LocalClusterError) as exc:
            if signals.received is None:
                echo(f"error: {exc}")
            return 1 if signals.received is None else 0
        except psycopg.OperationalError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            echo(f"error: cannot reach the database: {first}")
            return 1
        finally:
            killed = supervisor.stop_all()
            if database is not None and database.started_here:
                echo("==> stopping PostgreSQL")
                with contextlib.suppress(Exception):
                    database.stop()
            if killed:
                echo(f"==> had to kill: {', '.join(killed)}")
            echo("==> stopped; the data stays in " + str(data_dir) + " (run again to reuse it)")


def _run_components(
    config: UpConfig,
    supervisor: Supervisor,
    dsn: str,
    secret: str,
    started: float,
    echo: Echo,
) -> int:
    host = config.host
    ports = {
        name: pick_port(getattr(config, f"{name}_port"), DEFAULT_PORTS[name], name, echo)
        for name in ("web", "postgrest", "fakes")
    }
    # the fake Classroom listens on the port after the fake Zenefits (or any free one)
    classroom = ports["fakes"] + 1
    ports["classroom"] = (
        classroom
        if classroom <= 65535 and classroom not in ports.values() and _port_free(classroom)
        else free_port()
    )
    addresses = Addresses(
        database_url=dsn,
        web_url=f"http://{host}:{ports['web']}",
        postgrest_url=f"http://{host}:{ports['postgrest']}",
        fakes_url=f"http://{host}:{ports['fakes']}",
        ports=ports,
    )
    components = plan_components(config, addresses, secret, postgrest_dsn(dsn, config.env))
    commands = registered_commands()
    base_env = {k: v for k, v in config.env.items() if not k.startswith("PGRST_")}
    state: dict[str, Any] = {
        "pid": os.getpid(),
        "data_dir": str(config.data_dir),
        "database_url": shown(dsn),
        "urls": {},
        "children": {},
        "skipped": {},
    }
    running: list[Component] = []
    with _state_file(config.data_dir / "run" / "up.json", state) as save:
        for component in components:
            why = supervisor.available(component, commands)
            if why is not None:
                echo(f"==> {component.name}: not started: {why}")
                state["skipped"][component.name] = why
                save()
                continue
            echo(f"==> starting {component.name}")
            child = supervisor.start(component, base_env)
            state["children"][component.name] = {"pid": child.proc.pid, "pgid": child.pgid}
            save()
            supervisor.wait_ready(child)
            if component.url:
                state["urls"][component.name] = component.url
            state["urls"].update(component.urls)
            running.append(component)
            save()
        tokens = demo_tokens(dsn, secret, config.env)
        _write_env_file(config, addresses, running, tokens)
        _print_summary(echo, config, addresses, running, state["skipped"], tokens, started)
        while not supervisor.stopping.wait(0.5):
            dead = supervisor.first_dead()
            if dead is not None:
                supervisor._join_reader(dead)
                raise UpError(
                    f"{dead.name} exited with status {dead.proc.returncode}; stopping the "
                    f"system (log: {dead.log}):\n{dead.tail()}"
                )
    echo("==> stop requested")
    return 0


def _write_env_file(
    config: UpConfig,
    addresses: Addresses,
    running: list[Component],
    tokens: list[tuple[str, str, str]],
) -> None:
    names = {c.name for c in running}
    lines = [
        "# written by `compliance up`: source it in another shell",
        f"export DATABASE_URL={_shell_quote(addresses.database_url)}",
        f"export JWT_SECRET={_shell_quote(jwt_secret(config))}",
    ]
    if "web" in names:
        lines.append(f"export WEB_URL={_shell_quote(addresses.web_url)}")
    if "postgrest" in names:
        lines.append(f"export POSTGREST_URL={_shell_quote(addresses.postgrest_url)}")
    for component in running:
        # what a component published for the others (the fake upstreams' settings)
        if component.ready_file is not None and component.ready_file.is_file():
            lines.append(f"# from {component.name}")
            for key, value in read_env_file(component.ready_file).items():
                lines.append(f"export {key}={_shell_quote(value)}")
    for role, _email, token in tokens:
        lines.append(f"export TOKEN_{role.upper()}={_shell_quote(token)}")
    _write_private(config.data_dir / "env", "\n".join(lines) + "\n")


def _print_summary(
    echo: Echo,
    config: UpConfig,
    addresses: Addresses,
    running: list[Component],
    skipped: Mapping[str, str],
    tokens: list[tuple[str, str, str]],
    started: float,
) -> None:
    echo("")
    echo(f"The system is up ({time.monotonic() - started:.1f} s). Addresses:")
    echo(f"  {'database':<15} {shown(addresses.database_url)}")
    for component in running:
        where = component.url or "(no address)"
        echo(f"  {component.name:<15} {where}   {component.about}")
    for name in skipped:
        echo(f"  {name:<15} not running (see above)")
    if tokens:
        echo("")
        echo("Demo tokens (Authorization: Bearer <token>), one per role:")
        for role, email, token in tokens:
            echo(f"  {role:<11} {email:<36} {token}")
    else:
        echo("")
        echo("No demo users yet, so no tokens (compliance db seed-demo loads them).")
    echo("")
    env_file = config.data_dir / "env"
    echo(f"In another shell: source {env_file}   (DATABASE_URL, JWT_SECRET, TOKEN_<ROLE>)")
    if any(c.name == "web" for c in running):
        echo(f"  curl -H \"Authorization: Bearer $TOKEN_HR_ADMIN\" {addresses.web_url}"
             "/export/compliance.csv")  # fmt: skip
    if any(c.name == "postgrest" for c in running):
        echo(f"  curl -H \"Authorization: Bearer $TOKEN_HR_ADMIN\" {addresses.postgrest_url}"
             "/employees?limit=5")  # fmt: skip
    echo(f"Stop: Ctrl-C here (or kill -TERM {os.getpid()}); everything stops, the data stays.")


# -- driving `compliance up` from another process (end-to-end tests, benchmarks) ---------------


class BackgroundSystem:
    """`compliance up` (or ``bin/up``) started in the background, in its own session.

    ``start()``, ``wait_up(timeout)`` (returns run/up.json once every component is ready and
    the env file is written), ``stop()`` (SIGINT, as Ctrl-C; returns the exit status) and
    ``leftovers()`` (processes of this system still alive after it stopped).
    """

    def __init__(
        self,
        data_dir: Path,
        args: list[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        via_bin_up: bool = False,
        log: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.args = list(args or [])
        self.env = dict(os.environ if env is None else env)
        self.via_bin_up = via_bin_up
        self.log = log or (self.data_dir.parent / f"{self.data_dir.name}-up.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {}
        self.started_at = 0.0

    def argv(self) -> list[str]:
        tail = ["--data-dir", str(self.data_dir), *self.args]
        if self.via_bin_up:
            return ["bash", str(REPO_ROOT / "bin" / "up"), *tail]
        return compliance_argv("up", *tail)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = time.monotonic()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv(),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO_ROOT,
            )

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_up(self, timeout: float = 180.0) -> dict[str, Any]:
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        env_file = self.data_dir / "env"
        state_file = self.data_dir / "run" / "up.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise UpError(
                    f"`compliance up` exited with {self.proc.returncode}:\n{self.output()[-4000:]}"
                )
            if env_file.exists() and state_file.exists():
                with contextlib.suppress(ValueError, OSError):
                    self.state = json.loads(state_file.read_text())
                    return self.state
            time.sleep(0.1)
        raise UpError(f"`compliance up` not up after {timeout:.0f} s:\n{self.output()[-4000:]}")

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C (SIGINT to the supervisor); SIGKILL to the whole session after ``timeout``."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def leftovers(self) -> list[str]:
        """Processes still alive that belong to this system: its children (by pid and process
        group, from run/up.json) and anything whose command line names the data folder."""
        found: list[str] = []
        groups = {int(c["pgid"]) for c in self.state.get("children", {}).values()}
        marks = {str(self.data_dir), str(cluster_dir(self.data_dir))}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[-1].split()
            if fields[0] == "Z":
                continue
            pgid = int(fields[2])
            if pgid in groups or any(mark in cmdline for mark in marks):
                found.append(f"{entry.name}: {cmdline.strip()[:200]}")
        return found
