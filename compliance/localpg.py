"""A throwaway PostgreSQL cluster in a folder: for tests and ``compliance dev up``.

initdb (UTF8, trust on the local socket and 127.0.0.1), start on a port (a free one by
default) with the unix socket inside the data folder, wait until ready, create databases,
stop (fast). PostgreSQL refuses to run as root, so as root every server command runs as the
``postgres`` system user (``runuser -u postgres --``) and the folder is given to that user.
Settings favour speed over durability (fsync off): never keep real data in such a cluster.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

__all__ = ["LocalCluster", "LocalClusterError", "find_bindir", "free_port"]

SERVER_USER = "postgres"


class LocalClusterError(Exception):
    """The cluster could not be created, started or stopped; the message says why."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bindir() -> Path:
    """The folder of initdb/pg_ctl/postgres: ``$PG_BINDIR``, ``pg_config --bindir``, or the
    newest ``/usr/lib/postgresql/*/bin``."""
    candidates: list[Path] = []
    if env := os.environ.get("PG_BINDIR"):
        candidates.append(Path(env))
    versioned = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    candidates.extend(versioned)
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], check=True, capture_output=True, text=True
            ).stdout.strip()
            # On Debian pg_config is from the newest libpq-dev and may point at /usr/bin
            # (wrappers only); keep it as a last resort.
            candidates.append(Path(out))
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise LocalClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql-15 "
        "(bin/up does it) or set PG_BINDIR"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalCluster:
    """One PostgreSQL cluster living in ``datadir`` (created if missing).

    Use as a context manager (start on enter, stop on exit) or call ``init``/``start``/``stop``.
    Connect through :attr:`dsn` (TCP on 127.0.0.1, user ``postgres``, trust auth).
    """

    def __init__(
        self,
        datadir: Path | str,
        port: int | None = None,
        *,
        bindir: Path | None = None,
        superuser: str = "postgres",
        settings: dict[str, str] | None = None,
    ) -> None:
        """``settings``: server settings given at start (``-c name=value``), e.g. a benchmark's
        shared_buffers."""
        self.datadir = Path(datadir).resolve()
        self.settings = dict(settings or {})
        self.port = port if port is not None else free_port()
        self.bindir = bindir or find_bindir()
        self.superuser = superuser
        self.as_root = os.geteuid() == 0

    # -- paths and addresses ---------------------------------------------------------------

    @property
    def pgdata(self) -> Path:
        """The data folder (``datadir/data``)."""
        return self.datadir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.datadir / "run"

    @property
    def logfile(self) -> Path:
        return self.datadir / "postgres.log"

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        """A libpq URI to a database of this cluster (TCP, trust auth, no password)."""
        return f"postgresql://{user or self.superuser}@127.0.0.1:{self.port}/{dbname}"

    # -- running server commands -----------------------------------------------------------

    def _cmd(self, program: str, *args: str) -> list[str]:
        argv = [str(self.bindir / program), *args]
        if self.as_root:
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return argv

    def _run(self, program: str, *args: str, what: str) -> str:
        try:
            done = subprocess.run(
                self._cmd(program, *args),
                capture_output=True,
                text=True,
                check=False,
                cwd=self.datadir,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LocalClusterError(f"{what} failed: {exc}") from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            log = self._log_tail()
            raise LocalClusterError(
                f"{what} failed (exit {done.returncode}): {' | '.join(tail)}"
                + (f"\nserver log: {log}" if log else "")
            )
        return done.stdout

    def _log_tail(self, lines: int = 8) -> str:
        try:
            text = self.logfile.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def _give_to_server_user(self, *paths: Path) -> None:
        if not self.as_root:
            return
        for path in paths:
            shutil.chown(path, SERVER_USER, SERVER_USER)
        # The server user must be able to reach datadir: every parent needs search (x) rights.
        for parent in self.datadir.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                raise LocalClusterError(
                    f"user {SERVER_USER} cannot enter {parent} (mode {oct(mode & 0o777)}); "
                    "choose a folder under one that others may enter, e.g. /tmp"
                )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").is_file()

    def init(self) -> None:
        """initdb into ``datadir/data`` unless it is already a cluster."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._give_to_server_user(self.datadir, self.socket_dir)
        if self.initialised:
            return
        self._run(
            "initdb",
            "--pgdata", str(self.pgdata),
            "--username", self.superuser,
            "--encoding", "UTF8",
            "--locale", "C.UTF-8",
            "--auth-local", "trust",
            "--auth-host", "trust",
            "--no-sync",
            what="initdb",
        )  # fmt: skip
        hba = (
            "# written by compliance.localpg: trust on the socket and on loopback only\n"
            "local all all trust\n"
            "host  all all 127.0.0.1/32 trust\n"
            "host  all all ::1/128 trust\n"
        )
        (self.pgdata / "pg_hba.conf").write_text(hba)
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# compliance.localpg: a throwaway cluster, tuned for test speed\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "shared_preload_libraries = ''\n"
                "max_connections = 100\n"
                "log_min_messages = warning\n"
                "log_min_error_statement = panic\n"
            )
        self._give_to_server_user(self.pgdata / "pg_hba.conf")

    def is_running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        done = subprocess.run(
            self._cmd("pg_ctl", "status", "--pgdata", str(self.pgdata)),
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def start(self, timeout: float = 30.0) -> None:
        """initdb if needed, start the server, wait until it accepts connections."""
        self.init()
        if self.is_running():
            self._wait_ready(timeout)
            return
        if _port_in_use(self.port):
            raise LocalClusterError(
                f"port {self.port} on 127.0.0.1 is already in use; pick another port"
            )
        if self.as_root and not self.logfile.exists():
            self.logfile.touch()
            self._give_to_server_user(self.logfile)
        self._run(
            "pg_ctl",
            "start",
            "--pgdata", str(self.pgdata),
            "--log", str(self.logfile),
            "--options", " ".join([f"-p {self.port} -k {self.socket_dir}",
                                   *(f"-c {k}={v}" for k, v in self.settings.items())]),
            "--wait",
            "--timeout", str(int(timeout)),
            what=f"starting PostgreSQL on port {self.port}",
        )  # fmt: skip
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("select 1")
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.1)
        raise LocalClusterError(
            f"PostgreSQL on port {self.port} not ready after {timeout:.0f} s: {last}"
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown); nothing happens if it is not running."""
        if not self.initialised or not (self.pgdata / "postmaster.pid").exists():
            return
        self._run(
            "pg_ctl", "stop", "--pgdata", str(self.pgdata), "--mode", "fast", "--wait",
            what="stopping PostgreSQL",
        )  # fmt: skip

    def destroy(self) -> None:
        """Stop the server and delete ``datadir``."""
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)

    def create_database(self, name: str, *, exists_ok: bool = True) -> str:
        """Create a database (UTF8); returns its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            found = conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone()
            if found and not exists_ok:
                raise LocalClusterError(f"database {name} already exists")
            if not found:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
