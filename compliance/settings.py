"""Settings, read from the environment once, in one pydantic-settings class.

``load_settings()`` is the only way the rest of the code should get them: a missing or
malformed variable becomes a :class:`SettingsError` whose message has one line per bad
variable, naming it and saying what is wrong, never echoing its value.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """One or more environment variables are missing or malformed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def libpq_dsn(value: str | None) -> str | None:
    """A settings validator: the value is a PostgreSQL connection string (URI or key=value)."""
    # libpq parses it; its message may quote the value (a password), so it is not passed on.
    if value is None:
        return None
    if "://" in value and not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("must be a postgresql:// URI (libpq connection string)")
    try:
        conninfo_to_dict(value)
    except psycopg.ProgrammingError:
        raise ValueError("is not a valid libpq connection string") from None
    return value


class Settings(BaseSettings):
    """Every setting the Python side reads. Environment variable = field name, upper case."""

    model_config = SettingsConfigDict(
        env_file=None,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
    )

    database_url: str | None = Field(
        default=None,
        repr=False,
        description="postgresql://user:password@host:port/dbname of the application database",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 secret shared with PostgREST (at least 32 characters)",
    )
    jwt_audience: str | None = Field(
        default=None,
        description="'aud' claim put into tokens and required by PostgREST when set",
    )
    jwt_lifetime_seconds: int = Field(
        default=3600,
        gt=0,
        le=60 * 60 * 24 * 30,
        description="lifetime of tokens made by `compliance token`",
    )
    authenticator_password: SecretStr | None = Field(
        default=None,
        description="password given to the `authenticator` role on every migrate",
    )
    web_app_password: SecretStr | None = Field(
        default=None,
        description="password given to the `web_app` role on every migrate (the web app's login)",
    )
    sync_worker_password: SecretStr | None = Field(
        default=None,
        description="password given to the `sync_worker` role on every migrate (the worker's)",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: str | None) -> str | None:
        return libpq_dsn(value)

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters long (PostgREST refuses shorter)")
        return value

    @field_validator(
        "database_url",
        "jwt_secret",
        "jwt_audience",
        "authenticator_password",
        "web_app_password",
        "sync_worker_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


def _describe(error: Any) -> str:
    """One line for one pydantic error, without the offending value."""
    loc = error.get("loc") or ()
    name = str(loc[0]).upper() if loc else "SETTINGS"
    field = Settings.model_fields.get(str(loc[0]).lower()) if loc else None
    meaning = field.description if field is not None and field.description else ""
    if error.get("type") == "missing":
        return f"{name} is not set: {meaning}" if meaning else f"{name} is not set"
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    return f"{name} is malformed: {message}" + (f" (expected: {meaning})" if meaning else "")


def load_settings(*required: str, **overrides: Any) -> Settings:
    """Read the settings from the environment (keyword arguments win).

    ``required`` names the fields the caller cannot do without (``"database_url"``,
    ``"jwt_secret"``): each one left unset is reported like any other problem.
    Raises :class:`SettingsError` with one line per missing or malformed variable.
    """
    unknown = [name for name in required if name not in Settings.model_fields]
    if unknown:
        raise ValueError(f"unknown settings required: {', '.join(unknown)}")
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors(include_input=False)]
    bad = {line.split(" ", 1)[0] for line in problems}
    for name in required:
        if name.upper() in bad:
            continue
        if settings is None:
            given = name in overrides or any(k.upper() == name.upper() for k in os.environ)
            if given and os.environ.get(name.upper(), "x") != "":
                continue
        elif getattr(settings, name) is not None:
            continue
        problems.append(_describe({"type": "missing", "loc": (name,)}))
    if problems or settings is None:
        raise SettingsError(problems)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (nothing required: check what you use)."""
    return load_settings()
