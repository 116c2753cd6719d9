"""What config-api's routes and subscribers may use: ports, nothing concrete (built in
bootstrap.py). A route names the ports it needs through ``entrypoints/http/deps.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailbridge.config_api.ports import (
    AgentTokenStore,
    Approvals,
    AuditLog,
    AutoconfigFetcher,
    CommandPublisher,
    ConfigRepository,
    DetectionCache,
    GrantRevoker,
    KeyLookup,
    LiveFeed,
    MailDns,
    MailReader,
    OAuthBroker,
    PolicyService,
    SendLedger,
    TestResults,
    UiSessionStore,
)
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.clock import Clock, SystemClock
from mailbridge.shared.content import ContentStore
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.health import ReadinessCheck


@dataclass(frozen=True)
class Container:
    settings: ConfigApiSettings
    repo: ConfigRepository
    ledger: SendLedger
    approvals: Approvals  # held sends and their decisions (the same ledger)
    content: ContentStore
    policy: PolicyService
    commands: CommandPublisher
    results: TestResults
    keys: KeyLookup
    agent_tokens: AgentTokenStore
    ui_sessions: UiSessionStore
    revoker: GrantRevoker
    oauth: OAuthBroker
    live: LiveFeed
    sealer: Sealer
    readiness: ReadinessCheck
    mail_dns: MailDns  # settings detection's sources beyond the presets, and its findings
    autoconfig: AutoconfigFetcher
    detections: DetectionCache
    mail: MailReader  # an agent's mailbox read on demand, by a mail-worker
    audit: AuditLog  # the agents' audit trail: the MCP server records its tool calls here too
    clock: Clock = field(default_factory=SystemClock)
