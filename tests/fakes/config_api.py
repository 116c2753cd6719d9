"""Fakes of config-api's ports (proved against their adapters in tests/ports/)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from mailbridge.config_api.domain import versions
from mailbridge.config_api.domain.agent_tokens import NewAgentToken, StoredAgentToken, new_token
from mailbridge.config_api.domain.audit import (
    AuditEntry,
    AuditEntryView,
    AuditPage,
    AuditQuery,
)
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord, StoredConfig
from mailbridge.config_api.domain.errors import BrokerUnavailable
from mailbridge.config_api.domain.outgoing import SendStatus, SendView
from mailbridge.config_api.domain.ui_sessions import KEPT_AFTER_END, UiSession
from mailbridge.config_api.ports import StatusDecision
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import (
    BeginOAuthFlow,
    CompleteOAuthFlow,
    ConnectionTested,
    EmailConfigSaved,
    Event,
    FetchedMessage,
    GetMessage,
    GetOAuthFlow,
    GrantRevocationReply,
    ListMessages,
    MarkedSeen,
    MarkSeen,
    Message,
    MessageList,
    MessageReceived,
    OAuthFlowBegun,
    OAuthFlowCompleted,
    OAuthFlowStarted,
    OAuthFlowView,
    Provider,
    Request,
    SendMessage,
    StartOAuthFlow,
)
from mailbridge.shared.messages.reading import MessageSummary


class FakeConfigRepository:
    def __init__(self) -> None:
        self.agents: dict[str, AgentIn] = {}
        self.configs: dict[str, StoredConfig] = {}
        self.statuses: dict[str, StatusRecord] = {}
        self.outbox: list[Event] = []
        self.audit: list[AuditEntry] = []  # what each change wrote with it

    async def upsert_agent(self, agent_id: str, agent: AgentIn, events: list[Event]) -> None:
        self.agents[agent_id] = agent
        self.outbox.extend(events)

    async def agent_org(self, agent_id: str) -> str | None:
        agent = self.agents.get(agent_id)
        return agent.org_id if agent else None

    async def load_owned(
        self, agent_id: str
    ) -> tuple[AgentIn | None, StoredConfig | None, StatusRecord]:
        config, status = await self.load(agent_id)
        return self.agents.get(agent_id), config, status

    async def load(self, agent_id: str) -> tuple[StoredConfig | None, StatusRecord]:
        return self.configs.get(agent_id), self.statuses.get(agent_id, StatusRecord())

    def _version(self, agent_id: str) -> int:
        return self.configs[agent_id].version if agent_id in self.configs else 0

    async def save(
        self,
        config: StoredConfig,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> StoredConfig:
        versions.check(expected_version, self._version(config.agent_id))
        self.audit += audit
        config = config.model_copy(update={"version": self._version(config.agent_id) + 1})
        self.configs[config.agent_id] = config
        self.statuses[config.agent_id] = status
        self.outbox += [_with_version(event, config.version) for event in events]
        return config

    async def delete(
        self,
        agent_id: str,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> bool:
        versions.check(expected_version, self._version(agent_id))
        self.audit += audit
        self.statuses.pop(agent_id, None)
        self.outbox += events
        return self.configs.pop(agent_id, None) is not None

    async def update_status(self, agent_id: str, decide: StatusDecision) -> None:
        outcome = decide(*await self.load(agent_id))
        if outcome is not None:
            self.statuses[agent_id], events = outcome
            self.outbox += events

    async def fill_email(self, agent_id: str, provider: Provider, email: str) -> bool:
        config = self.configs.get(agent_id)
        if config is None or config.provider is not provider or config.email is not None:
            return False
        self.configs[agent_id] = config.model_copy(update={"email": email})
        return True


def _with_version(event: Event, version: int) -> Event:
    """As the adapter does: a saved config's event tells the version stored, not the guess."""
    if isinstance(event, EmailConfigSaved):
        return event.model_copy(update={"version": version})
    return event


class RecordingRevoker:
    """Answers every revocation with ``reply`` (None: as if the broker did not answer)."""

    def __init__(self, reply: GrantRevocationReply | None = None) -> None:
        self.revoked: list[str] = []
        self.reply = reply

    async def revoke(self, agent_id: str) -> GrantRevocationReply | None:
        self.revoked.append(agent_id)
        return self.reply


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Message] = []

    async def publish(self, message: Message) -> None:
        self.published.append(message)


