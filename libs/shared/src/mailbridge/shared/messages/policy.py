"""Messages and documents of the policy service: org OAuth apps, client orgs, send authorization.

The documents (``OrgEmailConfigIn`` / ``ClientOrgIn`` and their views) are what config-api serves at
``/bridge/orgs/…`` and forwards to policy, which alone stores them; both validate with these models.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from mailbridge.shared import subjects
from mailbridge.shared.addresses import AddressError, RecipientRule, normalized_domain
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages.approval import ApprovalMode, SendHold
from mailbridge.shared.messages.base import Event, Reply, Request, WireSecret
from mailbridge.shared.messages.config import Provider
from mailbridge.shared.plain_text import PlainTextModel

_TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,199}$"
_SECRET_DESCRIPTION = "write-only; omitted keeps the stored one (required for a new app)"


class MicrosoftAppIn(PlainTextModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=200, description="Application (client) ID")
    client_secret: WireSecret | None = Field(
        default=None, max_length=1024, description=_SECRET_DESCRIPTION
    )
    tenant_id: str = Field(
        pattern=_TENANT_PATTERN,
        description="common, organizations, consumers, a tenant GUID or a verified domain",
    )


class GoogleAppIn(PlainTextModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=200, description="OAuth client ID")
    client_secret: WireSecret | None = Field(
        default=None, max_length=1024, description=_SECRET_DESCRIPTION
    )


class OrgEmailConfigIn(PlainTextModel):
    """``PUT /bridge/orgs/{org_id}/email-config``: the shared apps; a provider left out is removed.

    An omitted ``client_secret`` keeps the stored one, as for an agent's own config."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "microsoft": {
                        "client_id": "00000000-0000-0000-0000-000000000001",
                        "client_secret": "secret-value",
                        "tenant_id": "contoso.onmicrosoft.com",
                    },
                    "google": {"client_id": "1234-abc.apps.googleusercontent.com"},
                }
            ]
        },
    )

    microsoft: MicrosoftAppIn | None = None
    google: GoogleAppIn | None = None


class OrgOAuthApp(BaseModel):
    """One stored org app as shown: never the secret, only whether there is one."""

    client_id: str
    tenant_id: str | None = None
    has_client_secret: bool
    updated_at: AwareDatetime | None = None


class OrgEmailConfigView(BaseModel):
    org_id: str
    microsoft: OrgOAuthApp | None = None
    google: OrgOAuthApp | None = None


class Restrictions(PlainTextModel):
    """What a client organization allows its agents; empty means unrestricted."""

    model_config = ConfigDict(extra="forbid")

    allowed_recipients: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="addresses (bob@acme.com), domains (acme.com) or subdomains (*.acme.com)",
    )
    max_per_hour: int | None = Field(
        default=None, ge=0, le=1_000_000, description="sends per agent in any 60 minutes"
    )
    max_per_day: int | None = Field(
        default=None, ge=0, le=10_000_000, description="sends per agent in any 24 hours"
    )
    approval: ApprovalMode = Field(
        default=ApprovalMode.OFF,
        description="which sends wait for a person's approval: `off`, `first_contact` (a"
        " recipient the agent never wrote to or heard from), `outside_domain` (a recipient"
        " outside `email_domain`), `always`; an agent's own `approval` overrides it",
    )

    @field_validator("allowed_recipients")
    @classmethod
    def _normalized_rules(cls, entries: list[str]) -> list[str]:
        try:
            rules = [RecipientRule.parse(entry).render() for entry in entries]
        except AddressError as exc:
            raise ValueError(str(exc)) from exc
        return list(dict.fromkeys(rules))


