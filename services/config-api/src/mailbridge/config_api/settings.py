"""config-api settings (``MAILBRIDGE_*``)."""

from __future__ import annotations

from pydantic import Field

from mailbridge.shared.settings import DatabaseSettings, PublicAddress


class ConfigApiSettings(DatabaseSettings, PublicAddress):
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    test_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    credentials_queue: str = "config-api"
    api_key_cache_seconds: float = Field(default=30.0, ge=0)
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    poll_interval_seconds: float = Field(default=60.0, gt=0, le=600)
    poll_tick_seconds: float = Field(default=5.0, gt=0)
    policy_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
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
    ui_session_minutes: int = Field(
        default=15,
        gt=0,
        le=24 * 60,
        description="how long an Email tab link and its session live; the open page renews it",
    )
