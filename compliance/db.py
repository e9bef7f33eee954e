"""Connections, and THE one place that runs SQL the way PostgREST runs a request.

PostgREST runs every request as one transaction:

    begin [read only];
    select set_config('role', 'authenticated', true),
           set_config('request.jwt.claims', '{...}', true),
           set_config('request.method', 'POST', true),
           set_config('request.path', '/rpc/x', true),
           set_config('request.headers', '{}', true);
    select app.pre_request();
    <the query>;
    commit;

:func:`acting_as` does exactly that, so the web app, the tests and PostgREST share one path
through RLS. :func:`http_status_for` answers the HTTP status PostgREST would give an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

__all__ = [
    "ApiError",
    "acting_as",
    "api_error_from",
    "claims_for",
    "connect",
    "http_status_for",
    "make_pool",
    "redact_dsn",
]

#: Methods PostgREST runs in a read-only transaction.
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


def connect(dsn: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection[DictRow]:
    """Open a connection whose rows come back as dicts."""
    return psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row, **kwargs)


def make_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, name: str = "compliance", **kwargs: Any
) -> ConnectionPool[psycopg.Connection[DictRow]]:
    """A connection pool (opened) whose connections return dict rows."""
    return ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        kwargs={"row_factory": dict_row},
        connection_class=psycopg.Connection[DictRow],
        open=True,
        **kwargs,
    )


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***``, fit for a log line."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    if "password" in params:
        params["password"] = "***"  # noqa: S105 - a mask, not a password
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def claims_for(user_id: str | int, **extra: Any) -> dict[str, Any]:
    """The JWT claims PostgREST would hand the database for this app_users id."""
    return {"sub": str(user_id), "role": "authenticated", **extra}


# --------------------------------------------------------------------------------------------
# Errors as PostgREST reports them


def http_status_for(sqlstate: str | None, authenticated: bool = True, message: str = "") -> int:
    """The HTTP status PostgREST (v12) answers for a PostgreSQL error.

    Follows ``mapSQLtoHTTP`` in PostgREST's ``src/PostgREST/Error.hs``; ``message`` matters only
    for the two codes PostgREST special-cases by message text (21000, 22023, 42883).
    """
    code = (sqlstate or "").upper()
    if not code:
        return 500
    exact: dict[str, int] = {
        "23503": 409,  # foreign_key_violation
        "23505": 409,  # unique_violation
        "25006": 405,  # read_only_sql_transaction
        "53400": 500,  # configuration_limit_exceeded
        "57P01": 503,  # admin_shutdown
        "P0001": 400,  # default code of RAISE
        "42P01": 404,  # undefined_table
        "42P17": 500,  # invalid_object_definition (infinite recursion in a policy)
    }
    if code in exact:
        return exact[code]
    if code == "21000":  # cardinality_violation; pg-safeupdate's refusal is a client error
        return 400 if message.endswith("requires a WHERE clause") else 500
    if code == "22023":  # invalid_parameter_value; a JWT role that does not exist is a 401
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if code == "42883":  # undefined_function
        return 406 if message.startswith("function xmlagg(") else 404
    if code == "42501":  # insufficient_privilege
        return 403 if authenticated else 401
    if code.startswith("PT"):
        try:
            status = int(code[2:])
        except ValueError:
            return 500
        return status if 100 <= status <= 599 else 500
    by_class: dict[str, int] = {
        "08": 503,  # connection exception
        "09": 500,  # triggered action exception
        "0L": 403,  # invalid grantor
        "0P": 403,  # invalid role specification
        "25": 500,  # invalid transaction state
        "28": 403,  # invalid authorization specification
        "2D": 500,  # invalid transaction termination
        "38": 500,  # external routine exception
        "39": 500,  # external routine invocation exception
        "3B": 500,  # savepoint exception
        "40": 500,  # transaction rollback (serialization failure, deadlock)
        "53": 503,  # insufficient resources
        "54": 500,  # program limit exceeded
        "55": 500,  # object not in prerequisite state
        "57": 500,  # operator intervention
        "58": 500,  # system error
        "F0": 500,  # configuration file error
        "HV": 500,  # foreign data wrapper error
        "P0": 500,  # other PL/pgSQL errors
        "XX": 500,  # internal error
    }
    return by_class.get(code[:2], 400)


@dataclass(eq=False)
class ApiError(Exception):
    """A refused request, as PostgREST would report it (``code`` is the SQLSTATE)."""

    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None
    http_status: int = 500

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [f"{self.http_status} {self.sqlstate}: {self.message}"]
        if self.detail:
            parts.append(f"detail: {self.detail}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "; ".join(parts)

    def as_json(self) -> dict[str, str | None]:
        """The body PostgREST sends: code, message, details, hint."""
        return {
            "code": self.sqlstate,
            "message": self.message,
            "details": self.detail,
            "hint": self.hint,
        }


def api_error_from(error: psycopg.Error, *, authenticated: bool = True) -> ApiError:
    """Turn a psycopg error into an :class:`ApiError` with PostgREST's status."""
    diag = error.diag
    sqlstate = error.sqlstate or diag.sqlstate or ""
    message = diag.message_primary or str(error).strip()
    return ApiError(
        sqlstate=sqlstate,
        message=message,
        detail=diag.message_detail,
        hint=diag.message_hint,
        http_status=http_status_for(sqlstate, authenticated=authenticated, message=message),
    )


