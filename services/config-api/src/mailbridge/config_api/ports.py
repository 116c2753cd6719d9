"""What config-api's handlers need from the outside world."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailbridge.config_api.domain.agent_tokens import NewAgentToken, StoredAgentToken
from mailbridge.config_api.domain.api_keys import StoredKey
from mailbridge.config_api.domain.audit import AuditEntry, AuditPage, AuditQuery
from mailbridge.config_api.domain.detection import Finding, ServiceRecord
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord, StoredConfig
from mailbridge.config_api.domain.outgoing import Decision, SendStatus, SendView
from mailbridge.config_api.domain.ui_sessions import UiSession
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages import (
    ApproveSend,
    BeginOAuthFlow,
    CompleteOAuthFlow,
    ConnectionTested,
    EffectivePolicy,
    Event,
    FetchedMessage,
    GetEffectivePolicy,
    GetMessage,
    GrantRevocationReply,
    ListMessages,
    MarkedSeen,
    MarkSeen,
    Message,
    MessageHeld,
    MessageList,
    OAuthFlowBegun,
    OAuthFlowCompleted,
    OAuthFlowStarted,
    OAuthFlowView,
    PolicyDocumentReply,
    Provider,
    SendAuthorization,
    SendHold,
    SendMessage,
    StartOAuthFlow,
)
from mailbridge.shared.messages.policy import ClientOrgRequest, OrgRequest

StatusDecision = Callable[
    [StoredConfig | None, StatusRecord], tuple[StatusRecord, list[Event]] | None
]
"""Given the current config and status: the new status and its events, or None for no change."""


class ConfigRepository(Protocol):
    """Agents, configs and statuses; every write stores its events in the outbox atomically."""

    async def upsert_agent(self, agent_id: str, agent: AgentIn, events: list[Event]) -> None: ...

    async def agent_org(self, agent_id: str) -> str | None: ...

    async def load(self, agent_id: str) -> tuple[StoredConfig | None, StatusRecord]: ...

    async def load_owned(
        self, agent_id: str
    ) -> tuple[AgentIn | None, StoredConfig | None, StatusRecord]:
        """The agent (None: no such agent) with its org and client org, its config and status."""
        ...

    async def save(
        self,
        config: StoredConfig,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> StoredConfig:
        """Store the config as the next version, with its events and audit entries; 412 when
        ``expected_version`` is stale (and nothing is stored)."""
        ...

    async def delete(
        self,
        agent_id: str,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> bool: ...

    async def update_status(self, agent_id: str, decide: StatusDecision) -> None:
        """Run ``decide`` on the current config and status, atomically; store what it returns."""
        ...

    async def fill_email(self, agent_id: str, provider: Provider, email: str) -> bool:
        """Store ``email`` as the address of the agent's config of ``provider`` if it has none
        (an OAuth config saved without one): the address its grant confirmed. False when the
        config has an address already, is of another provider, or is not there."""
        ...


class SendLedger(Protocol):
    """HTTP sends: opened with their command (queued atomically), settled by result events."""

    async def open(
        self,
        command: SendMessage,
        idempotency_key: str | None,
        fingerprint: str,
        audit: Sequence[AuditEntry] = (),
    ) -> tuple[str, str]:
        """Record a new send, its command and its audit entries at once; a known key answers
        the earlier send's command id and fingerprint, and stores nothing."""
        ...

    async def find(self, agent_id: str, command_id: str) -> SendView | None: ...

    async def listed(self, agent_id: str, status: SendStatus | None, limit: int) -> list[SendView]:
        """The agent's sends (of one status, when given), oldest first."""
        ...

    async def settle(
        self, command_id: str, status: SendStatus, message_id: str | None, error: ErrorInfo | None
    ) -> None: ...


class AuditLog(Protocol):
    """The agents' audit trail: appended to once per ``source_id``, never changed, read newest
    first a page at a time. The MCP server records its tool calls here."""

    async def record(self, entry: AuditEntry) -> bool:
        """Append; False when its ``source_id`` is recorded already or its agent is unknown."""
        ...

    async def page(self, query: AuditQuery) -> AuditPage: ...


@dataclass(frozen=True)
class HeldSend:
    """A send waiting for approval: the command to queue again once approved, and why."""

    agent_id: str
    command_id: str
    command: SendMessage
    hold: SendHold
    held_at: datetime


DecisionEffects = Callable[[HeldSend], Awaitable[Sequence[Message]]]
"""What a decision sends on, given the held send, in the decision's transaction (the command
queued again, the decision's event); raising aborts the decision."""


class Approvals(Protocol):
    """Held sends and their decisions, in the send ledger."""

    async def hold(self, event: MessageHeld) -> bool:
        """The send now waits (False: it was decided already, or is not this agent's)."""
        ...

    async def decide(
        self, agent_id: str, command_id: str, wanted: Decision, actor: str | None,
        effects: DecisionEffects,
    ) -> bool | None:  # fmt: skip
        """True: decided now; False: it had that decision already; None: no such send. Raises
        ``not_held`` for a contradicting decision or a send never held."""
        ...

    async def expire(
        self, held_before: datetime, effects: DecisionEffects, limit: int = 100
    ) -> list[HeldSend]:
        """Reject as expired the undecided sends held before ``held_before``."""
        ...


class GrantRevoker(Protocol):
    """Asks oauth-broker to revoke an agent's OAuth grant where the provider allows it."""

    async def revoke(self, agent_id: str) -> GrantRevocationReply | None:
        """The broker's answer; None when it did not answer (the disconnect goes on)."""
        ...


