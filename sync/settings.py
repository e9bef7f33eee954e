"""Settings of the sync workers: the shared :class:`compliance.settings.Settings` plus the
upstreams, the schedule, retries and timeouts.

:func:`load_sync_settings` reads them from the environment and reports every missing or
malformed variable on its own line, naming it and saying what is wrong, never echoing a value
(keys, tokens and service-account JSON stay out of every message and log line).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator

from compliance.settings import Settings, SettingsError, libpq_dsn

__all__ = [
    "REQUIRED_FOR",
    "SettingsError",
    "SyncSettings",
    "load_service_account_info",
    "load_sync_settings",
]

_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SA_KEYS = ("client_email", "private_key", "token_uri")


def load_service_account_info(value: str) -> dict[str, Any]:
    """The service-account key as a dict, from inline JSON or from a file path.

    Raises ValueError with a message that never contains the key itself.
    """
    text = value.strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ValueError(
                f"is neither service-account JSON nor a readable file ({path} not found)"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"names a file that cannot be read ({path}: {exc.strerror})") from None
    try:
        info = json.loads(text)
    except ValueError:
        raise ValueError("is not valid JSON (expected a Google service-account key)") from None
    if not isinstance(info, dict):
        raise ValueError("is not a JSON object (expected a Google service-account key)")
    missing = [key for key in _SA_KEYS if not isinstance(info.get(key), str) or not info.get(key)]
    if missing:
        raise ValueError(f"is not a service-account key: {', '.join(missing)} missing")
    if info.get("type", "service_account") != "service_account":
        raise ValueError("is not a service-account key (its type is not service_account)")
    return info


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


class SyncSettings(Settings):
    """Every setting of the sync workers. Environment variable = field name, upper case."""

    sync_database_url: str | None = Field(
        default=None,
        repr=False,
        description="database URL of the sync worker (role sync_worker); default DATABASE_URL",
    )
    compliance_org_slug: str | None = Field(
        default=None, description="slug of the organisation the worker syncs"
    )
    zenefits_api_url: str = Field(
        default="https://api.zenefits.com", description="base URL of the Zenefits API"
    )
    zenefits_api_key: SecretStr | None = Field(
        default=None, description="Zenefits REST API token (Bearer)"
    )
    zenefits_company_id: str | None = Field(
        default=None, description="Zenefits company id (digits)"
    )
    google_service_account_key: SecretStr | None = Field(
        default=None,
        description="Google service-account key: a path to the JSON file, or the JSON itself",
    )
    google_classroom_course_id: str | None = Field(
        default=None,
        description="Classroom course id(s), comma-separated; unset = every ACTIVE course",
    )
    google_classroom_api_url: str | None = Field(
        default=None,
        description="Classroom API base URL (only for a fake; default Google's)",
    )
    google_classroom_subject: str | None = Field(
        default=None,
        description="Workspace user the service account acts as (domain-wide delegation)",
    )
    google_classroom_page_size: int = Field(
        default=1000, ge=1, le=10000, description="pageSize asked of Classroom list calls"
    )
    compliance_sync_interval_hours: float = Field(
        default=24.0, gt=0, le=24 * 31, description="hours between scheduled full syncs"
    )
    compliance_sync_retry_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="attempts per upstream call, and per failed run in the worker",
    )
    compliance_sync_retry_base_seconds: float = Field(
        default=1.0, ge=0, le=60, description="first backoff delay (doubles per attempt, jittered)"
    )
    compliance_sync_max_retry_after_seconds: float = Field(
        default=120.0, ge=0, le=3600, description="longest Retry-After the worker waits"
    )
    compliance_sync_run_retry_seconds: float = Field(
        default=60.0, ge=0, le=86400, description="delay before the worker retries a failed run"
    )
    compliance_sync_merge_parts: int = Field(
        default=2,
        ge=1,
        le=16,
        description="parts of a large Classroom submissions merge run at once, a database "
        "connection each (about the database server's free cores)",
    )
    compliance_sync_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="read timeout of one upstream call, in seconds"
    )
    compliance_sync_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="connect timeout of one upstream call, in seconds"
    )

    @field_validator(
        "sync_database_url",
        "compliance_org_slug",
        "zenefits_api_key",
        "zenefits_company_id",
        "google_service_account_key",
        "google_classroom_course_id",
        "google_classroom_api_url",
        "google_classroom_subject",
        mode="before",
    )
    @classmethod
    def _empty_is_unset_too(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip() == "" else value

    @field_validator("sync_database_url")
    @classmethod
    def _sync_database_url_is_postgres(cls, value: str | None) -> str | None:
        return libpq_dsn(value)

    @field_validator("compliance_org_slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not _SLUG.match(value):
            raise ValueError("must be an organisation slug: lower-case words joined by '-'")
        return value

    @field_validator("zenefits_api_url")
    @classmethod
    def _zenefits_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("google_classroom_api_url")
    @classmethod
    def _classroom_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("zenefits_company_id")
    @classmethod
    def _company_id(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().isdigit():
            raise ValueError("must be the company's numeric id (digits only)")
        return None if value is None else value.strip()

    @field_validator("google_classroom_course_id")
    @classmethod
    def _course_ids(cls, value: str | None) -> str | None:
        if value is None:
            return None
        ids = [part.strip() for part in value.split(",")]
        if not all(ids) or not all(re.match(r"^[A-Za-z0-9_:.\-]+$", part) for part in ids):
            raise ValueError("must be course ids (or aliases such as d:name) separated by commas")
        return ",".join(ids)

    @field_validator("google_service_account_key")
    @classmethod
    def _service_account(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            load_service_account_info(value.get_secret_value())
        return value

    @field_validator("google_classroom_subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("must be the e-mail address of a Workspace user")
        return value

    # -- derived -------------------------------------------------------------------------

    @property
    def worker_dsn(self) -> str | None:
        """The DSN the worker connects with: SYNC_DATABASE_URL, else DATABASE_URL."""
        return self.sync_database_url or self.database_url

    @property
    def course_ids(self) -> list[str]:
        """The configured Classroom course ids ([] = every ACTIVE course)."""
        raw = self.google_classroom_course_id
        return [part for part in raw.split(",") if part] if raw else []

    def service_account_info(self) -> dict[str, Any]:
        """The parsed service-account key (validated at load time)."""
        if self.google_service_account_key is None:
            raise SettingsError(["GOOGLE_SERVICE_ACCOUNT_KEY is not set"])
        return load_service_account_info(self.google_service_account_key.get_secret_value())


#: What each command cannot do without.
REQUIRED_FOR: dict[str, tuple[str, ...]] = {
    "zenefits": ("worker_dsn", "compliance_org_slug", "zenefits_api_key", "zenefits_company_id"),
    "classroom": ("worker_dsn", "compliance_org_slug", "google_service_account_key"),
    "all": (
        "worker_dsn",
        "compliance_org_slug",
        "zenefits_api_key",
        "zenefits_company_id",
        "google_service_account_key",
    ),
    "worker": (
        "worker_dsn",
        "compliance_org_slug",
        "zenefits_api_key",
        "zenefits_company_id",
        "google_service_account_key",
    ),
}


def _describe(error: Any) -> str:
    """One line for one pydantic error, without the offending value."""
    loc = error.get("loc") or ()
    name = str(loc[0]).upper() if loc else "SETTINGS"
    field = SyncSettings.model_fields.get(str(loc[0]).lower()) if loc else None
    meaning = field.description if field is not None and field.description else ""
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    if not message.startswith(("is ", "must ", "names ")):
        message = f"is invalid: {message}"
    return f"{name} {message}" + (f" (expected: {meaning})" if meaning else "")


def _missing(name: str) -> str:
    if name == "worker_dsn":
        return "DATABASE_URL is not set: the database the worker loads into (or SYNC_DATABASE_URL)"
    field = SyncSettings.model_fields[name]
    return f"{name.upper()} is not set: {field.description}"


def load_sync_settings(*required: str, **overrides: Any) -> SyncSettings:
    """Read the sync settings from the environment (keyword arguments win).

    ``required`` names what the caller cannot do without (field names, or ``worker_dsn`` for
    SYNC_DATABASE_URL-or-DATABASE_URL). Raises :class:`SettingsError` with one line per missing
    or malformed variable.
    """
    problems: list[str] = []
    settings: SyncSettings | None = None
    try:
        settings = SyncSettings(**overrides)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors(include_input=False)]
    bad = {line.split(" ", 1)[0] for line in problems}
    for name in required:
        env_names = (
            ("SYNC_DATABASE_URL", "DATABASE_URL") if name == "worker_dsn" else (name.upper(),)
        )
        if any(env in bad for env in env_names):
            continue
        if settings is None:
            given = any(
                os.environ.get(env, "").strip() or overrides.get(env.lower()) for env in env_names
            )
            if given:
                continue
        elif getattr(settings, name) is not None:
            continue
        problems.append(_missing(name))
    if problems or settings is None:
        raise SettingsError(problems)
    return settings
