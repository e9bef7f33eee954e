"""Thin Litestar app: export, WebSocket relay, presence, health."""
