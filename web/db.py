"""The web app's database access: an async twin of :func:`compliance.db.acting_as`.

It runs the very same PostgREST steps, with the very same SQL text (``compliance.db._PREPARE``,
``READ_ONLY_METHODS``, ``api_error_from``): one transaction, ``role`` = the token's role,
``request.jwt.claims``, method, path, headers, then ``app.pre_request()``, then the caller's
queries. Row-level security therefore decides what the web app may read for a user exactly as
it decides for PostgREST.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from compliance.db import _PREPARE, READ_ONLY_METHODS, ApiError, api_error_from

__all__ = ["ApiError", "acting_as", "make_async_pool"]

AsyncConn = AsyncConnection[DictRow]
AsyncPool = AsyncConnectionPool[AsyncConn]


async def make_async_pool(
    dsn: str, *, min_size: int, max_size: int, timeout: float, name: str = "web"
) -> AsyncPool:
    """An opened pool of dict-row connections (not autocommit: acting_as opens transactions)."""
    pool: AsyncPool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        name=name,
        kwargs={"row_factory": dict_row},
        connection_class=AsyncConnection[DictRow],
        open=False,
    )
    await pool.open(wait=min_size > 0, timeout=timeout)
    return pool


@asynccontextmanager
async def acting_as(
    conn: AsyncConnection[Any],
    claims: Mapping[str, Any] | None,
    method: str = "GET",
    path: str = "/",
    *,
    headers: Mapping[str, str] | None = None,
    role: str | None = None,
    read_only: bool | None = None,
    pre_request: str | None = "app.pre_request",
) -> AsyncIterator[AsyncCursor[Any]]:
    """Run the body as PostgREST runs a request: one transaction, acting as the caller.

    Same contract as :func:`compliance.db.acting_as` (GET and HEAD run READ ONLY unless
    ``read_only`` says otherwise; commit on success, rollback on error; a database error comes
    out as :class:`ApiError` with PostgREST's HTTP status).
    """
    if conn.autocommit:
        raise ValueError("acting_as needs a connection that is not in autocommit mode")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("acting_as needs an idle connection (a transaction is already open)")
    method = method.upper()
    authenticated = claims is not None
    if role is None:
        role = str(claims.get("role") or "authenticated") if claims is not None else "anon"
    if read_only is None:
        read_only = method in READ_ONLY_METHODS
    params = {
        "role": sql.Literal(role),
        "claims": sql.Literal(json.dumps(dict(claims or {}), default=str)),
        "method": sql.Literal(method),
        "path": sql.Literal(path),
        "headers": sql.Literal(json.dumps(dict(headers or {}))),
    }
    try:
        async with conn.cursor() as cur:
            try:
                if read_only:
                    await cur.execute("set transaction isolation level read committed, read only")
                await cur.execute(_PREPARE.format(**params))
                if pre_request:
                    function = sql.Identifier(*pre_request.split("."))
                    await cur.execute(sql.SQL("select {}()").format(function))
                yield cur
            except BaseException:
                if not conn.closed:
                    await conn.rollback()
                raise
            await conn.commit()
    except psycopg.Error as error:
        if not error.sqlstate:
            raise
        raise api_error_from(error, authenticated=authenticated) from error
