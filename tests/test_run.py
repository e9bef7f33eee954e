"""The supervisor behind `compliance up` / bin/up: start, readiness, stop, no orphans."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from compliance import run
from compliance.localpg import free_port
from compliance.run import Component, Supervisor, UpConfig, UpError

PY = sys.executable


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


SLEEPER = py("import time\nprint('ready', flush=True)\ntime.sleep(300)")
STUBBORN = py(
    """
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print('ignoring SIGTERM', flush=True)
    time.sleep(300)
    """
)
#: A parent that starts a grandchild in its process group and prints the grandchild's pid.
WITH_GRANDCHILD = py(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])
    print('grandchild', child.pid, flush=True)
    time.sleep(300)
    """
)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sup = Supervisor(tmp_path / "logs", out=io.StringIO(), stop_timeout=2.0)
    try:
        yield sup
    finally:
        sup.stop_all()


def wait_for_line(child: run.Child, prefix: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(child.lines):
            if line.startswith(prefix):
                return line
        time.sleep(0.02)
    raise AssertionError(f"no line starting with {prefix!r}; got {child.lines!r}")


# -- Supervisor ------------------------------------------------------------------------------


def test_children_are_stopped_with_sigterm(supervisor: Supervisor) -> None:
    child = supervisor.start(Component("sleeper", SLEEPER), os.environ)
    wait_for_line(child, "ready")
    assert supervisor.stop_all() == []
    assert child.proc.returncode == -signal.SIGTERM
    assert not child.group_alive()
    assert (supervisor.log_dir / "sleeper.log").read_text() == "ready\n"


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(supervisor: Supervisor) -> None:
    child = supervisor.start(Component("stubborn", STUBBORN), os.environ)
    wait_for_line(child, "ignoring")
    started = time.monotonic()
    assert supervisor.stop_all() == ["stubborn"]
    assert time.monotonic() - started >= supervisor.stop_timeout
    assert child.proc.returncode == -signal.SIGKILL
    assert not child.group_alive()


def test_grandchildren_go_with_their_parent(supervisor: Supervisor) -> None:
    child = supervisor.start(Component("parent", WITH_GRANDCHILD), os.environ)
    grandchild = int(wait_for_line(child, "grandchild").split()[1])
    assert alive(grandchild)
    supervisor.stop_all()
    assert wait_gone(grandchild)


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the kernel's parent-death signal does it."""
    script = textwrap.dedent(
        f"""
        import io, os, sys, time
        from pathlib import Path
        from compliance.run import Component, Supervisor
        sup = Supervisor(Path({str(tmp_path)!r}), out=io.StringIO())
        child = sup.start(Component('sleeper', {SLEEPER!r}), os.environ)
        print(child.proc.pid, flush=True)
        time.sleep(300)
        """
    )
    parent = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert alive(child_pid)
    parent.kill()
    parent.wait()
    assert wait_gone(child_pid), "the child outlived its supervisor"


def test_a_component_that_dies_while_starting_is_reported(supervisor: Supervisor) -> None:
    component = Component("broken", py("print('bad setting: X', flush=True)\nraise SystemExit(3)"))
    child = supervisor.start(component, os.environ)
    with pytest.raises(UpError, match=r"broken exited with status 3") as caught:
        supervisor.wait_ready(child)
    assert "bad setting: X" in str(caught.value)


def test_readiness_by_http_and_by_port(supervisor: Supervisor) -> None:
    port = free_port()
    server = [PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    by_http = Component("http", server, health_url=f"http://127.0.0.1:{port}/", ready_timeout=20)
    supervisor.wait_ready(supervisor.start(by_http, os.environ))
    other = free_port()
    by_port = Component(
        "tcp", [PY, "-m", "http.server", str(other), "--bind", "127.0.0.1"], port=other
    )
    supervisor.wait_ready(supervisor.start(by_port, os.environ))


def test_unavailable_components_say_why(supervisor: Supervisor) -> None:
    missing_command = Component("web", ["x"], command="web")
    why = supervisor.available(missing_command, {"db", "token"})
    assert why is not None
    assert "`compliance web` is not available" in why
    assert supervisor.available(missing_command, {"web"}) is None
    missing_binary = Component("postgrest", ["x"], binary="no-such-binary-h8", missing="get it")
    assert supervisor.available(missing_binary, set()) == "get it"


def test_the_real_plan_names_every_component(tmp_path: Path) -> None:
    config = UpConfig(data_dir=tmp_path, env={})
    addresses = run.Addresses(
        database_url="postgresql://postgres@127.0.0.1:1/compliance",
        web_url="http://127.0.0.1:2",
        postgrest_url="http://127.0.0.1:3",
        fakes_url="http://127.0.0.1:4",
        ports={"web": 2, "postgrest": 3, "fakes": 4, "classroom": 5},
    )
    plan = run.plan_components(config, addresses, "s" * 40, "postgresql://authenticator@x/y")
    assert [c.name for c in plan] == ["fake-upstreams", "worker", "web", "postgrest"]
    fakes, worker, web = plan[0], plan[1], plan[2]
    assert fakes.ready_file is not None
    assert worker.env_files == [fakes.ready_file]  # the worker reads what the fakes wrote
    assert worker.env["COMPLIANCE_ORG_SLUG"] == "annarbor-medical"
    assert fakes.urls == {
        "fake-zenefits": "http://127.0.0.1:4",
        "fake-classroom": "http://127.0.0.1:5",
    }
    assert web.env["WEB_PORT"] == "2"
    assert "http://127.0.0.1:2" in web.env["WEB_ALLOWED_ORIGINS"].split(",")
    config.demo = False
    assert [c.name for c in run.plan_components(config, addresses, "s" * 40, "x")] == [
        "worker",
        "web",
        "postgrest",
    ]


def test_env_files_feed_later_components(supervisor: Supervisor, tmp_path: Path) -> None:
    ready = tmp_path / "first.env"
    ready.write_text("STALE=1\n")
    first = Component(
        "first",
        py(f"import time\nopen({str(ready)!r}, 'w').write('export FROM_FIRST=yes\\n# note\\n')"
           "\ntime.sleep(300)"),
        ready_file=ready,
    )  # fmt: skip
    supervisor.wait_ready(supervisor.start(first, os.environ))
    assert run.read_env_file(ready) == {"FROM_FIRST": "yes"}
    second = Component(
        "second",
        py("import os\nprint('got', os.environ.get('FROM_FIRST'), flush=True)\n"
           "import time\ntime.sleep(300)"),
        env_files=[ready],
    )  # fmt: skip
    child = supervisor.start(second, os.environ)
    assert wait_for_line(child, "got") == "got yes"


def test_postgrest_logs_in_as_authenticator() -> None:
    dsn = run.postgrest_dsn(
        "postgresql://postgres:owner-secret@db.example:5432/compliance",
        {"AUTHENTICATOR_PASSWORD": "pgrst-pass"},
    )
    assert "owner-secret" not in dsn
    assert "user=authenticator" in dsn
    assert "password=pgrst-pass" in dsn
    assert "dbname=compliance" in dsn


def test_the_jwt_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    config = UpConfig(data_dir=tmp_path, env={})
    first = run.jwt_secret(config)
    assert len(first) >= 32
    assert run.jwt_secret(config) == first
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0
    assert run.jwt_secret(UpConfig(data_dir=tmp_path, env={"JWT_SECRET": "e" * 40})) == "e" * 40


# -- run_up, in this process, against a database of the test cluster --------------------------


@pytest.fixture(scope="module")
def up_database(dsn: str) -> Iterator[str]:
    name = "compliance_up_test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    target = make_conninfo(dsn, dbname=name)
    yield target
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def _demo_user(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        org = conn.execute(
            "insert into app.organizations (name, slug) values ('Up Test', 'up-test')"
            " on conflict (slug) do update set name = excluded.name returning id"
        ).fetchone()
        assert org is not None
        conn.execute(
            "insert into app.app_users (org_id, email, display_name, app_role)"
            " select %s, 'hr@annarbor-medical.test', 'HR', 'hr_admin'"
            " where not exists"
            " (select from app.app_users where email = 'hr@annarbor-medical.test')",
            [org[0]],
        )


def _send_when(path: Path, signum: int, timeout: float = 60.0) -> threading.Thread:
    def wait_then_signal() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not path.exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=wait_then_signal, daemon=True)
    thread.start()
    return thread


def _fake_plan(port: int, pid_file: Path) -> list[Component]:
    return [
        Component(
            "fake-upstreams",
            [PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            command="fake-upstreams",
            port=port,
            url=f"http://127.0.0.1:{port}",
        ),
        Component(
            "worker",
            py(
                f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                "time.sleep(300)"
            ),
            command="worker",
            settle=0.3,
        ),
        Component("web", ["unused"], command="web"),
        Component("postgrest", ["unused"], binary="no-such-binary-h8", missing="no postgrest"),
    ]


def test_up_runs_until_ctrl_c_and_leaves_nothing_behind(
    up_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    pid_file = tmp_path / "worker.pid"
    monkeypatch.setattr(run, "plan_components", lambda *_a: _fake_plan(port, pid_file))
    monkeypatch.setattr(run, "registered_commands", lambda: {"fake-upstreams", "worker"})
    # migrate first, so the demo user can be added before `up` prints the tokens
    run.migrate(up_database, echo=lambda _line: None)
    _demo_user(up_database)
    data = tmp_path / "data"
    config = UpConfig(
        data_dir=data,
        database_url=up_database,
        seed=False,
        stop_timeout=3,
        env={"PATH": "/usr/bin"},
    )
    out = io.StringIO()
    _send_when(data / "env", signal.SIGINT)
    assert run.run_up(config, out=out) == 0
    text = out.getvalue()
    assert "==> web: not started: `compliance web` is not available" in text
    assert "postgrest: not started: no postgrest" in text
    assert f"fake-upstreams  http://127.0.0.1:{port}" in text
    assert "hr_admin" in text
    assert "hr@annarbor-medical.test" in text
    assert "Stop: Ctrl-C" in text
    assert "==> stopping worker" in text
    assert "==> stopping fake-upstreams" in text
    worker_pid = int(pid_file.read_text())
    assert wait_gone(worker_pid, 2)
    assert not (data / "run" / "up.json").exists()
    env_file = (data / "env").read_text()
    assert "export DATABASE_URL=" in env_file
    assert "export TOKEN_HR_ADMIN=" in env_file
    assert (data / "env").stat().st_mode & 0o077 == 0


def test_up_stops_everything_when_a_component_dies(
    up_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    survivor_pid = tmp_path / "survivor.pid"
    plan = [
        Component(
            "survivor",
            py(
                f"import os, time\nopen({str(survivor_pid)!r}, 'w').write(str(os.getpid()))\n"
                "time.sleep(300)"
            ),
            settle=0.2,
        ),
        Component(
            "crasher",
            py("import time\ntime.sleep(1.5)\nprint('boom', flush=True)\nraise SystemExit(7)"),
            settle=0.2,
        ),
    ]
    monkeypatch.setattr(run, "plan_components", lambda *_a: plan)
    config = UpConfig(
        data_dir=tmp_path / "data", database_url=up_database, seed=False, stop_timeout=3, env={}
    )
    out = io.StringIO()
    assert run.run_up(config, out=out) == 1
    text = out.getvalue()
    assert "crasher exited with status 7" in text
    assert "boom" in text
    assert wait_gone(int(survivor_pid.read_text()), 2)


def test_up_state_file_names_the_children(
    up_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "worker.pid"
    port = free_port()
    monkeypatch.setattr(run, "plan_components", lambda *_a: _fake_plan(port, pid_file))
    monkeypatch.setattr(run, "registered_commands", lambda: {"fake-upstreams", "worker"})
    data = tmp_path / "data"
    seen: dict[str, Any] = {}

    def grab_then_stop() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (data / "env").exists():
            time.sleep(0.05)
        seen.update(json.loads((data / "run" / "up.json").read_text()))
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=grab_then_stop, daemon=True)
    thread.start()
    config = UpConfig(data_dir=data, database_url=up_database, seed=False, env={})
    assert run.run_up(config, out=io.StringIO()) == 0
    thread.join(5)
    assert seen["pid"] == os.getpid()
    assert set(seen["children"]) == {"fake-upstreams", "worker"}
    assert set(seen["skipped"]) == {"web", "postgrest"}
    for child in seen["children"].values():
        assert wait_gone(child["pid"], 2)
