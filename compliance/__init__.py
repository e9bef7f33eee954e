"""Compliance training manager: the Python side (thin; the rules live in PostgreSQL)."""

__version__ = "0.1.0"
