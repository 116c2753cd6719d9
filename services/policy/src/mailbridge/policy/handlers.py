"""policy's use cases, framework-free: org apps, client orgs, the effective policy, send checks.

A change hands its event to the store with the change (``events=[...]``), which writes both in one
transaction; the outbox relay publishes it. No handler publishes anything itself.
"""

from __future__ import annotations

import logging

from pydantic import SecretStr

from mailbridge.policy import handlers_approval as approval
from mailbridge.policy.domain import restrictions as rules
from mailbridge.policy.ports import (
    ClientOrgs,
    Contacts,
    OrgApps,
    SendHolds,
    SendQuota,
    StoredClientOrg,
    StoredOrgApp,
    org_app_row_id,
)
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import (
    ApproveSend,
    AuthorizeSend,
    ClientOrgBanner,
    ClientOrgChanged,
    ClientOrgView,
    EffectivePolicy,
    GetEffectivePolicy,
    GoogleAppIn,
    MessageSendFailed,
    MicrosoftAppIn,
    OrgAppBanner,
    OrgChanged,
    OrgEmailConfigView,
    OrgOAuthApp,
    PolicyDocumentReply,
    Provider,
    PutClientOrg,
    PutOrgConfig,
    SendAuthorization,
    SendOutcome,
)
from mailbridge.shared.messages.policy import ClientOrgRequest

log = logging.getLogger(__name__)


# Org OAuth apps -------------------------------------------------------------------------------


async def get_org_config(org_id: str, *, apps: OrgApps) -> PolicyDocumentReply:
    return PolicyDocumentReply(document=_org_view(org_id, await apps.of_org(org_id)))


async def put_org_config(
    request: PutOrgConfig, *, apps: OrgApps, sealer: Sealer
) -> PolicyDocumentReply:
    """Store the org's apps as given; an omitted secret keeps the stored one."""
    stored = {app.provider: app for app in await apps.of_org(request.org_id)}
    wanted = [(Provider.MICROSOFT, request.body.microsoft), (Provider.GOOGLE, request.body.google)]
    new_apps = []
    for provider, app_in in wanted:
        if app_in is None:
            continue
        app = _sealed_app(request.org_id, provider, app_in, stored.get(provider), sealer)
        if isinstance(app, ErrorInfo):
            return PolicyDocumentReply(error=app)
        new_apps.append(app)
    saved = await apps.replace(request.org_id, new_apps, events=[OrgChanged(org_id=request.org_id)])
    return PolicyDocumentReply(document=_org_view(request.org_id, saved))


async def delete_org_config(org_id: str, *, apps: OrgApps) -> None:
    """Remove the org's apps; ``OrgChanged`` only if it had any."""
    await apps.delete(org_id, events=[OrgChanged(org_id=org_id)])


def _sealed_app(
    org_id: str,
    provider: Provider,
    app_in: MicrosoftAppIn | GoogleAppIn,
    stored: StoredOrgApp | None,
    sealer: Sealer,
) -> StoredOrgApp | ErrorInfo:
    if app_in.client_secret is not None:
        secret = app_in.client_secret.get_secret_value()
        sealed = sealer.seal(secret, org_app_row_id(org_id, provider))
    elif stored is not None:
        sealed = stored.sealed_secret
    else:
        detail = f"A new {provider.value} app needs its client_secret."
        return ErrorInfo.of(ErrorCode.INVALID_INPUT, detail)
    tenant_id = app_in.tenant_id if isinstance(app_in, MicrosoftAppIn) else None
    return StoredOrgApp(org_id, provider, app_in.client_id, tenant_id, sealed)


def _org_view(org_id: str, apps: list[StoredOrgApp]) -> OrgEmailConfigView:
    shown = {
        app.provider.value: OrgOAuthApp(
            client_id=app.client_id,
            tenant_id=app.tenant_id,
            has_client_secret=bool(app.sealed_secret),
            updated_at=app.updated_at,
        )
        for app in apps
    }
    return OrgEmailConfigView(org_id=org_id, **shown)


# Client organizations -------------------------------------------------------------------------


async def get_client_org(
    request: ClientOrgRequest, *, client_orgs: ClientOrgs
) -> PolicyDocumentReply:
    found = await client_orgs.get(request.org_id, request.client_org_id)
    if found is None:
        return PolicyDocumentReply(error=ErrorInfo.of(ErrorCode.NOT_FOUND, "No such client org."))
    return PolicyDocumentReply(document=_client_org_view(found))


async def put_client_org(request: PutClientOrg, *, client_orgs: ClientOrgs) -> PolicyDocumentReply:
    body = request.body
    wanted = StoredClientOrg(
        request.org_id, request.client_org_id, body.name, body.email_domain, body.restrictions
    )
    saved = await client_orgs.put(wanted, events=[_client_org_changed(request)])
    return PolicyDocumentReply(document=_client_org_view(saved))


async def delete_client_org(
    request: ClientOrgRequest, *, client_orgs: ClientOrgs
) -> PolicyDocumentReply:
    """Remove the client org (``ClientOrgChanged`` with it), or answer ``not_found``."""
    deleted = await client_orgs.delete(
        request.org_id, request.client_org_id, events=[_client_org_changed(request)]
    )
    if not deleted:
        return PolicyDocumentReply(error=ErrorInfo.of(ErrorCode.NOT_FOUND, "No such client org."))
    return PolicyDocumentReply()


