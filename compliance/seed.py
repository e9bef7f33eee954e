"""Demo data for `compliance db seed-demo` and `bin/up` (built by the lead)."""

from __future__ import annotations

from typing import Any

import psycopg


def seed_demo(conn: psycopg.Connection[Any]) -> None:
    """Load the demo organisation and its users into the database behind ``conn``."""
    raise NotImplementedError("seed-demo is built by the lead")
