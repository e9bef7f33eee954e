"""Shared pieces of the web benchmarks (bench/web_*.py): a throwaway PostgreSQL cluster, the web
app as a separate process (`compliance web`), tokens, and the machine's description."""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from psycopg.conninfo import make_conninfo

from compliance.localpg import LocalCluster, free_port
from compliance.migrate import migrate

SECRET = "bench-secret-for-the-web-app-0123456789abcdef"  # noqa: S105 - a throwaway cluster
ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
    )


def start_cluster() -> tuple[LocalCluster, str]:
    """A migrated throwaway database; the cluster is removed at exit."""
    tmp = Path(tempfile.mkdtemp(prefix="compliance-bench-pg-"))
    os.chmod(tmp, 0o755)  # noqa: S103 - the postgres user must enter it when we run as root
    cluster = LocalCluster(tmp)

    def cleanup() -> None:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(cleanup)
    cluster.start()
    dsn = cluster.create_database("bench")
    migrate(dsn, ROOT / "db", echo=lambda _line: None)
    return cluster, dsn


def token(user_id: Any, ttl: int = 3600) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "role": "authenticated", "iat": now, "exp": now + ttl}
    return jwt.encode(claims, SECRET, algorithm="HS256")


class WebProcess:
    """`compliance web` in its own process, pointed at ``dsn`` as role web_app."""

    def __init__(self, dsn: str, **env: str) -> None:
        self.port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "PG"))}
        environment.update(
            {
                "JWT_SECRET": SECRET,
                "WEB_DATABASE_URL": make_conninfo(dsn, user="web_app"),
                "WEB_PORT": str(self.port),
                "WEB_HOST": "127.0.0.1",
                "WEB_ALLOWED_ORIGINS": "http://bench.test",
                "WEB_LOG_LEVEL": "WARNING",
            }
        )
        environment.update(env)
        executable = Path(sys.executable).parent / "compliance"
        self.proc = subprocess.Popen(
            [str(executable), "web"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"the web app did not start: {err[-2000:]}")
            time.sleep(0.1)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self, field: str) -> int:
        """A kB figure of /proc/<pid>/status (VmHWM = peak RSS, VmRSS = current)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
