"""An agent's email config: shown, saved (secrets sealed), deleted, opened for the worker."""

from __future__ import annotations

from pydantic import SecretStr

from mailbridge.config_api.domain import audit
from mailbridge.config_api.domain import poll_backoff as polls
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
    over_imap,
    public_settings,
    secret_of,
)
from mailbridge.config_api.domain.oauth import DisconnectedView, Revocation
from mailbridge.config_api.handlers import orgs as handlers_org
from mailbridge.config_api.handlers.agents import load_agent
from mailbridge.config_api.handlers.mailbox_status import status_events
from mailbridge.config_api.ports import (
    CommandPublisher,
    ConfigRepository,
    GrantRevoker,
    PolicyService,
)
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    Credentials,
    CredentialsReply,
    EmailConfigDeleted,
    EmailConfigSaved,
    Event,
    Provider,
    ServerEndpoint,
    TestConnection,
)


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
    commands: CommandPublisher | None = None,
) -> EmailConfigView:
    """Save; an OAuth config without an app of its own is refused unless its org shares one.
    A password saved for a mailbox whose polls had stopped is tested at once (its result makes
    it connected again), so receiving resumes without waiting for someone to press Test."""
    agent, previous, status = await load_agent(agent_id, repo, principal)
    if inherits_org_app(body):
        provider = Provider(body.provider)
        await handlers_org.require_org_app(agent_id, agent, provider, policy=policy)
    config = _next_config(agent_id, body, previous, sealer)
    new_status = StatusRecord(status=transitions.status_after_save(config.provider))
    saved_event = EmailConfigSaved(
        agent_id=agent_id, provider=config.provider, email=config.email, version=config.version
    )
    events: list[Event] = [saved_event, *status_events(agent_id, status, new_status)]
    audited = [audit.config_saved(saved_event, principal)]
    stored = await repo.save(config, new_status, events, expected_version, audited)
    if commands is not None and _resumes_receiving(stored, status):
        await commands.publish(TestConnection(agent_id=agent_id))
    view = EmailConfigView.of(agent_id, stored, new_status)
    return await handlers_org.with_banners(view, agent, stored, policy=policy)  # as a GET shows it


def _resumes_receiving(saved: StoredConfig, before: StatusRecord) -> bool:
    """New IMAP credentials for a mailbox the poll failures stopped: test them now. (OAuth
    configs are tested when authorized.)"""
    return saved.provider is Provider.IMAP and polls.stopped_receiving(before.last_error)


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
) -> DisconnectedView:
    """Disconnect: secrets erased with the row, grant revoked where there is one."""
    _, config, status = await load_agent(agent_id, repo, principal)
    cleared, deleted = StatusRecord(), EmailConfigDeleted(agent_id=agent_id)
    events: list[Event] = [deleted, *status_events(agent_id, status, cleared)]
    audited = [audit.config_deleted(deleted, principal)]
    await repo.delete(agent_id, cleared, events, expected_version, audited)
    view = DisconnectedView.of(agent_id, None, cleared)
    if config is None or config.provider is Provider.IMAP:
        return view
    revocation = Revocation.of(await revoker.revoke(agent_id))
    return view.model_copy(update={"revocation": revocation})


async def get_credentials(
    agent_id: str, *, repo: ConfigRepository, sealer: Sealer
) -> CredentialsReply:
    """Open the sealed secret for the mail-worker (answered over NATS only), with the agent's
    org, client org and own approval mode, which policy checks each send against."""
    agent, config, _ = await repo.load_owned(agent_id)
    if agent is None or config is None:
        return CredentialsReply(agent_id=agent_id, error=ErrorInfo.of(ErrorCode.NOT_CONFIGURED))
    if config.email is None:  # an OAuth config gets its address from its first authorization
        return CredentialsReply(
            agent_id=agent_id, error=ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED)
        )
    credentials = Credentials(
        provider=config.provider,
        email=config.email,
        agent_id=agent_id,
        org_id=agent.org_id,
        client_org_id=agent.client_org_id,
        approval=agent.approval,
    )
    if config.provider is Provider.IMAP:  # OAuth mailboxes: the worker asks the broker a token
        credentials = credentials.model_copy(update=_password_login(config, sealer))
    elif over_imap(config.settings):
        credentials = credentials.model_copy(update={**_servers(config), "xoauth2": True})
    return CredentialsReply(agent_id=agent_id, credentials=credentials)


def _password_login(config: StoredConfig, sealer: Sealer) -> dict[str, object]:
    """An IMAP config's user name, opened app password and servers."""
    settings, sealed = config.settings, config.sealed_secret
    return {
        "username": settings.get("username") or config.email,
        "password": SecretStr(sealer.open(sealed, config.agent_id)) if sealed else None,
        **_servers(config),
    }


def _servers(config: StoredConfig) -> dict[str, ServerEndpoint | None]:
    """The IMAP and SMTP servers of an IMAP config, or of an OAuth one over IMAP (XOAUTH2)."""
    settings = config.settings
    return {
        "imap": ServerEndpoint(**settings["imap"]) if "imap" in settings else None,
        "smtp": ServerEndpoint(**settings["smtp"]) if "smtp" in settings else None,
    }