def _client_org_changed(request: ClientOrgRequest) -> ClientOrgChanged:
    return ClientOrgChanged(org_id=request.org_id, client_org_id=request.client_org_id)


def _client_org_view(client_org: StoredClientOrg) -> ClientOrgView:
    return ClientOrgView(
        org_id=client_org.org_id,
        client_org_id=client_org.client_org_id,
        name=client_org.name,
        email_domain=client_org.email_domain,
        restrictions=client_org.restrictions,
        warnings=rules.warnings(client_org.email_domain, client_org.restrictions),
        updated_at=client_org.updated_at,
    )


# What applies to one agent --------------------------------------------------------------------


async def effective_policy(
    request: GetEffectivePolicy, *, apps: OrgApps, client_orgs: ClientOrgs, sealer: Sealer
) -> EffectivePolicy:
    """The agent's OAuth app (its own, else the org's) and its client org's rules as banners."""
    client_org = await _client_org_of(request.org_id, request.client_org_id, client_orgs)
    reply = EffectivePolicy(agent_id=request.agent_id)
    if client_org is not None:
        banner = ClientOrgBanner(
            client_org_id=client_org.client_org_id,
            name=client_org.name,
            email_domain=client_org.email_domain,
            warnings=rules.warnings(client_org.email_domain, client_org.restrictions),
        )
        mismatch = rules.domain_warning(client_org.email_domain, request.email)
        reply = reply.model_copy(
            update={
                "client_org": banner,
                "email_domain": client_org.email_domain,
                "warnings": banner.warnings + mismatch,
            }
        )
    return await _with_oauth_app(reply, request, apps, sealer)


async def _with_oauth_app(
    reply: EffectivePolicy, request: GetEffectivePolicy, apps: OrgApps, sealer: Sealer
) -> EffectivePolicy:
    provider = request.provider
    if provider is None or provider is Provider.IMAP:
        return reply
    if request.agent_client_id:
        own = OrgAppBanner(provider=provider, client_id=request.agent_client_id, inherited=False)
        return reply.model_copy(update={"oauth_app": own})
    org_app = next((a for a in await apps.of_org(request.org_id) if a.provider is provider), None)
    if org_app is None:
        return reply
    banner = OrgAppBanner(
        provider=provider, client_id=org_app.client_id, tenant_id=org_app.tenant_id, inherited=True
    )
    update: dict[str, object] = {"oauth_app": banner}
    if request.include_secret:
        secret = sealer.open(org_app.sealed_secret, org_app_row_id(request.org_id, provider))
        update["oauth_client_secret"] = SecretStr(secret)
    return reply.model_copy(update=update)


async def _client_org_of(
    org_id: str, client_org_id: str | None, client_orgs: ClientOrgs
) -> StoredClientOrg | None:
    if client_org_id is None:
        return None
    return await client_orgs.get(org_id, client_org_id)


# Sending --------------------------------------------------------------------------------------


async def authorize_send(
    request: AuthorizeSend,
    *,
    client_orgs: ClientOrgs,
    quota: SendQuota,
    holds: SendHolds,
    contacts: Contacts,
) -> SendAuthorization:
    """Recipients, then the sender's domain, then approval (a held send reserves nothing), then
    the quota, which an allowed send reserves."""
    client_org = await governing_client_org(request, client_orgs)
    if client_org is not None and (refusal := _refusal(client_org, request)) is not None:
        return SendAuthorization(allowed=False, error=refusal)
    hold = await approval.send_hold(request, client_org, holds=holds, contacts=contacts)
    if hold is not None:
        return SendAuthorization(allowed=False, hold=hold)
    if client_org is None:
        return SendAuthorization(allowed=True)
    return await approval.reserved(request.agent_id, request.command_id, client_org, quota)


def _refusal(client_org: StoredClientOrg, request: AuthorizeSend) -> ErrorInfo | None:
    return rules.recipient_refusal(
        client_org.restrictions, request.recipients
    ) or rules.sender_refusal(client_org.email_domain, request.sender)


async def governing_client_org(
    request: AuthorizeSend | ApproveSend, client_orgs: ClientOrgs
) -> StoredClientOrg | None:
    """The client org whose rules a send follows; None: no rules but the agent's own."""
    if request.org_id is None:
        return None
    client_org = await _client_org_of(request.org_id, request.client_org_id, client_orgs)
    if client_org is None and request.client_org_id is not None:  # linked to a missing one
        log.warning(
            "agent %s names client org %s of %s, which does not exist: no restrictions",
            request.agent_id, request.client_org_id, request.org_id,
        )  # fmt: skip
    return client_org


async def release_after_failure(event: MessageSendFailed, *, quota: SendQuota) -> bool:
    """A send that failed for good gives its unit of quota back; ``unknown`` may have been sent.
    True when a reservation was released."""
    if event.outcome is not SendOutcome.FAILED:
        return False
    released = await quota.release(event.agent_id, event.command_id)
    if released:
        log.info("released the reservation of %s", event.command_id)
    return released
