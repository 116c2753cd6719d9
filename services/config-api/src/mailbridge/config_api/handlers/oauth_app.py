"""The OAuth app an agent's flows and refreshes use, for the oauth-broker (answered over NATS
only: it carries the app's secret): the agent's own, saved with its config, else its org's."""

from __future__ import annotations

from pydantic import SecretStr

from mailbridge.config_api.domain.email_config import AgentIn, StoredConfig
from mailbridge.config_api.ports import ConfigRepository, PolicyService
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    GetEffectivePolicy,
    OAuthApp,
    OAuthAppReply,
    Provider,
)

DEFAULT_TENANT = "common"  # Microsoft: any organization's accounts, and personal ones


async def get_oauth_app(
    agent_id: str, *, repo: ConfigRepository, sealer: Sealer, policy: PolicyService
) -> OAuthAppReply:
    """The app with its secret opened, and the address the config expects (None: any)."""
    agent, config, _ = await repo.load_owned(agent_id)
    if agent is None or config is None or config.provider is Provider.IMAP:
        return OAuthAppReply(agent_id=agent_id, error=ErrorInfo.of(ErrorCode.NOT_CONFIGURED))
    try:
        app = _own_app(config, sealer) or await _org_app(agent_id, agent, config.provider, policy)
    except MailbridgeError as exc:  # policy did not answer, or answered an error
        return OAuthAppReply(agent_id=agent_id, error=exc.info())
    if app is None:
        return OAuthAppReply(agent_id=agent_id, error=_no_app(config.provider))
    return OAuthAppReply(agent_id=agent_id, app=app, expected_email=config.email)


def _own_app(config: StoredConfig, sealer: Sealer) -> OAuthApp | None:
    client_id = config.settings.get("client_id")
    if not client_id:
        return None
    sealed = config.sealed_secret
    secret = SecretStr(sealer.open(sealed, config.agent_id)) if sealed else None
    return OAuthApp(
        provider=config.provider,
        client_id=client_id,
        client_secret=secret,
        tenant_id=_tenant(config.provider, config.settings.get("tenant_id")),
    )


async def _org_app(
    agent_id: str, agent: AgentIn, provider: Provider, policy: PolicyService
) -> OAuthApp | None:
    request = GetEffectivePolicy(
        agent_id=agent_id,
        org_id=agent.org_id,
        client_org_id=agent.client_org_id,
        provider=provider,
        include_secret=True,
    )
    effective = await policy.effective(request)
    if effective.error is not None:
        raise MailbridgeError.explained(effective.error)
    banner = effective.oauth_app
    if banner is None or not banner.inherited:
        return None
    return OAuthApp(
        provider=provider,
        client_id=banner.client_id,
        client_secret=effective.oauth_client_secret,
        tenant_id=_tenant(provider, banner.tenant_id),
        inherited=True,
    )


def _tenant(provider: Provider, tenant_id: str | None) -> str | None:
    return (tenant_id or DEFAULT_TENANT) if provider is Provider.MICROSOFT else None


def _no_app(provider: Provider) -> ErrorInfo:
    return ErrorInfo.of(ErrorCode.OAUTH_APP_MISCONFIGURED).saying(
        f"No {provider.value} OAuth app: the config has none and its org shares none.",
        "Save the app's client id and secret with the config, or share one for the org.",
    )
