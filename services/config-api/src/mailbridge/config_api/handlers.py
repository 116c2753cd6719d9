"""config-api use cases: one async function each, framework-free.

Each takes its inputs and the ports it needs, and returns what the caller shows. Status changes go
through ``domain.status`` and are stored with their events in one transaction (the outbox).
"""

from __future__ import annotations

from datetime import timedelta

from mailbridge.config_api import handlers_org
from mailbridge.config_api.domain import status as transitions
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import (
    AgentIn,
    EmailConfigIn,
    EmailConfigView,
    ImapConfigIn,
    StatusRecord,
    StoredConfig,
    inherits_org_app,
    public_settings,
    secret_of,
)
from mailbridge.config_api.domain.status import MailboxEvent
from mailbridge.config_api.ports import (
    CommandPublisher,
    ConfigRepository,
    GrantRevoker,
    PolicyService,
    TestResults,
)
from mailbridge.shared.clock import Clock
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    AgentUpdated,
    ConnectionTested,
    Credentials,
    CredentialsReply,
    EmailConfigDeleted,
    EmailConfigSaved,
    Event,
    GrantAuthorized,
    LastError,
    MailboxStatus,
    Provider,
    ServerEndpoint,
    StatusChanged,
    TestConnection,
)


async def register_agent(
    agent_id: str, agent: AgentIn, *, repo: ConfigRepository, principal: Principal
) -> None:
    current_org = await repo.agent_org(agent_id)
    if current_org is not None and not principal.can_access(current_org):
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"No agent {agent_id!r}.")
    if not principal.can_access(agent.org_id):
        raise MailbridgeError(
            ErrorCode.INVALID_INPUT, "This key cannot register agents of that org."
        )
    updated = AgentUpdated(agent_id=agent_id, **agent.model_dump())
    await repo.upsert_agent(agent_id, agent, [updated])  # workers drop what they cached of it


async def get_email_config(
    agent_id: str, *, repo: ConfigRepository, principal: Principal, policy: PolicyService
) -> EmailConfigView:
    _, view = await agent_and_email_config(agent_id, repo=repo, principal=principal, policy=policy)
    return view


async def agent_and_email_config(
    agent_id: str, *, repo: ConfigRepository, principal: Principal, policy: PolicyService
) -> tuple[AgentIn, EmailConfigView]:
    """The agent (its org and client org: whose events its live feed follows) and the config as
    shown, with the org OAuth app and client org banners when policy answers in time."""
    agent, config, status = await load_agent(agent_id, repo, principal)
    view = EmailConfigView.of(agent_id, config, status)
    return agent, await handlers_org.with_banners(view, agent, config, policy=policy)


async def save_email_config(
    agent_id: str,
    body: EmailConfigIn,
    *,
    repo: ConfigRepository,
    sealer: Sealer,
    principal: Principal,
    policy: PolicyService,
    expected_version: int | None = None,
) -> EmailConfigView:
    """Save; an OAuth config without an app of its own is refused unless its org shares one."""
    agent, previous, status = await load_agent(agent_id, repo, principal)
    if inherits_org_app(body):
        provider = Provider(body.provider)
        await handlers_org.require_org_app(agent_id, agent, provider, policy=policy)
    config = _next_config(agent_id, body, previous, sealer)
    new_status = StatusRecord(status=transitions.status_after_save(config.provider))
    saved_event = EmailConfigSaved(
        agent_id=agent_id, provider=config.provider, email=config.email, version=config.version
    )
    events: list[Event] = [saved_event, *_status_events(agent_id, status, new_status)]
    stored = await repo.save(config, new_status, events, expected_version)
    view = EmailConfigView.of(agent_id, stored, new_status)
    return await handlers_org.with_banners(view, agent, stored, policy=policy)  # as a GET shows it


def _next_config(
    agent_id: str, body: EmailConfigIn, previous: StoredConfig | None, sealer: Sealer
) -> StoredConfig:
    provider = Provider(body.provider)
    secret = secret_of(body)
    if secret is not None:
        sealed: str | None = sealer.seal(secret.get_secret_value(), agent_id)
    elif inherits_org_app(body):
        sealed = None  # the org's app has its own secret; the agent's old one goes with its app
    else:
        same_provider = previous is not None and previous.provider is provider
        sealed = previous.sealed_secret if same_provider and previous is not None else None
    if isinstance(body, ImapConfigIn) and sealed is None:
        raise MailbridgeError(ErrorCode.INVALID_INPUT, "An app password is required.")
    return StoredConfig(
        agent_id=agent_id,
        provider=provider,
        email=str(body.email) if body.email else None,
        settings=public_settings(body),
        sealed_secret=sealed,
        version=(previous.version + 1) if previous else 1,  # the repository has the last word
    )


async def delete_email_config(
    agent_id: str,
    *,
    repo: ConfigRepository,
    principal: Principal,
    revoker: GrantRevoker,
    expected_version: int | None = None,
) -> EmailConfigView:
    """Disconnect: secrets erased with the row, grant revoked where there is one."""
    _, config, status = await load_agent(agent_id, repo, principal)
    cleared = StatusRecord()
    events: list[Event] = [EmailConfigDeleted(agent_id=agent_id)]
    events += _status_events(agent_id, status, cleared)
    await repo.delete(agent_id, cleared, events, expected_version)
    if config is not None and config.provider is not Provider.IMAP:
        await revoker.revoke(agent_id)
    return EmailConfigView.of(agent_id, None, cleared)