# --------------------------------------------------------------------------------------------
# Acting as a user


_PREPARE = sql.SQL(
    "select set_config('role', {role}, true), "
    "set_config('request.jwt.claims', {claims}, true), "
    "set_config('request.method', {method}, true), "
    "set_config('request.path', {path}, true), "
    "set_config('request.headers', {headers}, true)"
)


@contextmanager
def acting_as(
    conn: psycopg.Connection[Any],
    claims: Mapping[str, Any] | None,
    method: str = "POST",
    path: str = "/",
    *,
    headers: Mapping[str, str] | None = None,
    role: str | None = None,
    pre_request: str | None = "app.pre_request",
    search_path: str | None = None,
) -> Iterator[psycopg.Cursor[Any]]:
    """Run the body as PostgREST runs a request: one transaction, acting as the caller.

    ``claims`` are the JWT claims (``None`` acts as ``anon``, like a request without a token).
    The role is ``claims["role"]`` (PostgREST's default role claim), else ``authenticated``,
    unless ``role`` is given. GET and HEAD run READ ONLY. Yields a cursor; commits when the
    body finishes, rolls back if it raises. A database error comes out as :class:`ApiError`
    carrying the SQLSTATE and the HTTP status PostgREST would answer.

    ``search_path``, when given, is set for the transaction as PostgREST does (its
    ``db-schemas`` then ``db-extra-search-path``, e.g. ``"api", "public"``).
    The connection must be idle (not inside a transaction) and not in autocommit mode.
    """
    if conn.autocommit:
        raise ValueError("acting_as needs a connection that is not in autocommit mode")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("acting_as needs an idle connection (a transaction is already open)")
    method = method.upper()
    authenticated = claims is not None
    if role is None:
        role = str(claims.get("role") or "authenticated") if claims is not None else "anon"
    params = {
        "role": sql.Literal(role),
        "claims": sql.Literal(json.dumps(dict(claims or {}), default=str)),
        "method": sql.Literal(method),
        "path": sql.Literal(path),
        "headers": sql.Literal(json.dumps(dict(headers or {}))),
    }
    try:
        with conn.cursor() as cur:
            # psycopg opens the transaction itself (BEGIN) before the first statement.
            try:
                if method in READ_ONLY_METHODS:
                    cur.execute("set transaction isolation level read committed, read only")
                cur.execute(_PREPARE.format(**params))
                if search_path is not None:
                    cur.execute("select set_config('search_path', %s, true)", [search_path])
                if pre_request:
                    function = sql.Identifier(*pre_request.split("."))
                    cur.execute(sql.SQL("select {}()").format(function))
                yield cur
            except BaseException:
                if not conn.closed:
                    conn.rollback()
                raise
            conn.commit()
    except psycopg.Error as error:
        if not error.sqlstate:
            raise  # a client-side error (closed connection, misuse): not an API answer
        raise api_error_from(error, authenticated=authenticated) from error
