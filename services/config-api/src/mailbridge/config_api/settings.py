"""config-api settings (``MAILBRIDGE_*``)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mailbridge.config_api.domain.poll_backoff import BackoffPolicy
from mailbridge.shared.settings import DatabaseSettings, OutboundHosts, PublicAddress


class DetectionSettings(BaseSettings):
    """Settings detection (``GET /bridge/email-presets/detect``): which DNS server it asks, how
    long each lookup may take, how long findings are kept. Its autoconfig fetches reach hosts
    users name: ``MAILBRIDGE_ALLOW_PRIVATE_HOSTS`` and ``MAILBRIDGE_TLS_CA_FILE`` apply."""

    model_config = SettingsConfigDict(env_prefix="MAILBRIDGE_", extra="ignore")

    dns_resolver: str | None = Field(
        default=None,
        description='"address:port" (or "address", port 53) of the DNS server detection asks; '
        "the system's resolver when unset",
    )
    detect_dns_timeout_seconds: float = Field(
        default=2.0, gt=0, le=10, description="one DNS query, its retries included"
    )
    detect_autoconfig_timeout_seconds: float = Field(
        default=3.0, gt=0, le=10, description="one autoconfig fetch: its DNS, TLS, redirects, body"
    )
    detect_timeout_seconds: float = Field(
        default=6.0,
        gt=0,
        le=15,
        description="one whole detection (MX, then autoconfig beside SRV, take at most the DNS "
        "and autoconfig bounds together: keep this above their sum)",
    )
    detect_cache_seconds: float = Field(
        default=300.0, ge=0, description="how long a finding is kept"
    )
    detect_cache_entries: int = Field(default=1024, ge=1, description="findings kept at most")

    @field_validator("dns_resolver")
    @classmethod
    def _an_address_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            resolver_address(value)
        return value

    @property
    def dns_resolver_address(self) -> tuple[str, int] | None:
        return resolver_address(self.dns_resolver) if self.dns_resolver else None


def resolver_address(value: str) -> tuple[str, int]:
    """``127.0.0.1:5353`` → ("127.0.0.1", 5353); ``[::1]`` → ("::1", 53). ValueError otherwise."""
    parts = urlsplit(f"//{value}")
    address = str(ipaddress.ip_address(parts.hostname or ""))
    return address, parts.port or 53


class ConfigApiSettings(DatabaseSettings, PublicAddress, OutboundHosts, DetectionSettings):
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    test_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    credentials_queue: str = "config-api"
    api_key_cache_seconds: float = Field(default=30.0, ge=0)
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    poll_interval_seconds: float = Field(default=60.0, gt=0, le=600)
    poll_tick_seconds: float = Field(default=5.0, gt=0)
    poll_backoff_base_seconds: float | None = Field(
        default=None,
        gt=0,
        description="the wait after a mailbox's first failed poll, doubled after each further"
        " failure in a row; the poll interval when unset",
    )
    poll_backoff_cap_seconds: float = Field(
        default=900.0, gt=0, description="the longest wait between a failing mailbox's polls"
    )
    poll_error_after_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="how long polls may keep failing (timeouts, refused, throttled) before the"
        " badge turns error; a credentials failure shows at once",
    )
    policy_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    read_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=120,
        description="how long a read on demand waits for a mail-worker (which waits on the"
        " mail server)",
    )
    policy_effective_timeout_seconds: float = Field(
        default=1.0, gt=0, le=10, description="how long a config read waits for its banners"
    )
    oauth_broker_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="how long the oauth-broker may take to answer"
    )
    oauth_provider_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=120,
        description="how long the oauth-broker may take when it asks the provider itself "
        "(beginning, completing a sign-in; revoking a grant)",
    )
    oauth_flow_lifetime_seconds: int = Field(
        default=600,
        gt=0,
        description="how long the popup's browser-binding cookie lives: the broker's flow lifetime",
    )
    audit_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="how long audit entries are kept; older ones are purged hourly",
    )
    ui_session_minutes: int = Field(
        default=15,
        gt=0,
        le=24 * 60,
        description="how long an Email tab link and its session live; the open page renews it",
    )

    approval_expires_seconds: float = Field(
        default=24 * 3600.0,
        ge=1,
        le=6 * 24 * 3600.0,  # under the content store's 7-day TTL: a held send's body outlives it
        description="how long a held send waits for approval; undecided, it ends `rejected`"
        " (`approval_expired`)",
    )

    def approval_lifetime(self) -> timedelta:
        return timedelta(seconds=self.approval_expires_seconds)

    def approval_sweep_seconds(self) -> float:
        """How often the expiry looks: a held send ends within a quarter of its lifetime (at
        most 30 s) of expiring."""
        return min(30.0, self.approval_expires_seconds / 4)

    def poll_backoff(self) -> BackoffPolicy:
        """How failing polls are paced and when they show (``domain/poll_backoff.py``)."""
        return BackoffPolicy(
            base=timedelta(seconds=self.poll_backoff_base_seconds or self.poll_interval_seconds),
            cap=timedelta(seconds=self.poll_backoff_cap_seconds),
            error_after=timedelta(seconds=self.poll_error_after_seconds),
        )
