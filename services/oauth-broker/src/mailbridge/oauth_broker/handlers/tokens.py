"""Access tokens that stay fresh, refreshed once however many ask, and grants revoked.

A token valid for at least ``token_min_valid_seconds`` more is answered from storage. Otherwise
one refresh runs per (agent, resource) in this process, and across replicas the grant's row lock
(``GrantStore.locked``) lets one replica refresh while the others wait, read again, and find the
fresh token. Refresh failures are classified on the provider's ``error``: invalid_grant ends the
grant until a new authorization; invalid_client cools down for a minute (the app's owner may be
fixing it); 429, 5xx and network errors are retried with backoff and change nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from pydantic import SecretStr

from mailbridge.oauth_broker.adapters.postgres import Grant, LockedGrant
from mailbridge.oauth_broker.domain import scopes
from mailbridge.oauth_broker.domain.providers import profile_for
from mailbridge.oauth_broker.domain.token_errors import Failure, TokenEndpointError
from mailbridge.oauth_broker.domain.tokens import TokenResponse
from mailbridge.oauth_broker.ports import (
    AppSource,
    AuthorizationServers,
    GrantStore,
    RefreshOutcomes,
)
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.shared.clock import Clock
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    AccessTokenReply,
    GetAccessToken,
    GrantRefreshFailed,
    GrantRevocationReply,
    GrantRevoked,
    Provider,
    RevokeGrant,
    TokenResource,
)

log = logging.getLogger(__name__)
MISCONFIGURED_COOL_DOWN = timedelta(seconds=60)
TRANSIENT_TRIES = 3
FIRST_RETRY_DELAY = 0.5


@dataclass
class TokenDeps:
    grants: GrantStore
    apps: AppSource
    servers: AuthorizationServers
    clock: Clock
    settings: OAuthBrokerSettings
    outcomes: RefreshOutcomes | None = None  # the service's metrics; tests may leave them out
    in_flight: dict[tuple[str, TokenResource], asyncio.Future[AccessTokenReply]] = field(
        default_factory=dict
    )


async def access_token(request: GetAccessToken, d: TokenDeps) -> AccessTokenReply:
    grant = await d.grants.get(request.agent_id)
    if grant is None:
        return AccessTokenReply(error=ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED))
    if grant.dead is not None:
        return AccessTokenReply(error=grant.dead)
    if _lacks_google_mail(grant, request.resource):
        return AccessTokenReply(error=_no_google_mail_scope())
    resource = _token_resource(grant, request.resource)
    refused = request.refused.get_secret_value() if request.refused is not None else None
    grant = without_refused(grant, resource, refused)
    if (fresh := _fresh(grant, resource, d)) is not None:
        return fresh
    return await _single_flight(request.agent_id, resource, d, refused)


def _token_resource(grant: Grant, resource: TokenResource) -> TokenResource:
    """Google has one token for its API and for IMAP/SMTP: a mail token is the API token."""
    return TokenResource.API if grant.provider is Provider.GOOGLE else resource


def _lacks_google_mail(grant: Grant, resource: TokenResource) -> bool:
    """A Google grant without ``https://mail.google.com/`` cannot log in to IMAP or SMTP."""
    if grant.provider is not Provider.GOOGLE or resource is not TokenResource.MAIL:
        return False
    return bool(scopes.missing([scopes.GOOGLE_MAIL], grant.scopes))


def _no_google_mail_scope() -> ErrorInfo:
    return ErrorInfo.of(ErrorCode.OAUTH_SCOPE_MISSING).saying(
        f"The Google grant does not include IMAP and SMTP ({scopes.GOOGLE_MAIL}).",
        "Re-authorize: the sign-in of a config over IMAP asks for full mail access.",
    )


def without_refused(grant: Grant, resource: TokenResource, refused: str | None) -> Grant:
    """The grant as if it held no token for ``resource`` when the one it holds is the token the
    provider refused: that token is refreshed, never answered again. A refusal of an older token
    leaves the grant as it is, so its caller gets the current token and nothing is refreshed: of
    fifty callers refused the same token, the first refreshes and the rest find the new one."""
    token = grant.tokens.access.get(resource)
    if refused is None or token is None or token.token != refused:
        return grant
    access = {kind: held for kind, held in grant.tokens.access.items() if kind is not resource}
    return replace(grant, tokens=grant.tokens.model_copy(update={"access": access}))