class ClientOrgIn(PlainTextModel):
    """``PUT /bridge/orgs/{org_id}/client-orgs/{client_org_id}``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme Corp",
                    "email_domain": "acme.com",
                    "restrictions": {
                        "allowed_recipients": ["acme.com", "*.acme-partners.com"],
                        "max_per_hour": 20,
                        "max_per_day": 50,
                    },
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\r\n\x00]+$")
    email_domain: str | None = Field(
        default=None, max_length=253, description="agents' From must be in it"
    )
    restrictions: Restrictions = Field(default_factory=Restrictions)

    @field_validator("email_domain")
    @classmethod
    def _normalized_domain(cls, domain: str | None) -> str | None:
        try:
            return normalized_domain(domain.lstrip("@")) if domain else None
        except AddressError as exc:
            raise ValueError(str(exc)) from exc


class ClientOrgView(BaseModel):
    org_id: str
    client_org_id: str
    name: str
    email_domain: str | None = None
    restrictions: Restrictions
    warnings: list[str] = Field(
        default_factory=list, description="each restriction as a line the UI shows"
    )
    updated_at: AwareDatetime | None = None


class OrgAppBanner(BaseModel):
    """The OAuth app an agent's flows use: its own, or the org's (``inherited``)."""

    provider: Provider
    client_id: str
    tenant_id: str | None = None
    inherited: bool


class ClientOrgBanner(BaseModel):
    client_org_id: str
    name: str
    email_domain: str | None = None
    warnings: list[str] = Field(default_factory=list)


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
    """What applies to one agent: its OAuth app (own or inherited) and its client org's rules."""

    subject_template = subjects.RPC_POLICY_EFFECTIVE_GET

    agent_id: str
    org_id: str
    client_org_id: str | None = None
    provider: Provider | None = None
    agent_client_id: str | None = None  # the agent's own app, when its config has one
    email: str | None = None  # the configured address, checked against the client org's domain
    include_secret: bool = False  # the oauth-broker's flows need it; banners never ask


class EffectivePolicy(Reply):
    agent_id: str
    oauth_app: OrgAppBanner | None = None
    oauth_client_secret: WireSecret | None = None  # only when asked, only for an inherited app
    email_domain: str | None = None
    client_org: ClientOrgBanner | None = None
    warnings: list[str] = Field(default_factory=list)
    error: ErrorInfo | None = None


class AuthorizeSend(Request):
    """Asked by the mail-worker before every send; an allowed send reserves one unit of quota."""

    subject_template = subjects.RPC_POLICY_SEND_AUTHORIZE

    agent_id: str
    command_id: str
    sender: str
    recipients: list[str]  # the envelope (RCPT TO) addresses, to, cc and bcc
    org_id: str | None = None
    client_org_id: str | None = None
    approval: ApprovalMode | None = None  # the agent's own mode; None: its client org's


class SendAuthorization(Reply):
    """``allowed`` (quota reserved), refused (``error``), held for approval (``hold``, not
    allowed, no error, nothing reserved), or, with ``retry_after_seconds``, not decided: policy
    could not read its rules (its database is away), so the send waits and asks again;
    ``error`` then says why. Never an allowed send that was not checked."""

    allowed: bool
    reservation_id: str | None = None
    error: ErrorInfo | None = None
    hold: SendHold | None = None
    retry_after_seconds: float | None = None

    @classmethod
    def retry_later(cls, error: ErrorInfo, retry_after_seconds: float) -> SendAuthorization:
        return cls(allowed=False, error=error, retry_after_seconds=retry_after_seconds)

    @property
    def undecided(self) -> bool:
        return self.retry_after_seconds is not None


class OrgRequest(Request):
    """Base of the gateway's org requests: ``rpc.policy.org.{get,put,delete}.v1.{org_id}``."""

    subject_key = "org_id"

    org_id: str


class GetOrgConfig(OrgRequest):
    subject_template = subjects.RPC_POLICY_ORG_GET


class PutOrgConfig(OrgRequest):
    subject_template = subjects.RPC_POLICY_ORG_PUT

    body: OrgEmailConfigIn  # its secrets in clear (WireSecret): a core NATS request, never stored


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

    body: ClientOrgIn


class DeleteClientOrg(ClientOrgRequest):
    subject_template = subjects.RPC_POLICY_CLIENT_ORG_DELETE


class PolicyDocumentReply(Reply):
    """The answer of every org / client-org request: the stored document or an error. An org
    request's document is an ``OrgEmailConfigView``, a client-org request's a ``ClientOrgView``
    (read back as the one whose fields it has: a client org's never reads as an org's)."""

    document: OrgEmailConfigView | ClientOrgView | None = None
    error: ErrorInfo | None = None


MAX_CONTACTS_ASKED = 100  # a read's batch of senders


class KnownContacts(Request):
    """Which of ``addresses`` the agent wrote to or heard from before (policy keeps the history
    for approval's first_contact rule): asked by the mail-worker to screen what it reads."""

    subject_template = subjects.RPC_POLICY_CONTACTS_KNOWN

    agent_id: str
    addresses: list[str] = Field(max_length=MAX_CONTACTS_ASKED)


class KnownContactsReply(Reply):
    known: list[str] = Field(default_factory=list, description="those of the addresses asked")
    error: ErrorInfo | None = None
