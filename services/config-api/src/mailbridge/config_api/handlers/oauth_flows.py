"""Sign-in flows, which the oauth-broker keeps: begun for an agent (``authorize``), started in the
popup (bound to its browser), completed by the provider's redirect, and looked at by id."""

from __future__ import annotations

from collections.abc import Mapping

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import sign_in_scopes
from mailbridge.config_api.domain.errors import ServiceUnavailable
from mailbridge.config_api.domain.oauth import (
    UNKNOWN_FLOW,
    AuthorizationBegun,
    AuthorizeIn,
    FlowView,
    ProviderRedirect,
    cookie_name,
    is_flow_id,
)
from mailbridge.config_api.handlers.agents import load_configured
from mailbridge.config_api.ports import ConfigRepository, OAuthBroker
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    BeginOAuthFlow,
    CompleteOAuthFlow,
    FlowStatus,
    OAuthFlowCompleted,
    Provider,
    StartOAuthFlow,
)

_NOT_OAUTH = ErrorInfo.of(ErrorCode.NOT_CONFIGURED).saying(
    "This agent's mailbox signs in with a password: there is nothing to authorize.",
    "Save a Microsoft or Google configuration to sign in with OAuth.",
)


async def begin_authorization(
    agent_id: str,
    body: AuthorizeIn,
    ui_origin: str,
    *,
    repo: ConfigRepository,
    principal: Principal,
    broker: OAuthBroker,
) -> AuthorizationBegun:
    """A flow for the agent's saved Microsoft or Google config, reporting to ``ui_origin``."""
    config = await load_configured(agent_id, repo, principal)
    if config.provider is Provider.IMAP:
        raise MailbridgeError.explained(_NOT_OAUTH)
    request = BeginOAuthFlow(
        agent_id=agent_id,
        provider=config.provider,
        ui_origin=ui_origin,
        reauthorize=body.reauthorize,
        scopes=sign_in_scopes(config, body.scopes),
    )
    begun = await broker.begin(request)
    if begun.error is not None:
        raise _refusal(begun.error)
    return AuthorizationBegun.of(begun)


def _refusal(error: ErrorInfo) -> MailbridgeError:
    """The broker's refusal as it said it; a service behind it that did not answer (our own
    policy, asked for the org's app) is a 503 like the broker not answering."""
    if error.code is ErrorCode.WORKER_UNAVAILABLE:
        return ServiceUnavailable(error)
    return MailbridgeError.explained(error)


async def start_flow(flow_id: str, browser_binding: str, *, broker: OAuthBroker) -> str:
    """Bind the flow to the popup's browser: the provider's authorization URL to redirect to."""
    if not is_flow_id(flow_id):
        raise MailbridgeError.explained(UNKNOWN_FLOW)
    started = await broker.start(StartOAuthFlow(flow_id=flow_id, browser_binding=browser_binding))
    if started.redirect_url is None:
        raise MailbridgeError.explained(started.error or UNKNOWN_FLOW)
    return started.redirect_url


async def complete_flow(
    redirect: ProviderRedirect, cookies: Mapping[str, str], *, broker: OAuthBroker
) -> OAuthFlowCompleted:
    """Finish the flow the redirect's state names, with the binding cookie of this browser
    (none: the broker answers "another browser")."""
    flow_id = redirect.flow_id
    if flow_id is None:  # no state, or not one of ours: no flow to ask about
        return OAuthFlowCompleted(flow_id="", status=FlowStatus.FAILED, error=UNKNOWN_FLOW)
    request = CompleteOAuthFlow(
        flow_id=flow_id,
        code=redirect.code,
        state=redirect.state or "",
        browser_binding=cookies.get(cookie_name(flow_id), ""),
        error=redirect.error,
        error_description=redirect.error_description,
        iss=redirect.iss,
    )
    return await broker.complete(request)


async def get_flow(
    flow_id: str, *, repo: ConfigRepository, principal: Principal, broker: OAuthBroker
) -> FlowView:
    """The flow, if its agent is one the caller may see; another org's (or another agent's, for
    an Email tab session) is answered like none."""
    view = await broker.flow(flow_id)
    org_id = await repo.agent_org(view.agent_id) if view.agent_id else None
    if org_id is None or not principal.can_access(org_id, view.agent_id):
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"No sign-in {flow_id!r}.")
    return FlowView.of(view)