def _fresh(grant: Grant, resource: TokenResource, d: TokenDeps) -> AccessTokenReply | None:
    token = grant.tokens.access.get(resource)
    if token is None or not token.valid_for(d.settings.token_min_valid_seconds, d.clock.now()):
        return None
    return _reply(grant, resource)


def _reply(grant: Grant, resource: TokenResource) -> AccessTokenReply:
    token = grant.tokens.access[resource]
    return AccessTokenReply(
        access_token=SecretStr(token.token),
        expires_at=token.expires_at,
        email=grant.email,
        provider=grant.provider,
        scopes=grant.scopes,
    )


async def _single_flight(
    agent_id: str, resource: TokenResource, d: TokenDeps, refused: str | None
) -> AccessTokenReply:
    """Callers joining a running refresh get its token: it is a new one, whichever was refused."""
    key = (agent_id, resource)
    running = d.in_flight.get(key)
    if running is None:
        running = asyncio.ensure_future(refresh(agent_id, resource, d, refused=refused))
        d.in_flight[key] = running
        running.add_done_callback(lambda _: d.in_flight.pop(key, None))
    return await asyncio.shield(running)


async def refresh(
    agent_id: str,
    resource: TokenResource,
    d: TokenDeps,
    *,
    force: bool = False,
    refused: str | None = None,
) -> AccessTokenReply:
    """Refresh under the grant's lock, unless another replica did while this one waited (the
    grant read under the lock still holds the ``refused`` token only if none did)."""
    try:
        async with d.grants.locked(agent_id) as locked:
            return await _refreshed(locked, resource, d, force=force, refused=refused)
    except MailbridgeError as exc:  # config-api could not say which app; the lock timed out
        return AccessTokenReply(error=exc.info())


async def _refreshed(
    locked: LockedGrant, resource: TokenResource, d: TokenDeps, *, force: bool, refused: str | None
) -> AccessTokenReply:
    if locked.grant is None:
        return AccessTokenReply(error=ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED))
    if locked.grant.dead is not None:
        return AccessTokenReply(error=locked.grant.dead)
    grant = without_refused(locked.grant, resource, refused)
    if not force and (fresh := _fresh(grant, resource, d)) is not None:
        return fresh  # another replica refreshed while this one waited for the lock
    if grant.retry_after is not None and d.clock.now() < grant.retry_after:
        return _still_usable(grant, resource, d) or _cooling_down()
    if grant.tokens.refresh_token is None:
        return AccessTokenReply(error=ErrorInfo.of(ErrorCode.OAUTH_TOKEN_REVOKED))
    try:
        response = await _call_token_endpoint(grant, resource, d)
    except TokenEndpointError as exc:
        _count(d, grant, exc.failure.value)
        return await _failed(locked, grant, resource, exc, d)
    _count(d, grant, "refreshed")
    now = d.clock.now()
    tokens = grant.tokens.with_response(resource, response, now)
    await locked.save_tokens(tokens, now)  # the rotated refresh token, before the lock goes
    return _reply(replace(grant, tokens=tokens), resource)


def _count(d: TokenDeps, grant: Grant, outcome: str) -> None:
    if d.outcomes is not None:
        d.outcomes.refresh_ended(grant.provider, outcome)


async def _call_token_endpoint(
    grant: Grant, resource: TokenResource, d: TokenDeps
) -> TokenResponse:
    app = (await d.apps.app_of(grant.agent_id)).app
    if app is None:
        raise MailbridgeError(ErrorCode.NOT_CONFIGURED)
    profile = profile_for(app, d.settings)
    refresh_token = grant.tokens.refresh_token or ""
    scope = profile.refresh_scope(resource)
    return await _with_backoff(
        lambda: d.servers.refresh(profile, app, refresh_token=refresh_token, scope=scope)
    )


async def _with_backoff(attempt: Callable[[], Awaitable[TokenResponse]]) -> TokenResponse:
    delay = FIRST_RETRY_DELAY
    for _ in range(TRANSIENT_TRIES - 1):
        try:
            return await attempt()
        except TokenEndpointError as exc:
            if exc.failure is not Failure.TRANSIENT:
                raise
            log.info("a token refresh failed transiently, retrying in %.1fs: %s", delay, exc.info)
        await asyncio.sleep(delay)
        delay *= 2
    return await attempt()