class AnsweringResults:
    """Answers each expected command with a result built from it, or never (``answer=None``)."""

    def __init__(self, answer: dict[str, object] | None) -> None:
        self.answer = answer
        self.expected: list[str] = []

    def expect(self, command_id: str) -> None:
        self.expected.append(command_id)

    async def wait(self, command_id: str, timeout: float) -> ConnectionTested | None:
        if self.answer is None:
            return None
        return ConnectionTested(command_id=command_id, **self.answer)  # type: ignore[arg-type]


class FakeOAuthBroker:
    """The oauth-broker's flow rpc: answers what a test set (``begun``, ``started``,
    ``completed``, ``views``), records every request; ``down`` answers nothing at all."""

    def __init__(self) -> None:
        self.begun = OAuthFlowBegun(
            flow_id="flow_1",
            authorization_url="http://api/api/engine/oauth/start?flow=flow_1",
            expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        )
        self.started = OAuthFlowStarted(flow_id="flow_1", redirect_url="https://idp/authorize?x=1")
        self.completed: OAuthFlowCompleted | None = None
        self.views: dict[str, OAuthFlowView] = {}
        self.asked: list[Request] = []
        self.down = False

    async def begin(self, request: BeginOAuthFlow) -> OAuthFlowBegun:
        self._answering(request)
        return self.begun

    async def start(self, request: StartOAuthFlow) -> OAuthFlowStarted:
        self._answering(request)
        return self.started

    async def complete(self, request: CompleteOAuthFlow) -> OAuthFlowCompleted:
        self._answering(request)
        if self.completed is None:
            raise AssertionError("the test did not say how the flow completes")
        return self.completed

    async def flow(self, flow_id: str) -> OAuthFlowView:
        self._answering(GetOAuthFlow(flow_id=flow_id))
        return self.views.get(flow_id, OAuthFlowView(flow_id=flow_id))

    def _answering(self, request: Request) -> None:
        if self.down:
            raise BrokerUnavailable()
        self.asked.append(request)


