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
    consumer_metrics_seconds: float = Field(
        default=15.0,
        gt=0,
        description="how often the shared consumer's backlog is read from the server into "
        "mailbridge_worker_consumer_pending and _ack_pending (a Prometheus scrape's pace)",
    )
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
    read_raw_max_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        le=700 * 1024,  # base64 in a reply within NATS's default 1 MB payload
        description="the largest message a read on demand returns raw (RFC 822 bytes)",
    )
    trusted_authserv_id: str = Field(
        default="",
        max_length=255,
        pattern=r"^[^\s\x00-\x1f\x7f]*$",  # one name: no spaces, no controls
        description="the authserv-id (RFC 8601) of the receiving mail server, usually its host"
        " name (mx.example.com): only its Authentication-Results header is believed when a"
        " message is screened; empty: none is, since any sender can write one",
    )

    # Receiving as mail arrives: IMAP IDLE (RFC 2177), one watching worker per mailbox
    # (entrypoints/watchers.py). Polls read every mailbox no worker watches.
    imap_idle: bool = Field(
        default=True, description="watch connected IMAP mailboxes with IDLE; False: polls only"
    )
    watch_max_mailboxes: int = Field(
        default=1000,
        ge=0,
        description="mailboxes this worker watches at most, each on a connection of its own;"
        " the replicas share the mailboxes evenly within it, and the rest are polled",
    )
    watch_lease_seconds: float = Field(
        default=15.0,
        ge=1.0,
        description="a worker not heard of for this long is gone: its mailboxes are watched by"
        " the others",
    )
    watch_quiet_seconds: float = Field(
        default=60.0,
        gt=0,
        le=25 * 60,
        description="a watched mailbox is read again after this long without news (the safety"
        " net), and its IDLE re-issued (servers end one after 29 minutes)",
    )
    watch_reconnects: int = Field(
        default=3,
        ge=0,
        description="times a lost session is replaced in a row (1, 2, 4 s apart) before the"
        " mailbox is reported as failing and left to polls and their backoff",
    )
    watch_concurrent_logins: int = Field(
        default=32, ge=1, description="watch sessions this worker opens at once"
    )

    # Pacing of the Gmail and Graph APIs per mailbox, shared by every replica (adapters/pacing.py).
    # Gmail: "Usage limits", developers.google.com/gmail/api/reference/quota (per minute per user
    # per project: 6,000 quota units; earlier 15,000, or 250 a second); messages.send = 100 units,
    # messages.get/list = 5 (OAUTH-FACTS §2.2). Graph: 4 concurrent requests and 10,000 requests
    # per 10 minutes per app per mailbox; Exchange sends 30 messages a minute (OAUTH-FACTS §2.4).
    # A burst waits for room (spread out) up to a third of ack_wait_seconds, then is retried.
    pacing_gmail_units_per_minute: float = Field(default=6000.0, gt=0)
    pacing_gmail_burst_units: float = Field(
        default=250.0, gt=0, description="units a mailbox may spend at once, within the minute's"
    )
    pacing_gmail_send_units: float = Field(default=100.0, gt=0)
    pacing_gmail_read_units: float = Field(default=5.0, gt=0)
    pacing_graph_concurrency: int = Field(default=4, ge=1)
    pacing_graph_requests_per_10_minutes: float = Field(default=10_000.0, gt=0)
    pacing_graph_request_burst: float = Field(default=100.0, ge=1)
    pacing_graph_sends_per_minute: float = Field(default=30.0, gt=0)
    pacing_graph_send_burst: float = Field(default=5.0, ge=1)
    pacing_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="a call's slot is freed after this even if its replica died mid-call",
    )
    pacing_poll_seconds: float = Field(
        default=0.25, gt=0, description="how often a call waiting for a free slot looks again"
    )