async def _failed(
    locked: LockedGrant,
    grant: Grant,
    resource: TokenResource,
    exc: TokenEndpointError,
    d: TokenDeps,
) -> AccessTokenReply:
    event = GrantRefreshFailed(agent_id=grant.agent_id, provider=grant.provider, error=exc.info)
    if exc.consent_missing and _another_resource(grant, resource):
        return AccessTokenReply(error=_not_consented_for_mail())
    if exc.failure is Failure.REVOKED:
        await locked.mark_dead(exc.info, [event])
        return AccessTokenReply(error=exc.info)
    if exc.failure is Failure.MISCONFIGURED:
        await locked.cool_down(d.clock.now() + MISCONFIGURED_COOL_DOWN, [event])
        return AccessTokenReply(error=exc.info)
    return _still_usable(grant, resource, d) or AccessTokenReply(error=exc.info)


def _another_resource(grant: Grant, resource: TokenResource) -> bool:
    """A Microsoft token for IMAP/SMTP is for another resource than the one the grant was
    authorized for: its refusal for want of consent (AADSTS65001) says nothing of the grant,
    which keeps working for Graph; any other invalid_grant (revoked, expired) is the grant's.
    Google has one token for both, so its refusal is the grant's."""
    return grant.provider is Provider.MICROSOFT and resource is not TokenResource.API


def _not_consented_for_mail() -> ErrorInfo:
    return ErrorInfo.of(ErrorCode.OAUTH_SCOPE_MISSING).saying(
        "Microsoft refused a token for IMAP and SMTP: no consent for outlook.office.com.",
        "Add IMAP.AccessAsUser.All and SMTP.Send to the app's API permissions, then Re-authorize.",
    )


def _still_usable(grant: Grant, resource: TokenResource, d: TokenDeps) -> AccessTokenReply | None:
    """A token not yet expired, though within the margin: better than none while the provider
    has a blip."""
    token = grant.tokens.access.get(resource)
    if token is None or not token.valid_for(0, d.clock.now()):
        return None
    return _reply(grant, resource)


def _cooling_down() -> AccessTokenReply:
    return AccessTokenReply(
        error=ErrorInfo.of(ErrorCode.OAUTH_APP_MISCONFIGURED).saying(
            "The provider refused the OAuth app a moment ago; retrying shortly."
        )
    )


async def revoke(request: RevokeGrant, d: TokenDeps) -> GrantRevocationReply:
    """Disconnect: Google revokes the grant; Microsoft has no per-grant revocation, so its tokens
    are erased. Either way the grant is gone and ``evt.oauth.grant.revoked`` says so."""
    async with d.grants.locked(request.agent_id) as locked:
        grant = locked.grant
        if grant is None:
            return GrantRevocationReply(revoked=True, note="There was no grant to revoke.")
        at_provider, note = await _revoked_at_provider(grant, d)
        await locked.delete([GrantRevoked(agent_id=grant.agent_id, provider=grant.provider)])
    return GrantRevocationReply(revoked=True, revoked_at_provider=at_provider, note=note)


async def _revoked_at_provider(grant: Grant, d: TokenDeps) -> tuple[bool, str]:
    if grant.provider is Provider.MICROSOFT:
        return False, "Microsoft has no per-grant revocation: the tokens were erased."
    token = grant.tokens.refresh_token or next(
        (access.token for access in grant.tokens.access.values()), ""
    )
    if await d.servers.revoke(d.settings.google_revocation_url, token):
        return True, "Revoked at Google."
    return False, (
        "Google could not be reached to revoke the grant; the tokens were erased. "
        "Remove the app at https://myaccount.google.com/permissions to revoke it there."
    )


async def refresh_idle(d: TokenDeps) -> int:
    """Refresh grants unused long enough to come near a provider's inactivity limit."""
    before = d.clock.now() - timedelta(hours=d.settings.idle_refresh_after_hours)
    agent_ids = await d.grants.idle(before)
    for agent_id in agent_ids:
        reply = await refresh(agent_id, TokenResource.API, d, force=True)
        if reply.error is not None:
            log.warning("the idle grant of %s was not refreshed: %s", agent_id, reply.error.code)
    return len(agent_ids)
