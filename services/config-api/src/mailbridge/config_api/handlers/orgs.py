"""config-api's org use cases: ``/bridge/orgs/…`` forwarded to policy, which alone stores them, and
what an agent's config page shows of them (the org OAuth app and client org banners).

An org key reaches only its own org; another org's documents are answered exactly like missing ones
(404, never 403). Policy's own refusals keep their code, message and hint.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import AgentIn, EmailConfigView, StoredConfig
from mailbridge.config_api.domain.errors import PolicyUnavailable
from mailbridge.config_api.ports import PolicyService
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    ClientOrgIn,
    ClientOrgView,
    DeleteClientOrg,
    DeleteOrgConfig,
    GetClientOrg,
    GetEffectivePolicy,
    GetOrgConfig,
    OrgEmailConfigIn,
    OrgEmailConfigView,
    PolicyDocumentReply,
    Provider,
    PutClientOrg,
    PutOrgConfig,
)

log = logging.getLogger(__name__)

OAUTH_PROVIDERS = (Provider.MICROSOFT, Provider.GOOGLE)
DocumentT = TypeVar("DocumentT", OrgEmailConfigView, ClientOrgView)
_NOUN_OF: dict[type, str] = {OrgEmailConfigView: "org", ClientOrgView: "client org"}  # in a 404


async def get_org_config(
    org_id: str, *, principal: Principal, policy: PolicyService
) -> OrgEmailConfigView:
    """The org's shared OAuth apps; an org without any answers with both providers null."""
    _check_org(org_id, principal)
    reply = await policy.document(GetOrgConfig(org_id=org_id))
    if reply.document is None and _is_not_found(reply):
        return OrgEmailConfigView(org_id=org_id)
    return _document_of(reply, OrgEmailConfigView, org_id)


async def put_org_config(
    org_id: str, body: OrgEmailConfigIn, *, principal: Principal, policy: PolicyService
) -> OrgEmailConfigView:
    """Store the org's apps; the secrets travel in this rpc only and are never shown back."""
    _check_org(org_id, principal)
    reply = await policy.document(PutOrgConfig(org_id=org_id, body=body))
    return _document_of(reply, OrgEmailConfigView, org_id)


async def delete_org_config(org_id: str, *, principal: Principal, policy: PolicyService) -> None:
    """Remove the org's apps (nothing stored is already removed); agents inheriting lose them."""
    _check_org(org_id, principal)
    reply = await policy.document(DeleteOrgConfig(org_id=org_id))
    if not _is_not_found(reply):
        _raise_refusal(reply, "org", org_id)


async def get_client_org(
    org_id: str, client_org_id: str, *, principal: Principal, policy: PolicyService
) -> ClientOrgView:
    _check_client_org(org_id, client_org_id, principal)
    reply = await policy.document(GetClientOrg(org_id=org_id, client_org_id=client_org_id))
    return _document_of(reply, ClientOrgView, client_org_id)


async def put_client_org(
    org_id: str,
    client_org_id: str,
    body: ClientOrgIn,
    *,
    principal: Principal,
    policy: PolicyService,
) -> ClientOrgView:
    _check_client_org(org_id, client_org_id, principal)
    reply = await policy.document(
        PutClientOrg(org_id=org_id, client_org_id=client_org_id, body=body)
    )
    return _document_of(reply, ClientOrgView, client_org_id)


async def delete_client_org(
    org_id: str, client_org_id: str, *, principal: Principal, policy: PolicyService
) -> None:
    _check_client_org(org_id, client_org_id, principal)
    reply = await policy.document(DeleteClientOrg(org_id=org_id, client_org_id=client_org_id))
    _raise_refusal(reply, "client org", client_org_id)


def _check_org(org_id: str, principal: Principal) -> None:
    if not principal.can_access(org_id):
        raise _not_found("org", org_id)


def _check_client_org(org_id: str, client_org_id: str, principal: Principal) -> None:
    if not principal.can_access(org_id):  # the same answer as a client org that does not exist
        raise _not_found("client org", client_org_id)


def _not_found(kind: str, document_id: str) -> MailbridgeError:
    return MailbridgeError(ErrorCode.NOT_FOUND, f"No {kind} {document_id!r}.")


def _is_not_found(reply: PolicyDocumentReply) -> bool:
    return reply.error is not None and reply.error.code is ErrorCode.NOT_FOUND


def _raise_refusal(reply: PolicyDocumentReply, noun: str, document_id: str) -> None:
    """Policy's error raised: ``not_found`` in our own words (so another org's document and a
    missing one read the same), any other as policy explained it."""
    if _is_not_found(reply):
        raise _not_found(noun, document_id)
    if reply.error is not None:
        raise MailbridgeError.explained(reply.error)


def _document_of(reply: PolicyDocumentReply, kind: type[DocumentT], document_id: str) -> DocumentT:
    """The reply's document, which must be of the kind asked for, or policy's error raised."""
    _raise_refusal(reply, _NOUN_OF[kind], document_id)
    if not isinstance(reply.document, kind):
        raise MailbridgeError(ErrorCode.INTERNAL, f"policy answered without a {kind.__name__}")
    return reply.document


async def with_banners(
    view: EmailConfigView, agent: AgentIn, config: StoredConfig | None, *, policy: PolicyService
) -> EmailConfigView:
    """The org OAuth app and client org banners; without them, and a warning in the log, when
    policy does not answer quickly: an agent's page must not break because policy is down."""
    if agent.client_org_id is None and (config is None or config.provider not in OAUTH_PROVIDERS):
        return view  # nothing to show: no request (an IMAP agent's read stays one query)
    request = _effective_request(view.agent_id, agent, config)
    try:
        effective = await policy.effective(request)
        if effective.error is None:
            return view.with_policy(effective)
        reason: object = effective.error.message
    except (PolicyUnavailable, ValueError) as exc:  # ValueError: banners that do not validate
        reason = exc
    log.warning("the config of %s is shown without banners: %s", view.agent_id, reason)
    return view


def _effective_request(
    agent_id: str, agent: AgentIn, config: StoredConfig | None
) -> GetEffectivePolicy:
    return GetEffectivePolicy(
        agent_id=agent_id,
        org_id=agent.org_id,
        client_org_id=agent.client_org_id,
        provider=config.provider if config else None,
        agent_client_id=config.settings.get("client_id") if config else None,
        email=config.email if config else None,
    )


async def require_org_app(
    agent_id: str, agent: AgentIn, provider: Provider, *, policy: PolicyService
) -> None:
    """A config without an app of its own needs the org's shared app for its provider."""
    request = GetEffectivePolicy(
        agent_id=agent_id, org_id=agent.org_id, client_org_id=agent.client_org_id, provider=provider
    )
    effective = await policy.effective(request)  # PolicyUnavailable: 503, the save can't be checked
    if effective.error is not None:
        raise MailbridgeError.explained(effective.error)
    if effective.oauth_app is None:
        raise MailbridgeError.explained(_no_app(agent.org_id, provider))


def _no_app(org_id: str, provider: Provider) -> ErrorInfo:
    return ErrorInfo(
        code=ErrorCode.INVALID_INPUT,
        message=f"No {provider.value} OAuth app: the config has none and its org shares none.",
        hint="Enter the app's client id and secret, "
        f"or set an org-level app at /bridge/orgs/{org_id}/email-config.",
    )
