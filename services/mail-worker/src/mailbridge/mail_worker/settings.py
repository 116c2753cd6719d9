"""mail-worker settings (``MAILBRIDGE_*``)."""

from __future__ import annotations

from pydantic import Field

from mailbridge.shared.settings import OutboundHosts, ProviderEndpoints, ServiceSettings


class MailWorkerSettings(ServiceSettings, ProviderEndpoints, OutboundHosts):
    connect_timeout_seconds: float = Field(default=15.0, gt=0)
    credentials_timeout_seconds: float = Field(default=5.0, gt=0)
    token_timeout_seconds: float = Field(
        default=10.0, gt=0, description="wait for the oauth-broker's access token (it may refresh)"
    )
    api_timeout_seconds: float = Field(
        default=10.0, gt=0, description="connect, read and write limit of each Gmail/Graph call"
    )
    policy_timeout_seconds: float = Field(
        default=5.0, gt=0, description="wait for policy's send authorization; then retry later"
    )
    consumer_durable: str = "mail-worker"
    max_deliver: int = Field(default=5, ge=1)
    ack_wait_seconds: float = Field(
        default=60.0,
        ge=1.0,
        description="a command not acked for this long is redelivered; a handler still working"
        " says so (in progress) every third of it",
    )
    concurrency: int = Field(default=16, ge=1, le=256, description="commands handled at once")
    max_sessions_per_host: int = Field(
        default=64,
        ge=1,
        description="IMAP and SMTP connections this worker keeps open to one host at most;"
        " idle ones are closed to make room, and beyond it a command waits",
    )
    poll_backlog: int = Field(default=10, ge=0, description="messages shown on a first poll")
    poll_batch: int = Field(default=50, ge=1, description="messages fetched per poll at most")
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
