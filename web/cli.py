"""``compliance web``: run the web app under uvicorn on WEB_HOST:WEB_PORT."""

from __future__ import annotations

import logging
import sys

import click

from compliance.settings import SettingsError

__all__ = ["run_server", "uvicorn_config", "web"]


def uvicorn_config(settings: object, app: object) -> object:
    """The uvicorn Config for ``app`` (a Litestar app) with the web settings."""
    import uvicorn

    from web.settings import WebSettings
    from web.wsserver import RelayWebSocketProtocol

    assert isinstance(settings, WebSettings)
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.web_host,
        port=settings.web_port,
        # uvicorn's sans-I/O websockets protocol (a send waits while the client does not read,
        # which lets the relay notice and cut off a slow reader), plus a way for the relay to
        # write a frame built once to many connections (web/wsserver.py).
        ws=RelayWebSocketProtocol,
        ws_max_size=settings.web_ws_max_message_bytes,
        ws_ping_interval=settings.web_ws_ping_interval_seconds,
        ws_ping_timeout=settings.web_ws_ping_timeout_seconds,
        ws_per_message_deflate=False,
        access_log=False,  # web.access logs each request, with secrets masked
        log_config=None,
        lifespan="on",
        # A stop waits this long for connections to close, then cuts off the rest (a client that
        # reads nothing keeps its connection open for ever), and the app shuts down.
        timeout_graceful_shutdown=settings.web_stop_timeout_seconds,
        server_header=False,
        proxy_headers=False,
    )


def run_server(settings: object) -> None:
    """Run the app in the foreground until interrupted."""
    import uvicorn

    from web.app import create_app
    from web.settings import WebSettings

    assert isinstance(settings, WebSettings)
    config = uvicorn_config(settings, create_app(settings))
    assert isinstance(config, uvicorn.Config)
    server = uvicorn.Server(config)
    server.run()


@click.command("web")
@click.option("--host", default=None, help="Listen address (default: WEB_HOST, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: WEB_PORT, 8080)."
)
def web(host: str | None, port: int | None) -> None:
    """Run the web app: exports, the live event WebSocket, presence and health."""
    from web.settings import load_web_settings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["web_host"] = host
    if port is not None:
        overrides["web_port"] = port
    try:
        settings = load_web_settings(**overrides)
    except SettingsError as exc:
        for line in exc.problems:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    logging.basicConfig(
        level=settings.web_log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    click.echo(f"web app on http://{settings.web_host}:{settings.web_port} (OpenAPI at /schema)")
    run_server(settings)