class OAuthBroker(Protocol):
    """Asks oauth-broker about sign-in flows; each raises ``BrokerUnavailable`` when it does not
    answer. A refusal is an answer: its ``error`` says why."""

    async def begin(self, request: BeginOAuthFlow) -> OAuthFlowBegun: ...

    async def start(self, request: StartOAuthFlow) -> OAuthFlowStarted: ...

    async def complete(self, request: CompleteOAuthFlow) -> OAuthFlowCompleted: ...

    async def flow(self, flow_id: str) -> OAuthFlowView:
        """The flow; ``agent_id`` None when there is no such flow."""
        ...


class CommandPublisher(Protocol):
    async def publish(self, message: Message) -> None: ...


class KeyLookup(Protocol):
    """API keys by id (stored hashed; the caller verifies the secret)."""

    async def find(self, key_id: str) -> StoredKey | None: ...


class AgentTokenStore(Protocol):
    """Agent tokens, stored hashed; read on every request (a revocation holds at once)."""

    async def create(
        self, agent_id: str, org_id: str, name: str | None
    ) -> tuple[NewAgentToken, StoredAgentToken]: ...

    async def find(self, token_id: str) -> StoredAgentToken | None: ...

    async def live(self, agent_id: str) -> list[StoredAgentToken]:
        """The agent's tokens not revoked, oldest first."""
        ...

    async def revoke(self, agent_id: str, token_id: str) -> bool:
        """False when the agent has no such live token."""
        ...


class UiSessionStore(Protocol):
    """The Email tab's sessions, found by the SHA-256 of their link token or cookie secret."""

    async def create(self, session: UiSession, link_hash: str) -> None:
        """Store a new, unexchanged session; sessions a day past their end are dropped."""
        ...

    async def exchange(self, link_hash: str, secret_hash: str, now: datetime) -> UiSession | None:
        """Spend the link once: the session, from now on found by ``secret_hash``; None for a link
        unknown, spent or expired (of concurrent exchanges, one wins)."""
        ...

    async def find(self, secret_hash: str) -> UiSession | None:
        """The exchanged session of this secret, expired or not (the caller tells)."""
        ...

    async def renew(self, session_id: str, expires_at: datetime, now: datetime) -> UiSession | None:
        """Move a live session's end to ``expires_at``; None when it ended or expired."""
        ...

    async def end(self, session_id: str) -> None: ...


class LiveFeed(Protocol):
    """An agent's status changes, test results and policy changes as Server-Sent Events."""

    def follow(
        self, agent_id: str, agent: AgentIn, last_event_id: str | None, snapshot: str
    ) -> AsyncIterator[str]:
        """The ``snapshot`` event, then every event after ``last_event_id`` (or from now), then
        heartbeats while idle; the agent's org and client org say whose policy events show."""
        ...


class TestResults(Protocol):
    """Waits for the ``ConnectionTested`` event that answers one command."""

    def expect(self, command_id: str) -> None: ...

    async def wait(self, command_id: str, timeout: float) -> ConnectionTested | None: ...

    def deliver(self, result: ConnectionTested) -> None: ...


class PolicyService(Protocol):
    """Asks the policy service, which alone stores org OAuth apps and client orgs. Both raise
    ``PolicyUnavailable`` when policy does not answer (no responders, or not in time)."""

    async def document(self, request: OrgRequest | ClientOrgRequest) -> PolicyDocumentReply:
        """Read, store or delete an org's email config or a client org."""
        ...

    async def effective(self, request: GetEffectivePolicy) -> EffectivePolicy:
        """The OAuth app and client org rules that apply to one agent (quick: banners wait)."""
        ...

    async def approve(self, request: ApproveSend) -> SendAuthorization:
        """Let a held send through, reserving its quota now; a refusal is the reply's error."""
        ...


class MailReader(Protocol):
    """Asks a mail-worker to read an agent's mailbox on demand; each raises
    ``WorkerUnavailable`` when no worker answers in time. A refusal is the reply's ``error``."""

    async def list_messages(self, request: ListMessages) -> MessageList: ...

    async def get_message(self, request: GetMessage) -> FetchedMessage: ...

    async def mark_seen(self, request: MarkSeen) -> MarkedSeen: ...


class MailDns(Protocol):
    """The DNS records settings detection reads, each query bounded in time; both raise
    ``DnsUnavailable`` when the resolver does not answer in time, or fails."""

    async def mail_exchangers(self, domain: str) -> list[str]:
        """The domain's MX hosts, most preferred first ([] when it has none); ``DomainMissing``
        when the domain does not exist."""
        ...

    async def services(self, name: str) -> list[ServiceRecord]:
        """The SRV records of ``name`` ([] when it has none)."""
        ...


class AutoconfigFetcher(Protocol):
    """Fetches an autoconfig document from a host a user named, through the address guard."""

    async def fetch(self, url: str) -> bytes | None:
        """The document at an ``https`` URL, bounded in time and size; None when there is none,
        the host resolves to an address that is not allowed, or it did not come in time."""
        ...


@dataclass(frozen=True)
class DetectionSources:
    """Where settings detection looks beyond the presets."""

    dns: MailDns
    autoconfig: AutoconfigFetcher


class DetectionCache(Protocol):
    """Recent findings by domain, in process: a person types several addresses at one domain."""

    def get(self, domain: str) -> Finding | None: ...

    def put(self, domain: str, finding: Finding) -> None: ...