class MemoryUiSessions:
    """The Email tab's sessions, with the hashes each is found by, as the PostgreSQL store keeps
    them."""

    def __init__(self) -> None:
        self.sessions: dict[str, UiSession] = {}
        self.link_hashes: dict[str, str] = {}  # link hash → session id
        self.secret_hashes: dict[str, str] = {}  # secret hash → session id

    async def create(self, session: UiSession, link_hash: str) -> None:
        cutoff = session.created_at - KEPT_AFTER_END
        for pruned in [s.session_id for s in self.sessions.values() if s.expires_at < cutoff]:
            self._forget(pruned)
        self.sessions[session.session_id] = session
        self.link_hashes[link_hash] = session.session_id

    async def exchange(self, link_hash: str, secret_hash: str, now: datetime) -> UiSession | None:
        session = self.sessions.get(self.link_hashes.get(link_hash, ""))
        if session is None or session.exchanged or session.expires_at <= now:
            return None
        self.secret_hashes[secret_hash] = session.session_id
        return self._store(replace(session, exchanged=True))

    async def find(self, secret_hash: str) -> UiSession | None:
        return self.sessions.get(self.secret_hashes.get(secret_hash, ""))

    async def renew(self, session_id: str, expires_at: datetime, now: datetime) -> UiSession | None:
        session = self.sessions.get(session_id)
        if session is None or not session.exchanged or session.expires_at <= now:
            return None
        return self._store(replace(session, expires_at=expires_at))

    async def end(self, session_id: str) -> None:
        self._forget(session_id)

    def _store(self, session: UiSession) -> UiSession:
        self.sessions[session.session_id] = session
        return session

    def _forget(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        for hashes in (self.link_hashes, self.secret_hashes):
            for hashed in [h for h, found in hashes.items() if found == session_id]:
                del hashes[hashed]


class MemoryAuditLog:
    """The audit trail in memory, as the PostgreSQL table keeps it: one entry per source id, an
    agent's org stored with it, pages newest first by (occurred_at, id)."""

    def __init__(self, orgs: dict[str, str] | None = None) -> None:
        self.orgs = orgs if orgs is not None else {}  # agent → org: the agents it knows
        self.rows: list[tuple[int, str, AuditEntry]] = []  # id, org, entry
        self._sources: set[str] = set()

    async def record(self, entry: AuditEntry) -> bool:
        org = self.orgs.get(entry.agent_id)
        if org is None or entry.source_id in self._sources:
            return False
        self._sources.add(entry.source_id)
        self.rows.append((len(self.rows) + 1, org, entry))
        return True

    async def page(self, query: AuditQuery) -> AuditPage:
        found = sorted(
            (row for row in self.rows if _selected(row, query)),
            key=lambda row: (row[2].occurred_at, row[0]),
            reverse=True,
        )
        views = [
            AuditEntryView(entry_id=str(entry_id), **entry.model_dump())
            for entry_id, _, entry in found[: query.limit + 1]
        ]
        return AuditPage.of(query.agent_id, views, query.limit)


def _selected(row: tuple[int, str, AuditEntry], query: AuditQuery) -> bool:
    entry_id, org, entry = row
    at, after = entry.occurred_at, query.after
    return (
        entry.agent_id == query.agent_id
        and query.org_id in (None, org)
        and (not query.kinds or entry.kind in query.kinds)
        and (query.since is None or at >= query.since)
        and (query.until is None or at < query.until)
        and (after is None or (at, entry_id) < (after.occurred_at, after.entry_id))
    )


class MemoryAgentTokens:
    """Agent tokens by id, as the PostgreSQL store keeps them (a revoked one stays, flagged)."""

    def __init__(self) -> None:
        self.tokens: dict[str, StoredAgentToken] = {}

    async def create(
        self, agent_id: str, org_id: str, name: str | None
    ) -> tuple[NewAgentToken, StoredAgentToken]:
        made = new_token()
        stored = StoredAgentToken(
            made.token_id, agent_id, org_id, name, made.secret_hash, datetime.now(UTC), False
        )
        self.tokens[made.token_id] = stored
        return made, stored

    async def find(self, token_id: str) -> StoredAgentToken | None:
        return self.tokens.get(token_id)

    async def live(self, agent_id: str) -> list[StoredAgentToken]:
        mine = [t for t in self.tokens.values() if t.agent_id == agent_id and not t.revoked]
        return sorted(mine, key=lambda t: (t.created_at, t.token_id))

    async def revoke(self, agent_id: str, token_id: str) -> bool:
        found = self.tokens.get(token_id)
        if found is None or found.agent_id != agent_id or found.revoked:
            return False
        self.tokens[token_id] = replace(found, revoked=True)
        return True


REF = "INBOX.1.1"
ORIGINAL = MessageReceived(
    agent_id="a1",
    uid=1,
    uidvalidity=1,
    message_id="<orig@customer.example>",
    from_="Ada <ada@customer.example>",
    subject="Your order",
    references=["<root@customer.example>"],
    text="Where is it?",
)


class OneMessageMailbox:
    """A mailbox holding ``ORIGINAL`` as ``REF``; any other ref is gone (``not_found``)."""

    async def list_messages(self, request: ListMessages) -> MessageList:
        listed = MessageSummary(message_ref=REF, uid=1, subject=ORIGINAL.subject)
        return MessageList(agent_id=request.agent_id, messages=[listed])

    async def get_message(self, request: GetMessage) -> FetchedMessage:
        if request.message_ref != REF:
            return FetchedMessage(error=ErrorInfo.of(ErrorCode.NOT_FOUND))
        return FetchedMessage(agent_id=request.agent_id, message_ref=REF, message=ORIGINAL)

    async def mark_seen(self, request: MarkSeen) -> MarkedSeen:
        return MarkedSeen(agent_id=request.agent_id, message_ref=request.message_ref)


class SettlingLedger:
    """Every send opened is sent at once, as a worker and a willing server would settle it."""

    def __init__(self) -> None:
        self.commands: dict[str, SendMessage] = {}

    async def open(self, command: SendMessage, _key: str | None, fingerprint: str, *_: object
    ) -> tuple[str, str]:  # fmt: skip
        self.commands[command.command_id] = command
        return command.command_id, fingerprint

    async def find(self, _agent_id: str, command_id: str) -> SendView | None:
        if command_id not in self.commands:
            return None
        return SendView(command_id=command_id, status=SendStatus.SENT)

    async def settle(self, *_: object) -> None:
        return None