async def run_connection_test(
    agent_id: str,
    *,
    principal: Principal,
    repo: ConfigRepository,
    commands: CommandPublisher,
    results: TestResults,
    clock: Clock,
    timeout: float,
) -> ConnectionTested:
    """Ask a mail-worker to test the mailbox and wait for its answer; record it as the status."""
    await load_configured(agent_id, repo, principal)
    command = TestConnection(agent_id=agent_id, expires_at=clock.now() + timedelta(seconds=timeout))
    results.expect(command.command_id)
    await commands.publish(command)
    result = await results.wait(command.command_id, timeout)
    if result is None:
        raise MailbridgeError(ErrorCode.WORKER_UNAVAILABLE)
    await record_test_result(result, repo=repo, clock=clock)
    return result


async def record_test_result(
    result: ConnectionTested, *, repo: ConfigRepository, clock: Clock
) -> None:
    """Apply a test result to the status once, however many times it is delivered."""
    now = clock.now()

    def decide(config: StoredConfig | None, status: StatusRecord) -> StatusOutcome:
        if config is None or _already_recorded(status, result.command_id):
            return None
        new_status = StatusRecord(
            status=transitions.status_after_test(result),
            last_error=transitions.last_error_after_test(result, now),
            last_test=_summary_of(result),
        )
        return new_status, _status_events(result.agent_id, status, new_status)

    await repo.update_status(result.agent_id, decide)


StatusOutcome = tuple[StatusRecord, list[Event]] | None


def _same_error(status: StatusRecord, error: LastError) -> bool:
    """Already in error for the same reason: a redelivered event changes nothing."""
    shown = status.last_error
    return shown is not None and (shown.code, shown.source) == (error.code, error.source)


def _already_recorded(status: StatusRecord, command_id: str) -> bool:
    return status.last_test is not None and status.last_test.get("command_id") == command_id


def _summary_of(result: ConnectionTested) -> dict[str, object]:
    return result.model_dump(mode="json", exclude={"event_id"})


def _status_events(agent_id: str, before: StatusRecord, after: StatusRecord) -> list[Event]:
    if before.status == after.status and before.last_error == after.last_error:
        return []
    return [
        StatusChanged(
            agent_id=agent_id,
            status=after.status,
            previous=before.status,
            last_error=after.last_error,
        )
    ]


async def get_credentials(
    agent_id: str, *, repo: ConfigRepository, sealer: Sealer
) -> CredentialsReply:
    """Open the sealed secret for the mail-worker (answered over NATS only), with the agent's
    org and client org, which policy checks each send against."""
    agent, config, _ = await repo.load_owned(agent_id)
    if agent is None or config is None or config.email is None:
        return CredentialsReply(agent_id=agent_id, error=ErrorInfo.of(ErrorCode.NOT_CONFIGURED))
    password = sealer.open(config.sealed_secret, agent_id) if config.sealed_secret else None
    settings = config.settings
    credentials = Credentials(
        provider=config.provider,
        email=config.email,
        username=settings.get("username") or config.email,
        password=password,
        imap=ServerEndpoint(**settings["imap"]) if "imap" in settings else None,
        smtp=ServerEndpoint(**settings["smtp"]) if "smtp" in settings else None,
        org_id=agent.org_id,
        client_org_id=agent.client_org_id,
    )
    return CredentialsReply(agent_id=agent_id, credentials=credentials)


async def load_configured(
    agent_id: str, repo: ConfigRepository, principal: Principal
) -> StoredConfig:
    """The agent's config; 409 ``not_configured`` when it has none yet."""
    _, config, _ = await load_agent(agent_id, repo, principal)
    if config is None:
        raise MailbridgeError(ErrorCode.NOT_CONFIGURED)
    return config


async def load_agent(
    agent_id: str, repo: ConfigRepository, principal: Principal
) -> tuple[AgentIn, StoredConfig | None, StatusRecord]:
    """The agent, its config and status, in one query; another org's agent is answered exactly
    like a missing one (404, never 403)."""
    agent, config, status = await repo.load_owned(agent_id)
    if agent is None or not principal.can_access(agent.org_id):
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"No agent {agent_id!r}.")
    return agent, config, status


async def record_mailbox_event(
    event: MailboxEvent, *, repo: ConfigRepository, clock: Clock
) -> None:
    """An OAuth refresh failure, a revoked grant, or a send refused for its credentials: error."""
    error = transitions.error_after_event(event, clock.now())

    def decide(config: StoredConfig | None, status: StatusRecord) -> StatusOutcome:
        if config is None or error is None or _same_error(status, error):
            return None
        new_status = status.model_copy(update={"status": MailboxStatus.ERROR, "last_error": error})
        return new_status, _status_events(event.agent_id, status, new_status)

    await repo.update_status(event.agent_id, decide)


async def test_after_authorization(
    event: GrantAuthorized, *, repo: ConfigRepository, commands: CommandPublisher
) -> None:
    """A grant was authorized: run the automatic test whose result makes the mailbox connected."""
    config, _ = await repo.load(event.agent_id)
    if config is not None:
        await commands.publish(TestConnection(agent_id=event.agent_id))
