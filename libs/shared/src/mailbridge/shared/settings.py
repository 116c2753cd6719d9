"""Settings bases: every service reads ``MAILBRIDGE_*`` variables through one of these.

Built in each service's ``__main__`` and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs: where NATS is, how to log, where to answer health checks."""

    model_config = SettingsConfigDict(env_prefix="MAILBRIDGE_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="one NATS server, or a comma-separated list of a cluster's servers: the "
        "connection picks one and moves to another whenever it is lost",
    )
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,  # JetStream's own limit on a stream's replicas
        description="copies of every JetStream stream and KV/object bucket a service creates "
        "(3 on a three-node cluster); an existing one with another count is changed to it",
    )
    drain_seconds: float = Field(
        default=20.0,
        ge=0,
        le=300,
        description="on SIGTERM, how long work in flight (commands, requests, rpc) may take to"
        " finish before it is handed back; keep it under the orchestrator's grace period (the"
        " Kubernetes manifests: 45 s for mail-worker, 55 s for config-api) minus the hand-over",
    )
    log_level: str = "INFO"
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=0, description="0 disables the health port")
    otel_console: bool = Field(default=False, description="print spans to stderr (debugging)")
    otlp_endpoint: str | None = Field(
        default=None,
        description="an OTLP/HTTP collector's base URL (http://collector:4318): spans are exported "
        "to {endpoint}/v1/traces as protobuf; unset, nothing is exported",
    )
    otlp_export_delay_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="the longest a finished span waits in the batch before it is exported",
    )

    @property
    def nats_servers(self) -> list[str]:
        """The servers ``nats_url`` lists, in order (blanks around commas ignored)."""
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]


class DatabaseSettings(ServiceSettings):
    """For services that own tables: a PostgreSQL DSN and the sealing keys for their secrets."""

    database_url: SecretStr
    sealing_keys: SecretStr = Field(
        description="comma-separated KEY_ID:BASE64 (32-byte AES keys); the first seals, all open",
    )
    db_pool_min: int = 1
    db_pool_max: int = 10


class ProviderEndpoints(BaseSettings):
    """Where Microsoft and Google are (SPEC §9): the real endpoints by default, so that any
    standards-following authorization server, such as the sandbox provider, can stand in.

    Issuers and signing keys are read from the discovery documents, never written here."""

    model_config = SettingsConfigDict(env_prefix="MAILBRIDGE_", extra="ignore")

    microsoft_authority: str = Field(
        default="https://login.microsoftonline.com",
        description="{authority}/{tenant}/oauth2/v2.0/authorize|token and "
        "{authority}/{tenant}/v2.0/.well-known/openid-configuration",
    )
    google_authorization_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_revocation_url: str = "https://oauth2.googleapis.com/revoke"
    google_userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    gmail_api_url: str = "https://gmail.googleapis.com"
    graph_api_url: str = "https://graph.microsoft.com/v1.0"
    oauth_ca_file: str | None = Field(
        default=None, description="a CA bundle to verify the providers' TLS with (always verified)"
    )


class OutboundHosts(BaseSettings):
    """How a service reaches the hosts users name (mail servers, autoconfig documents): TLS always
    verified, and hosts on internal addresses refused unless allowed (``shared.outbound``)."""

    model_config = SettingsConfigDict(env_prefix="MAILBRIDGE_", extra="ignore")

    tls_ca_file: Path | None = Field(
        default=None,
        description="extra CA bundle to trust (tests, private CAs); system CAs otherwise",
    )
    allow_private_hosts: bool = Field(
        default=False, description="allow hosts that resolve to loopback/private addresses (dev)"
    )


class PublicAddress(BaseSettings):
    """How browsers reach mailbridge: the OAuth callback hangs off it, and the callback page
    posts its result only to these origins."""

    model_config = SettingsConfigDict(env_prefix="MAILBRIDGE_", extra="ignore")

    public_base_url: str = Field(
        default="http://127.0.0.1:8080",
        description="the callback is {base}/api/engine/oauth/callback: register it at the provider",
    )
    ui_origins: str = Field(
        default="",
        description="comma-separated origins the callback page may post to; "
        "the public base URL's own origin is always one",
    )

    @property
    def callback_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/api/engine/oauth/callback"

    def allowed_ui_origins(self) -> frozenset[str]:
        listed = {origin.strip().rstrip("/") for origin in self.ui_origins.split(",")}
        return frozenset(listed - {""}) | {origin_of(self.public_base_url)}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased as browsers serialize an origin."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
