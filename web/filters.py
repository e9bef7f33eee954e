"""Export filters: parsed and checked with pydantic, then resolved in the database as the caller.

A bad filter is a 400 VALIDATION_ERROR whose message names the field; unknown parameters and
repeated ones are refused the same way, so a typo never silently widens an export.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any, Literal, TypeVar

from psycopg import AsyncCursor
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from web.errors import WebError

__all__ = [
    "ASSIGNMENT_STATUSES",
    "AuditFilters",
    "ComplianceFilters",
    "Resolved",
    "parse_filters",
    "resolve",
]

AssignmentStatus = Literal["not_started", "in_progress", "completed", "overdue", "exempted"]
ASSIGNMENT_STATUSES: tuple[str, ...] = (
    "not_started",
    "in_progress",
    "completed",
    "overdue",
    "exempted",
)


#: Control characters (NUL included): no filter value holds one, and PostgreSQL text cannot
#: hold NUL at all, so they are refused before anything reaches the database.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if isinstance(value, str) and (found := _CONTROL.search(value)):
            raise ValueError(
                f"must not contain control characters (U+{ord(found.group()):04X} at position"
                f" {found.start() + 1})"
            )
        return value

    department: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="department id or name (case-insensitive)",
    )
    location: str | None = Field(
        default=None, min_length=1, max_length=200, description="location id or name"
    )
    from_: date | None = Field(default=None, alias="from", description="first day (YYYY-MM-DD)")
    to: date | None = Field(default=None, description="last day, inclusive (YYYY-MM-DD)")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> _Filters:
        if self.from_ is not None and self.to is not None and self.from_ > self.to:
            raise ValueError(f"from ({self.from_}) is after to ({self.to})")
        return self

    def given(self) -> dict[str, str]:
        """The filters that were given, as the caller wrote them (for the audit entry)."""
        out = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return {k: str(v) for k, v in out.items()}


class ComplianceFilters(_Filters):
    """Filters of the compliance exports: department, location, status, due-date range."""

    status: AssignmentStatus | None = Field(default=None, description="assignment status")


class AuditFilters(_Filters):
    """Filters of the audit export: department and location (of the employee concerned), event
    type, employee, and the range of days the entries occurred (organisation's time zone)."""

    event_type: str | None = Field(default=None, max_length=100, description="e.g. tier_change")
    employee: uuid.UUID | None = Field(default=None, description="employee id")

    @field_validator("event_type")
    @classmethod
    def _snake_case(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z_]+", value):
            raise ValueError("must be lower-case words joined by _ (e.g. tier_change)")
        return value


F = TypeVar("F", bound=BaseModel)


def _field_of(error: Any) -> str:
    loc = [str(part) for part in error.get("loc") or () if part != "__root__"]
    if not loc:
        message = str(error.get("msg", ""))
        return "from" if "from (" in message else "filters"
    return "from" if loc[0] == "from_" else loc[0]


def parse_filters(model: type[F], query: list[tuple[str, str]]) -> F:
    """Build the filters from the query string's (key, value) pairs; 400 naming the field."""
    seen: dict[str, str] = {}
    for key, value in query:
        if key in seen:
            raise WebError(
                400,
                f"invalid filter {key!r}: given more than once",
                {"field": key, "errors": [{"field": key, "message": "given more than once"}]},
            )
        seen[key] = value
    try:
        return model.model_validate(seen)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_input=False, include_url=False):
            field = _field_of(err)
            kind = err.get("type")
            if kind == "extra_forbidden":
                allowed = (
                    ", ".join((f.alias or name) for name, f in model.model_fields.items()) or "none"
                )
                message = f"is not a filter of this export (filters: {allowed})"
            elif kind == "literal_error" and field == "status":
                message = "must be one of " + ", ".join(ASSIGNMENT_STATUSES)
            elif kind in ("date_from_datetime_parsing", "date_parsing", "date_type"):
                message = "must be a date like 2025-01-31"
            elif kind == "uuid_parsing":
                message = "must be an id like 8a6e0804-2bd0-4672-b79d-d97027f9071a"
            else:
                message = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
            errors.append({"field": field, "message": message})
        first = errors[0]
        raise WebError(
            400,
            f"invalid filter {first['field']!r}: {first['message']}",
            {"field": first["field"], "errors": errors},
        ) from None


class Resolved(BaseModel):
    """Filters after the database resolved names to ids (as the caller: RLS applies)."""

    department_id: uuid.UUID | None = None
    department_name: str | None = None
    location_id: uuid.UUID | None = None
    location_name: str | None = None
    organization_id: uuid.UUID
    organization_name: str
    timezone: str
    #: the organisation's today (its local date, as the database answers it: app.org_today)
    today: date


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def _lookup(cur: AsyncCursor[Any], view: str, field: str, value: str) -> tuple[Any, str]:
    as_id = _as_uuid(value)
    if as_id is not None:
        await cur.execute(f"select id, name from api.{view} where id = %s", [as_id])  # noqa: S608
    else:
        await cur.execute(
            f"select id, name from api.{view} where lower(name) = lower(%s)",  # noqa: S608
            [value],
        )
    row = await cur.fetchone()
    if row is None:
        what = "id" if as_id is not None else "name"
        raise WebError(
            400,
            f"invalid filter {field!r}: no {field} with {what} {value!r} in your organisation",
            {"field": field, "errors": [{"field": field, "message": f"unknown {field}"}]},
        )
    return row["id"], row["name"]


async def resolve(cur: AsyncCursor[Any], filters: _Filters) -> Resolved:
    """Resolve department and location (id or name) and read the caller's organisation."""
    await cur.execute(
        "select id, name, timezone, app.org_today(id) as today from api.organizations"
    )
    org = await cur.fetchone()
    if org is None:
        raise WebError(401, "the signed-in user has no organisation")
    out: dict[str, Any] = {
        "organization_id": org["id"],
        "organization_name": org["name"],
        "timezone": org["timezone"],
        "today": org["today"],
    }
    if filters.department is not None:
        out["department_id"], out["department_name"] = await _lookup(
            cur, "departments", "department", filters.department
        )
    if filters.location is not None:
        out["location_id"], out["location_name"] = await _lookup(
            cur, "locations", "location", filters.location
        )
    return Resolved(**out)
