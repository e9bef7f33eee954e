"""requirements.lock is what a checkout runs with: it covers pyproject.toml, and .venv is it.

bin/lib.sh's ensure_venv installs the lock (``pip install --require-hashes --no-deps``), then
the project editable without dependencies. docs/operations.md says how to upgrade the lock.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def locked(lock: Path = LOCK) -> dict[str, str]:
    """name -> version of every ``name==version`` line of a lock."""
    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line[:1].isalnum() and "==" in line:
            name, version = line.split(" ", 1)[0].split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_every_requirement_of_pyproject_is_locked_at_a_version_it_allows() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["test"],
    ]
    pins = locked()
    problems = []
    for text in wanted:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{text}: not in requirements.lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{text}: requirements.lock pins {version}")
    assert problems == [], "re-lock (docs/operations.md, 'Dependencies'): " + "; ".join(problems)


def test_the_environment_is_exactly_the_lock() -> None:
    """What `pip freeze` shows is the lock: nothing more, nothing less, no other version."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {}
    for line in done.stdout.splitlines():
        if "==" in line:
            name, version = line.split("==")
            installed[canonicalize_name(name)] = version
    installed.pop("pip", None)  # the venv's own, from the Python that made it
    assert installed == locked()


def test_the_image_lock_is_the_runtime_part_of_the_lock() -> None:
    """The Dockerfile installs requirements-runtime.lock: every runtime requirement, at the
    versions requirements.lock pins (the image runs what the tests ran), without the test tools."""
    runtime = locked(ROOT / "requirements-runtime.lock")
    pins = locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    missing = [
        text
        for text in project["project"]["dependencies"]
        if canonicalize_name(Requirement(text).name) not in runtime
    ]
    assert missing == [], "re-lock the image (docs/operations.md, 'Dependencies')"
    differ = {name: (v, pins.get(name)) for name, v in runtime.items() if pins.get(name) != v}
    assert differ == {}, "requirements-runtime.lock and requirements.lock disagree"
    test_tools = {"pytest", "hypothesis", "ruff", "mypy", "pypdf", "openpyxl"}
    assert sorted(test_tools & set(runtime)) == []
