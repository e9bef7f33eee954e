"""Settings of the web app: the shared :class:`compliance.settings.Settings` plus the WEB_* ones.

``load_web_settings()`` reads them from the environment once at start and raises
:class:`compliance.settings.SettingsError` with one line per missing or malformed variable
(naming it and what it should be, never echoing its value).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from compliance.settings import Settings, SettingsError, libpq_dsn

__all__ = ["WebSettings", "load_web_settings"]


class WebSettings(Settings):
    """Everything `compliance web` reads. Environment variable = field name, upper case."""

    web_host: str = Field(default="127.0.0.1", description="address the web app listens on")
    web_port: int = Field(default=8080, ge=1, le=65535, description="TCP port of the web app")
    web_database_url: str | None = Field(
        default=None,
        repr=False,
        description=(
            "libpq connection string of the web_app role (default: DATABASE_URL with user web_app)"
        ),
    )
    web_allowed_origins: str = Field(
        default="",
        description=(
            "comma-separated origins (scheme://host[:port]) allowed to open WS /ws and to call "
            "the HTTP endpoints from a browser"
        ),
    )
    web_db_pool_min: int = Field(default=1, ge=0, le=100, description="pool minimum size")
    web_db_pool_max: int = Field(default=10, ge=1, le=200, description="pool maximum size")
    web_db_timeout_seconds: float = Field(
        default=5.0, gt=0, le=120, description="wait for a pooled connection at most this long"
    )
    web_export_max_concurrent: int = Field(
        default=4, ge=1, le=100, description="exports running at once in this process"
    )
    web_export_max_per_user: int = Field(
        default=2, ge=1, le=100, description="exports one user may run at once"
    )
    web_export_chunk_bytes: int = Field(
        default=256 * 1024, ge=4096, le=16 * 1024 * 1024, description="CSV bytes per HTTP chunk"
    )
    web_pdf_overdue_rows: int = Field(
        default=500, ge=1, le=100_000, description="overdue assignments listed in the PDF"
    )
    web_ws_queue_events: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="events one WebSocket client may have waiting before it is cut off",
    )
    web_ws_send_timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="a send blocked this long cuts a client off"
    )
    web_ws_max_message_bytes: int = Field(
        default=4096, ge=64, le=1024 * 1024, description="largest client message (else 1009)"
    )
    web_ws_max_messages_per_second: float = Field(
        default=10.0, gt=0, le=10_000, description="client message rate (burst twice it; else 1008)"
    )
    web_ws_resume_wait_seconds: float = Field(
        default=0.5,
        ge=0,
        le=30,
        description="how long a new connection waits for a resume message before it starts",
    )
    web_ws_ping_interval_seconds: float = Field(
        default=20.0, gt=0, le=3600, description="WebSocket ping interval"
    )
    web_ws_ping_timeout_seconds: float = Field(
        default=20.0, gt=0, le=3600, description="close a connection whose pong is this late"
    )
    web_ws_max_connections: int = Field(
        default=10_000, ge=1, le=1_000_000, description="WebSocket connections of this process"
    )
    web_relay_batch_rows: int = Field(
        default=500, ge=1, le=10_000, description="events read per client per relay round"
    )
    web_relay_connections: int = Field(
        default=2,
        ge=1,
        le=32,
        description="connections a relay round is spread over (about the database's cores)",
    )
    web_relay_poll_seconds: float = Field(
        default=0.02,
        gt=0,
        le=10,
        description="re-read interval while a committed event waits behind a running transaction",
    )
    web_relay_safety_poll_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="read for every client at least this often"
    )
    web_listener_heartbeat_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="the LISTEN connection is checked this often"
    )
    web_stop_timeout_seconds: int = Field(
        default=5,
        ge=1,
        le=600,
        description="on SIGTERM, seconds connections get to close before they are cut off",
    )
    web_log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    jwt_jwks_url: str | None = Field(
        default=None,
        description="JWKS URL of the identity provider (RS256/ES256 tokens), cached, keys by kid",
    )
    jwt_jwks_file: str | None = Field(
        default=None, description="a JWKS file instead of JWT_JWKS_URL"
    )
    jwt_issuer: str | None = Field(
        default=None, description="the iss the identity provider's tokens must carry"
    )
    jwt_role_claim: str = Field(
        default="role",
        description="the claim carrying role = authenticated in the provider's tokens",
    )
    jwt_jwks_cache_seconds: int = Field(
        default=300, ge=1, le=86400, description="how long the fetched JWKS is reused"
    )
    jwt_jwks_refetch_seconds: float = Field(
        default=30,
        ge=0,
        le=3600,
        description="a token with an unknown kid fetches the JWKS again at most this often",
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        repr=False,
        description="the Stripe webhook endpoint's signing secret (whsec_...); unset: 503",
    )
    stripe_webhook_tolerance_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="a webhook signed longer ago than this is refused (replays)",
    )
    stripe_webhook_max_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="largest webhook body accepted (else 413)",
    )
    stripe_api_key: SecretStr | None = Field(
        default=None,
        repr=False,
        description="Stripe secret API key (sk_...), for Checkout and Billing Portal sessions",
    )
    stripe_api_base: str | None = Field(
        default=None,
        description="Stripe API base URL (default Stripe's; the fake's in tests and the demo)",
    )
    stripe_return_url: str = Field(
        default="http://localhost:8080/",
        description="where Checkout and the Billing Portal send the superadmin back",
    )

    @field_validator(
        "web_database_url",
        "stripe_webhook_secret",
        "stripe_api_key",
        "stripe_api_base",
        mode="before",
    )
    @classmethod
    def _web_empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("web_database_url")
    @classmethod
    def _web_database_url_is_postgres(cls, value: str | None) -> str | None:
        return libpq_dsn(value)

    @field_validator("web_allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: str) -> str:
        for origin in _split(value):
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
            ):
                raise ValueError(
                    f"{origin!r} is not an origin like https://app.example.com or "
                    "http://localhost:3000"
                )
        return value

    @field_validator("web_log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @model_validator(mode="after")
    def _pool_bounds(self) -> WebSettings:
        if self.web_db_pool_min > self.web_db_pool_max:
            raise ValueError("WEB_DB_POOL_MIN must not exceed WEB_DB_POOL_MAX")
        return self

    @property
    def allowed_origins(self) -> frozenset[str]:
        """The allowed origins, normalised (no trailing slash)."""
        return frozenset(origin.rstrip("/") for origin in _split(self.web_allowed_origins))

    @property
    def web_dsn(self) -> str:
        """Where the web app connects: WEB_DATABASE_URL, else DATABASE_URL as user web_app."""
        if self.web_database_url:
            return self.web_database_url
        if self.database_url is None:
            raise SettingsError(["WEB_DATABASE_URL is not set (nor DATABASE_URL)"])
        params = {k: v for k, v in conninfo_to_dict(self.database_url).items() if v is not None}
        params.pop("password", None)
        params["user"] = "web_app"
        return make_conninfo(**{k: str(v) for k, v in params.items()})


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _describe(error: Any) -> str:
    loc = error.get("loc") or ()
    name = str(loc[0]).upper() if loc else "SETTINGS"
    field = WebSettings.model_fields.get(str(loc[0]).lower()) if loc else None
    meaning = field.description if field is not None and field.description else ""
    if error.get("type") == "missing":
        return f"{name} is not set: {meaning}" if meaning else f"{name} is not set"
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    if not loc:
        return message
    return f"{name} is malformed: {message}" + (f" (expected: {meaning})" if meaning else "")


def load_web_settings(**overrides: Any) -> WebSettings:
    """Read and check the web app's settings (keyword arguments win over the environment).

    JWT_SECRET is required, and DATABASE_URL or WEB_DATABASE_URL. Raises
    :class:`SettingsError` with one line per problem.
    """
    problems: list[str] = []
    settings: WebSettings | None = None
    try:
        settings = WebSettings(**overrides)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors(include_input=False)]
    if settings is not None:
        if settings.jwt_secret is None:
            problems.append(_describe({"type": "missing", "loc": ("jwt_secret",)}))
        if (settings.jwt_jwks_url or settings.jwt_jwks_file) and not settings.jwt_issuer:
            problems.append(
                "JWT_ISSUER is not set: the identity provider's tokens (JWT_JWKS_URL or "
                "JWT_JWKS_FILE) are only accepted with their issuer checked"
            )
        if settings.jwt_jwks_url and settings.jwt_jwks_file:
            problems.append("JWT_JWKS_URL and JWT_JWKS_FILE are both set: choose one")
        if settings.database_url is None and settings.web_database_url is None:
            problems.append(
                "WEB_DATABASE_URL is not set (nor DATABASE_URL): libpq connection string of the "
                "web_app role"
            )
    if problems or settings is None:
        raise SettingsError(problems)
    return settings
