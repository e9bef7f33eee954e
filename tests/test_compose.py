"""docker-compose.yml against the Compose specification's JSON schema, and its promises.

The schema is tests/data/compose-spec.json, the ``compose/config/compose_spec.json`` shipped in
the ``docker-compose`` 1.29.2 package on PyPI (Apache-2.0; see tests/data/README.md). It is
validated twice: as written (with ``${...}`` left in) and after interpolation with the values of
.env.example, the way ``docker compose`` reads it.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from compliance.cli import cli

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"

#: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
APP_SERVICES = ("migrate", "web", "worker")


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of ``${...}`` in every string (``$$`` is a literal ``$``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise KeyError(f"{name}: {arg}")
        if op == ":-" and not current:
            return arg or ""
        if op == "-" and current is None:
            return arg or ""
        return current or ""

    return _VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    # Its "$schema" (http://json-schema.org/draft/2019-09/schema#) is not the draft's canonical
    # URI, so name the draft rather than let jsonschema guess.
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def errors_of(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator().iter_errors(document)
    ]


# -- the schema ------------------------------------------------------------------------------


def test_the_file_is_valid_as_written() -> None:
    assert errors_of(load_compose()) == []


def test_the_file_is_valid_once_interpolated_with_the_example_env() -> None:
    assert errors_of(interpolate(load_compose(), env_example())) == []


def test_the_schema_catches_mistakes() -> None:
    broken = copy.deepcopy(load_compose())
    broken["services"]["web"]["depends_on"]["db"]["condition"] = "service_ready"
    broken["services"]["db"]["healthcheck"]["retry"] = 3
    errors = errors_of(broken)
    assert any(e.startswith("services/web/depends_on") for e in errors), errors
    assert any(e.startswith("services/db/healthcheck") for e in errors), errors


# -- what the stack promises -------------------------------------------------------------------


def test_every_service_is_there() -> None:
    services = load_compose()["services"]
    assert set(services) == {"db", "migrate", "postgrest", "web", "worker"}


def test_long_running_services_have_health_checks() -> None:
    services = load_compose()["services"]
    for name in ("db", "postgrest", "web"):
        assert services[name]["healthcheck"]["test"], name


def test_the_start_order_waits_for_health_and_for_migrate() -> None:
    services = load_compose()["services"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("postgrest", "web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name


def test_postgres_is_15() -> None:
    assert load_compose()["services"]["db"]["image"].startswith("postgres:15")


def test_secrets_come_from_the_environment() -> None:
    compose = load_compose()
    secretive = re.compile(r"PASSWORD|SECRET|_KEY$")
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secretive.search(key) and key != "GOOGLE_SERVICE_ACCOUNT_KEY":
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), (name, key)
            if key.endswith(("_URI", "_URL")) and "@" in str(value):
                assert "${" in str(value).split("@")[0], (name, key, "password in a URI")
    with pytest.raises(KeyError, match="JWT_SECRET"):
        interpolate(compose, {k: v for k, v in env_example().items() if k != "JWT_SECRET"})


def test_every_variable_is_documented_in_env_example() -> None:
    used = {m.group("name") for m in _VARIABLE.finditer(COMPOSE.read_text())}
    documented = set(env_example())
    assert used - documented == set()


def test_published_ports_stay_on_loopback() -> None:
    for name, service in load_compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_app_services_run_compliance_commands_that_exist() -> None:
    """Each app service runs a `compliance` command with options that command has (a command
    still being built by its own issue is reported as skipped, not failed)."""
    services = load_compose()["services"]
    missing: list[str] = []
    for name in APP_SERVICES:
        argv = services[name]["command"]
        assert argv[0] == "compliance", name
        group: click.Command = cli
        words = list(argv[1:])
        while words and isinstance(group, click.Group) and not words[0].startswith("-"):
            sub = group.commands.get(words[0])
            if sub is None:
                missing.append(f"compliance {words[0]} ({name})")
                break
            group, words = sub, words[1:]
        else:
            known = {opt for param in group.params for opt in param.opts}
            options = {w for w in words if w.startswith("--")}
            assert options <= known, (name, options - known)
    if missing:
        pytest.skip("not registered yet: " + ", ".join(missing))


def test_the_image_carries_the_schema_files() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY db ./db" in dockerfile
    # the image installs exactly the runtime lock (tests/test_lock.py checks it against the lock)
    assert "--require-hashes --no-deps -r requirements-runtime.lock" in dockerfile
    assert "COMPLIANCE_DB_DIR=/app/db" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.M)
