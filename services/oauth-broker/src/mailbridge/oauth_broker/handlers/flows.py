"""Authorization flows: begun by config-api, started in the popup, completed by the callback."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from mailbridge.oauth_broker.adapters.postgres import Grant
from mailbridge.oauth_broker.adapters.provider import IdTokenError
from mailbridge.oauth_broker.domain import flows as rules
from mailbridge.oauth_broker.domain import scopes
from mailbridge.oauth_broker.domain.flows import Flow, FlowSecrets, Stage
from mailbridge.oauth_broker.domain.providers import ProviderProfile, profile_for
from mailbridge.oauth_broker.domain.token_errors import TokenEndpointError
from mailbridge.oauth_broker.domain.tokens import TokenResponse, TokenSet
from mailbridge.oauth_broker.ports import AppSource, AuthorizationServers, FlowStore, GrantStore
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.shared.clock import Clock
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    BeginOAuthFlow,
    CompleteOAuthFlow,
    FlowStatus,
    GrantAuthorized,
    OAuthApp,
    OAuthFlowBegun,
    OAuthFlowCompleted,
    OAuthFlowStarted,
    OAuthFlowView,
    StartOAuthFlow,
    TokenResource,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowDeps:
    flows: FlowStore
    grants: GrantStore
    apps: AppSource
    servers: AuthorizationServers
    clock: Clock
    settings: OAuthBrokerSettings


async def begin(request: BeginOAuthFlow, d: FlowDeps) -> OAuthFlowBegun:
    try:
        flow, flow_secrets = await _new_flow(request, d)
    except MailbridgeError as exc:
        return OAuthFlowBegun(error=exc.info())
    await d.flows.add(flow, flow_secrets)
    start = f"{d.settings.public_base_url.rstrip('/')}/api/engine/oauth/start?flow={flow.flow_id}"
    return OAuthFlowBegun(flow_id=flow.flow_id, authorization_url=start, expires_at=flow.expires_at)


async def _new_flow(request: BeginOAuthFlow, d: FlowDeps) -> tuple[Flow, FlowSecrets]:
    answer = await d.apps.app_of(request.agent_id)
    app = _usable(answer.app, request)
    profile = profile_for(app, d.settings)
    asked = scopes.union(profile.sign_in_scopes, request.scopes)
    flow_id = rules.new_flow_id()
    flow_secrets = rules.new_secrets(flow_id)
    flow = Flow(
        flow_id=flow_id,
        agent_id=request.agent_id,
        provider=app.provider,
        app=app.model_copy(update={"client_secret": None}),
        issuer=(await d.servers.discovery(profile)).issuer,
        nonce=rules.new_nonce(),
        scopes=asked,
        required_scopes=scopes.required(asked),
        expected_email=answer.expected_email,
        ui_origin=request.ui_origin,
        reauthorize=request.reauthorize,
        expires_at=d.clock.now() + timedelta(seconds=d.settings.flow_lifetime_seconds),
        state_hash=rules.digest(flow_secrets.state),
    )
    return flow, flow_secrets


def _usable(app: OAuthApp | None, request: BeginOAuthFlow) -> OAuthApp:
    if app is None or app.provider is not request.provider:
        raise MailbridgeError(
            ErrorCode.INVALID_INPUT, "The agent's config is for another provider."
        )
    if app.client_secret is None:
        raise MailbridgeError(ErrorCode.OAUTH_APP_MISCONFIGURED, "The OAuth app has no secret.")
    return app


async def start(request: StartOAuthFlow, d: FlowDeps) -> OAuthFlowStarted:
    binding = rules.digest(request.browser_binding.get_secret_value())
    bound = await d.flows.bind(request.flow_id, binding, d.clock.now())
    if bound is None:  # only now read why: a flow opened once needs one query
        flow = await d.flows.get(request.flow_id)
        why = _not_startable(flow, d.clock) if flow is not None else _unknown_flow()
        return OAuthFlowStarted(flow_id=request.flow_id, error=why)
    flow, flow_secrets = bound
    profile = profile_for(flow.app, d.settings)
    query = rules.authorization_request(flow, flow_secrets, profile, d.settings.callback_url)
    return OAuthFlowStarted(
        flow_id=flow.flow_id, redirect_url=f"{profile.authorization_url}?{urlencode(query)}"
    )


def _unknown_flow() -> ErrorInfo:
    return ErrorInfo.of(ErrorCode.NOT_FOUND).saying(
        "No such sign-in.", "Start again from the Email tab: click Authorize."
    )


def _not_startable(flow: Flow, clock: Clock) -> ErrorInfo:
    if flow.public_status(clock.now()) is FlowStatus.EXPIRED:
        return rules.EXPIRED
    return ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED).saying(
        "This sign-in was already opened in a browser.", "Click Authorize again."
    )


async def complete(request: CompleteOAuthFlow, d: FlowDeps) -> OAuthFlowCompleted:
    flow = await d.flows.get(request.flow_id)
    if flow is None:
        return OAuthFlowCompleted(flow_id=request.flow_id, status="failed", error=_unknown_flow())
    refused = rules.refusal_before_claim(flow, request, d.clock.now())
    flow_secrets = await d.flows.claim(flow.flow_id) if refused is None else None
    if flow_secrets is None:  # refused, or claimed by a concurrent callback: a replay
        return _answer(flow, FlowStatus.FAILED, error=refused or rules.ALREADY_USED)
    stage, error, email = await _finished(flow, flow_secrets, request, d)
    if stage is not Stage.COMPLETED:
        await d.flows.finish(flow.flow_id, stage, error=error)
    return _answer(flow, FlowStatus(stage.value), error=error, email=email)


def _answer(
    flow: Flow, status: FlowStatus, *, error: ErrorInfo | None = None, email: str | None = None
) -> OAuthFlowCompleted:
    return OAuthFlowCompleted(
        flow_id=flow.flow_id,
        agent_id=flow.agent_id,
        status=status.value,
        ui_origin=flow.ui_origin,
        email=email,
        error=error,
    )


async def _finished(
    flow: Flow, flow_secrets: FlowSecrets, request: CompleteOAuthFlow, d: FlowDeps
) -> tuple[Stage, ErrorInfo | None, str | None]:
    """Redeem the code, check what came back, keep the grant: the stage the flow ends in."""
    refused = rules.refusal_of_response(flow, request)
    if refused is not None:
        return refused[0], refused[1], None
    try:
        email = await _redeemed_and_kept(flow, flow_secrets, request, d)
    except MailbridgeError as exc:
        return Stage.FAILED, exc.info(), None
    except TokenEndpointError as exc:
        return Stage.FAILED, rules.code_refusal(exc), None
    return Stage.COMPLETED, None, email


async def _redeemed_and_kept(
    flow: Flow, flow_secrets: FlowSecrets, request: CompleteOAuthFlow, d: FlowDeps
) -> str:
    app = (await d.apps.app_of(flow.agent_id)).app or flow.app  # with its secret, as of now
    profile = profile_for(app, d.settings)
    code = request.code.get_secret_value() if request.code else ""
    response = await d.servers.exchange_code(
        profile,
        app,
        code=code,
        verifier=flow_secrets.verifier,
        redirect_uri=d.settings.callback_url,
    )
    email = await _confirmed_email(flow, profile, app, response, d)
    granted = response.granted(flow.scopes)
    if missing := scopes.missing(flow.required_scopes, granted):
        raise MailbridgeError(ErrorCode.OAUTH_SCOPE_MISSING, f"Not granted: {', '.join(missing)}.")
    await _keep(flow, response, granted, email, d)
    return email


async def _confirmed_email(
    flow: Flow, profile: ProviderProfile, app: OAuthApp, response: TokenResponse, d: FlowDeps
) -> str:
    if response.id_token is None:
        raise MailbridgeError(
            ErrorCode.OAUTH_SCOPE_MISSING, "The provider sent no id_token (openid)."
        )
    try:
        claims = await d.servers.verified_claims(
            profile, response.id_token, client_id=app.client_id, nonce=flow.nonce
        )
    except IdTokenError as exc:
        log.warning("an id_token of flow %s was refused: %s", flow.flow_id, exc)
        raise MailbridgeError(
            ErrorCode.OAUTH_NOT_AUTHORIZED, "The sign-in could not be verified."
        ) from exc
    email = str(claims.get("email") or claims.get("preferred_username") or "")
    if not email:
        raise MailbridgeError(
            ErrorCode.OAUTH_SCOPE_MISSING, "The id_token names no address (email)."
        )
    if (mismatch := rules.mailbox_mismatch(flow.expected_email, email)) is not None:
        raise MailbridgeError.explained(mismatch)
    return email


async def _keep(
    flow: Flow, response: TokenResponse, granted: list[str], email: str, d: FlowDeps
) -> None:
    """Replace the agent's grant; a re-authorization of the same mailbox that brings no refresh
    token keeps the old one (another mailbox's would sign the agent in as that mailbox)."""
    now = d.clock.now()
    previous = await d.grants.get(flow.agent_id)
    same_mailbox = previous is not None and previous.email.casefold() == email.casefold()
    kept_refresh = previous.tokens.refresh_token if previous is not None and same_mailbox else None
    tokens = TokenSet(refresh_token=kept_refresh).with_response(TokenResource.API, response, now)
    grant = Grant(
        agent_id=flow.agent_id,
        provider=flow.provider,
        email=email,
        client_id=flow.app.client_id,
        scopes=granted,
        tokens=tokens,
        dead=None,
        retry_after=None,
        refreshed_at=now,
    )
    event = GrantAuthorized(
        agent_id=flow.agent_id, provider=flow.provider, email=email, scopes=granted
    )
    await d.grants.authorize(grant, flow_id=flow.flow_id, email=email, events=[event])


async def view(flow_id: str, d: FlowDeps) -> OAuthFlowView:
    flow = await d.flows.get(flow_id)
    if flow is None:
        return OAuthFlowView(flow_id=flow_id)
    status = flow.public_status(d.clock.now())
    error = flow.error or (rules.EXPIRED if status is FlowStatus.EXPIRED else None)
    return OAuthFlowView(
        flow_id=flow.flow_id,
        agent_id=flow.agent_id,
        provider=flow.provider,
        status=status,
        email=flow.email,
        expires_at=flow.expires_at,
        error=error,
    )
