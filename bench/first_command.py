"""Time from the README's first command to a healthy system with a completed first sync.

    python bench/first_command.py [--runs 1] [--keep]

Runs ``bin/up`` (PostgreSQL already installed, .venv already built: what bin/up then does is
initdb, migrate, seed the demo, start the fake upstreams, the worker, the web app and
PostgREST when present) against a fresh data folder and free ports, and measures:

- up: the command's start until it printed the addresses (every component ready);
- healthy: until ``GET /health`` of the web app answers 200;
- first sync: until the worker's first sync of both sources has finished (completed or
  partial, none still running) — the figure, target <= 60 s;
- stop: Ctrl-C until every process is gone;
- again: a second start on the same data (reused) until healthy.

Prints the figures and the conditions (machine, PostgreSQL, rows synced, components that ran).
"""

from __future__ import annotations

import argparse
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
import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compliance.localpg import find_bindir, free_port  # noqa: E402
from compliance.run import BackgroundSystem  # noqa: E402

TARGET_SECONDS = 60.0


def ports() -> dict[str, int]:
    chosen: set[int] = set()
    while len(chosen) < 4:
        chosen.add(free_port())
    pg, web, postgrest, fakes = sorted(chosen)
    return {"pg": pg, "web": web, "postgrest": postgrest, "fakes": fakes}


def args_for(p: dict[str, int]) -> list[str]:
    return [
        "--pg-port", str(p["pg"]), "--web-port", str(p["web"]),
        "--postgrest-port", str(p["postgrest"]), "--fakes-port", str(p["fakes"]),
    ]  # fmt: skip


def sync_state(dsn: str) -> tuple[bool, list[dict[str, Any]]]:
    try:
        with psycopg.connect(dsn, row_factory=dict_row, connect_timeout=2) as conn:
            runs = conn.execute(
                "select source::text, type::text, status::text, started_at, completed_at"
                " from app.sync_runs order by started_at"
            ).fetchall()
    except psycopg.Error:
        return False, []
    # a full run (Zenefits then Classroom), or one run of each source's types
    finished = {r["type"] for r in runs if r["status"] in ("completed", "partial")}
    running = [r for r in runs if r["status"] in ("started", "in_progress")]
    both = "full" in finished or (
        "employees" in finished and bool({"completions", "training_modules"} & finished)
    )
    return both and not running, runs


def healthy(url: str | None) -> bool:
    if url is None:
        return False
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait(check: Any, system: BackgroundSystem, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if system.proc is not None and system.proc.poll() is not None:
            return None
        if check():
            return time.monotonic() - system.started_at
        time.sleep(0.1)
    return None


def fmt(seconds: float | None) -> str:
    return f"{seconds:6.1f} s" if seconds is not None else "   n/a"


def one_run(workdir: Path, timeout: float) -> dict[str, Any]:
    data = workdir / "data"
    p = ports()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET")}
    system = BackgroundSystem(data, args_for(p), env=env, via_bin_up=True)
    dsn = f"postgresql://postgres@127.0.0.1:{p['pg']}/compliance"
    result: dict[str, Any] = {"ports": p}
    system.start()
    try:
        state = system.wait_up(timeout=timeout)
        result["up"] = time.monotonic() - system.started_at
        result["components"] = sorted(state.get("children", {}))
        result["skipped"] = state.get("skipped", {})
        web = state.get("urls", {}).get("web")
        # /health is 200 only once every source has synced: without a worker it never is
        has_worker = "worker" in result["components"]
        result["healthy"] = (
            wait(lambda: healthy(web), system, timeout if has_worker else 5) if web else None
        )
        if has_worker:
            result["first_sync"] = wait(lambda: sync_state(dsn)[0], system, timeout)
        else:
            result["first_sync"] = None
        result["runs"] = sync_state(dsn)[1]
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "select (select count(*) from app.employees), (select count(*) from "
                "app.training_modules), (select count(*) from app.training_assignments),"
                " current_setting('server_version')"
            ).fetchone()
        result["rows"] = row
    finally:
        stop_started = time.monotonic()
        result["exit"] = system.stop()
        result["stop"] = time.monotonic() - stop_started
        result["leftovers"] = system.leftovers()
    again = BackgroundSystem(data, args_for(p), env=env, via_bin_up=True, log=system.log)
    again.start()
    try:
        state = again.wait_up(timeout=timeout)
        web = state.get("urls", {}).get("web")
        result["again"] = (
            wait(lambda: healthy(web), again, timeout)
            if web
            else time.monotonic() - again.started_at
        )
    finally:
        again.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh starts to time")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="keep the data folders")
    options = parser.parse_args()

    def stop_on_sigterm(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # run the finally blocks: stop what was started

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # Untimed: make sure .venv is current, so the figure does not include a pip install.
    subprocess.run(
        ["bash", "-c", f'source "{ROOT}/bin/lib.sh" && ensure_venv "{ROOT}"'], check=True
    )
    try:
        bindir = find_bindir()
    except Exception as exc:
        print(f"PostgreSQL is not installed ({exc}); the figure assumes it is.")
        return 2
    load = os.getloadavg()
    results = []
    for number in range(1, options.runs + 1):
        workdir = Path(tempfile.mkdtemp(prefix="compliance-bench-up-"))
        os.chmod(workdir, 0o755)  # noqa: S103 - the postgres user must enter it as root
        try:
            print(f"run {number}: bin/up on a fresh data folder {workdir / 'data'} ...", flush=True)
            results.append(one_run(workdir, options.timeout))
        finally:
            if not options.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("first command (bin/up) to a healthy system with a completed first sync")
    print(f"  machine:    {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, PostgreSQL binaries {bindir}")  # fmt: skip
    print("  conditions: PostgreSQL and .venv already installed (bin/up checks, installs nothing);")
    print("              fresh data folder: initdb, migrate, seed-demo, first sync from the fake")
    print("              upstreams (demo data set); free ports; load average before: "
          + ", ".join(f"{x:.2f}" for x in load))  # fmt: skip
    for number, r in enumerate(results, 1):
        rows = r.get("rows") or (None, None, None, "?")
        ran = ", ".join(r.get("components", [])) or "none"
        skipped = ", ".join(r.get("skipped", {}))
        print(f"  run {number}: PostgreSQL {rows[3]}; components {ran}"
              + (f"; not running: {skipped}" if skipped else ""))  # fmt: skip
        print(f"    up (addresses printed) {fmt(r.get('up'))}")
        print(f"    healthy (/health 200)  {fmt(r.get('healthy'))}")
        first = r.get("first_sync")
        verdict = "" if first is None else ("  MET" if first <= TARGET_SECONDS else "  MISSED")
        print(
            f"    first sync completed   {fmt(first)}   target <= {TARGET_SECONDS:.0f} s{verdict}"
        )
        print(f"    synced rows            employees {rows[0]}, modules {rows[1]}, "
              f"assignments {rows[2]}")  # fmt: skip
        print(f"    stop (Ctrl-C to gone)  {fmt(r.get('stop'))}   exit {r.get('exit')}, "
              f"left behind: {len(r.get('leftovers', []))}")  # fmt: skip
        print(f"    second start (reuse)   {fmt(r.get('again'))}")
        if r.get("first_sync") is None:
            print("    (no first-sync figure: the worker or web app is not available yet, or the")
            print("     sync did not finish; see the skipped components above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
