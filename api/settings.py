"""Configuration: one ``Settings`` read from the environment (and an optional ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OidcIssuer(BaseModel):
    issuer: str
    jwks_url: str
    audience: str


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GUICHET_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "GUICHET_DATABASE_URL"),
        description="Owner connection (postgresql:// or postgresql+asyncpg://). "
        "Unset: an embedded PostgreSQL in data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".guichet"),
        description="Local folder for the embedded PostgreSQL and generated signing keys.",
    )
    auto_migrate: bool = Field(default=True, description="Apply migrations at start.")
    app_role: str = Field(
        default="guichet_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Database role that runs requests: owns nothing, no BYPASSRLS.",
    )
    app_role_password: SecretStr | None = Field(
        default=None,
        description="Password of the runtime role, for servers that do not trust local "
        "connections. Unset: the owner's password from DATABASE_URL is reused.",
    )
    # Connections opened beyond the pool are closed as soon as they are returned: under a
    # steady load above the pool size every request paid a new connection (TLS attempt,
    # authentication, type introspection). The same 20 connections at most, all kept.
    db_pool_size: int = Field(default=20, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=200)
    db_pool_timeout_seconds: float = Field(
        default=5,
        gt=0,
        le=60,
        description="How long a request waits for a free connection before a 503.",
    )
    db_statement_timeout_ms: int = Field(
        default=15_000,
        ge=0,
        description="statement_timeout of the request role's sessions (0: none); a statement "
        "cancelled by it answers 503 with Retry-After.",
    )

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None

    login_max_account_failures: int = Field(
        default=10, ge=1, description="Failed logins per account in 15 minutes, all workers."
    )
    login_max_ip_attempts: int = Field(
        default=50, ge=1, description="Login attempts per client address in a minute."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_in_flight: int = Field(
        default=64,
        ge=0,
        description="Requests in progress per worker before new ones get an immediate 503 "
        "with Retry-After (0: no limit); /healthz, /readyz and /metrics are exempt.",
    )
    log_level: str = "INFO"

    jwt_issuer: str = "urn:guichet"
    jwt_audience: str = "guichet-api"
    jwt_private_keys_dir: Path | None = Field(
        default=None,
        description="Folder of PEM private keys (EC P-256); the newest signs, all verify. "
        "Unset: data_dir/keys, generated on first start.",
    )
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600)

    oidc_issuers: list[OidcIssuer] = Field(
        default_factory=list,
        description='Trusted external OIDC issuers, as JSON: [{"issuer": "...", '
        '"jwks_url": "https://...", "audience": "..."}]. Their tokens map to a known user '
        "by e-mail.",
    )
    nir_key: SecretStr | None = Field(
        default=None,
        description="32-byte base64 key encrypting NIR at rest and keying their lookup hash. "
        "Unset: generated in data_dir on first start.",
    )
    webhook_allow_private: bool = False
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that reads /metrics from anywhere. Unset: /metrics answers "
        "only the loopback (a scraper on the same host or a sidecar).",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed (the client address then counts for "
        "the login limits); '*' trusts any. Empty: none, the peer address is the client's.",
    )

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker-compose passes an unset optional variable as "": that is no token at all
        return None if value == "" else value

    @property
    def keys_dir(self) -> Path:
        return self.jwt_private_keys_dir or self.data_dir / "keys"


@lru_cache
def get_settings() -> Settings:
    return Settings()
