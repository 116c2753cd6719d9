"""Settings bases: every service reads ``MAILBRIDGE_*`` variables through one of these.

Built in each service's ``__main__`` and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs: where NATS is, how to log, where to answer health checks."""

    model_config = SettingsConfigDict(env_prefix="MAILBRIDGE_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    log_level: str = "INFO"
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=0, description="0 disables the health port")
    otel_console: bool = Field(default=False, description="print spans to stderr (debugging)")


class DatabaseSettings(ServiceSettings):
    """For services that own tables: a PostgreSQL DSN and the sealing keys for their secrets."""

    database_url: SecretStr
    sealing_keys: SecretStr = Field(
        description="comma-separated KEY_ID:BASE64 (32-byte AES keys); the first seals, all open",
    )
    db_pool_min: int = 1
    db_pool_max: int = 10
