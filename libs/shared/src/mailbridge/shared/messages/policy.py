"""Events and requests of the policy service: org OAuth apps, client orgs, send authorization."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages.base import Event, Reply, Request


class OrgChanged(Event):
    subject_template = subjects.EVT_ORG_CHANGED
    subject_key = "org_id"

    org_id: str


class ClientOrgChanged(Event):
    subject_template = subjects.EVT_CLIENT_ORG_CHANGED
    subject_key = "client_org_id"

    org_id: str
    client_org_id: str


class GetEffectivePolicy(Request):
    subject_template = subjects.RPC_POLICY_EFFECTIVE_GET

    agent_id: str
    org_id: str
    client_org_id: str | None = None


class EffectivePolicy(Reply):
    agent_id: str
    oauth_app: dict[str, Any] | None = None
    email_domain: str | None = None
    warnings: list[str] = Field(default_factory=list)
    error: ErrorInfo | None = None


class AuthorizeSend(Request):
    subject_template = subjects.RPC_POLICY_SEND_AUTHORIZE

    agent_id: str
    command_id: str
    sender: str
    recipients: list[str]


class SendAuthorization(Reply):
    allowed: bool
    reservation_id: str | None = None
    error: ErrorInfo | None = None


class OrgRequest(Request):
    """Base of the gateway's org requests: ``rpc.policy.org.{get,put,delete}.v1.{org_id}``."""

    subject_key = "org_id"

    org_id: str


class GetOrgConfig(OrgRequest):
    subject_template = subjects.RPC_POLICY_ORG_GET


class PutOrgConfig(OrgRequest):
    subject_template = subjects.RPC_POLICY_ORG_PUT

    body: dict[str, Any]


class DeleteOrgConfig(OrgRequest):
    subject_template = subjects.RPC_POLICY_ORG_DELETE


class ClientOrgRequest(Request):
    subject_key = "client_org_id"

    org_id: str
    client_org_id: str


class GetClientOrg(ClientOrgRequest):
    subject_template = subjects.RPC_POLICY_CLIENT_ORG_GET


class PutClientOrg(ClientOrgRequest):
    subject_template = subjects.RPC_POLICY_CLIENT_ORG_PUT

    body: dict[str, Any]


class DeleteClientOrg(ClientOrgRequest):
    subject_template = subjects.RPC_POLICY_CLIENT_ORG_DELETE


class PolicyDocumentReply(Reply):
    """The answer of every org / client-org request: the stored document or an error."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    document: dict[str, Any] | None = None
    error: ErrorInfo | None = None
