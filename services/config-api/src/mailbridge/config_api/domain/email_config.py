"""What a client may save as an agent's email configuration, and what it is shown back.

The save body is a union discriminated by ``provider``. Secrets are write-only: an omitted secret
keeps the stored one, and the view says only ``has_password`` / ``has_client_secret``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from mailbridge.config_api.domain.poll_backoff import PollState
from mailbridge.shared.messages import (
    ApprovalMode,
    ClientOrgBanner,
    EffectivePolicy,
    LastError,
    MailboxStatus,
    OrgAppBanner,
    Provider,
    ServerEndpoint,
)
from mailbridge.shared.plain_text import PlainTextModel
from mailbridge.shared.presets import BY_ID

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


# Text that is stored as it is: no NUL (PostgreSQL text and jsonb cannot hold it) nor another
# control character, which no name or user name has.
NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"


class ServerSettings(PlainTextModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(examples=["imap.fastmail.com"])
    port: int = Field(ge=1, le=65535, examples=[993])
    security: Literal["ssl", "starttls"]

    @field_validator("host")
    @classmethod
    def _is_hostname(cls, value: str) -> str:
        if not _HOSTNAME.match(value):
            raise ValueError("not a valid host name")
        return value.lower()


class ImapConfigIn(PlainTextModel):
    """Email + app password. With a ``preset`` the hosts may be omitted: the preset fills them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "provider": "imap",
                    "email": "support@fastmail.com",
                    "preset": "fastmail",
                    "password": "app-password",
                },
                {
                    "provider": "imap",
                    "email": "agent@example.com",
                    "preset": "custom",
                    "imap": {"host": "mail.example.com", "port": 993, "security": "ssl"},
                    "smtp": {"host": "mail.example.com", "port": 587, "security": "starttls"},
                    "password": "app-password",
                },
            ]
        },
    )

    provider: Literal["imap"]
    email: EmailStr
    preset: str = Field(default="custom", description="an id of GET /bridge/email-presets")
    imap: ServerSettings | None = None
    smtp: ServerSettings | None = None
    username: str | None = Field(
        default=None, max_length=320, pattern=NO_CONTROLS, description="defaults to email"
    )
    password: SecretStr | None = Field(
        default=None, max_length=1024, description="write-only; omitted keeps the stored one"
    )

    @model_validator(mode="after")
    def _resolve_preset(self) -> ImapConfigIn:
        preset = BY_ID.get(self.preset)
        if preset is None:
            raise ValueError(f"unknown preset {self.preset!r}; see GET /bridge/email-presets")
        self.imap = self.imap or _settings_of(preset.imap)
        self.smtp = self.smtp or _settings_of(preset.smtp)
        if self.imap is None or self.smtp is None:
            raise ValueError("a custom config needs both imap and smtp servers")
        return self


def _settings_of(endpoint: ServerEndpoint | None) -> ServerSettings | None:
    if endpoint is None:
        return None
    return ServerSettings.model_validate(endpoint.model_dump())


_OWN_APP = "the agent's own OAuth app; omit client_id, secret and tenant to use the org's app"
_SECRET = "write-only; omitted keeps the stored one"


def _own_app_is_whole(client_id: str | None, *details: object) -> None:
    """A secret or tenant belongs to the agent's own app, which then needs its client id."""
    if client_id is None and any(detail is not None for detail in details):
        raise ValueError("client_id is required with the app's client_secret or tenant_id")


class OAuthTransport(PlainTextModel):
    """How a Google or Microsoft mailbox is reached: through the provider's API, or over IMAP
    and SMTP logging in with XOAUTH2 (the servers default to the provider's own)."""

    mail_preset: ClassVar[str]

    transport: Literal["api", "imap"] = Field(
        default="api",
        description="`api`: the provider's mail API; `imap`: IMAP and SMTP with XOAUTH2",
    )
    imap: ServerSettings | None = Field(
        default=None, description="with transport imap; defaults to the provider's IMAP server"
    )
    smtp: ServerSettings | None = Field(
        default=None, description="with transport imap; defaults to the provider's SMTP server"
    )

    @model_validator(mode="after")
    def _servers_of_the_transport(self) -> Self:
        if self.transport == "api":
            if self.imap is not None or self.smtp is not None:
                raise ValueError("imap and smtp servers are for transport imap")
            return self
        preset = BY_ID[self.mail_preset]
        self.imap = self.imap or _settings_of(preset.imap)
        self.smtp = self.smtp or _settings_of(preset.smtp)
        return self


class MicrosoftConfigIn(OAuthTransport):
    mail_preset = "microsoft365"
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "provider": "microsoft",
                    "email": "support@contoso.com",
                    "client_id": "00000000-0000-0000-0000-000000000001",
                    "client_secret": "secret-value",
                    "tenant_id": "contoso.onmicrosoft.com",
                },
                {"provider": "microsoft", "email": "support@contoso.com"},
                {"provider": "microsoft", "email": "support@contoso.com", "transport": "imap"},
            ]
        },
    )

    provider: Literal["microsoft"]
    email: EmailStr | None = None
    client_id: str | None = Field(default=None, max_length=200, description=_OWN_APP)
    client_secret: SecretStr | None = Field(default=None, max_length=1024, description=_SECRET)
    tenant_id: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _whole_app(self) -> MicrosoftConfigIn:
        _own_app_is_whole(self.client_id, self.client_secret, self.tenant_id)
        return self


class GoogleConfigIn(OAuthTransport):
    mail_preset = "gmail"
    model_config = ConfigDict(extra="forbid")

    provider: Literal["google"]
    email: EmailStr | None = None
    client_id: str | None = Field(default=None, max_length=200, description=_OWN_APP)
    client_secret: SecretStr | None = Field(default=None, max_length=1024, description=_SECRET)

    @model_validator(mode="after")
    def _whole_app(self) -> GoogleConfigIn:
        _own_app_is_whole(self.client_id, self.client_secret)
        return self


EmailConfigIn = Annotated[
    ImapConfigIn | MicrosoftConfigIn | GoogleConfigIn, Field(discriminator="provider")
]


def public_settings(body: ImapConfigIn | MicrosoftConfigIn | GoogleConfigIn) -> dict[str, Any]:
    """Everything of a save body but the provider, the email and the secret."""
    secret_fields = {"provider", "email", "password", "client_secret"}
    return body.model_dump(mode="json", exclude=secret_fields, exclude_none=True)


def secret_of(body: ImapConfigIn | MicrosoftConfigIn | GoogleConfigIn) -> SecretStr | None:
    if isinstance(body, ImapConfigIn):
        return body.password
    return body.client_secret


_OUTLOOK = "https://outlook.office.com"
# what IMAP and SMTP accept a provider's token for (OAUTH-FACTS §2.7); Microsoft's are another
# resource than Graph's, consented at sign-in and minted by a refresh of their own
MAIL_SCOPES = {
    Provider.GOOGLE: ("https://mail.google.com/",),
    Provider.MICROSOFT: (f"{_OUTLOOK}/IMAP.AccessAsUser.All", f"{_OUTLOOK}/SMTP.Send"),
}


def over_imap(settings: dict[str, Any]) -> bool:
    """A stored Google or Microsoft config reached over IMAP and SMTP with XOAUTH2."""
    return settings.get("transport") == "imap"


def sign_in_scopes(config: StoredConfig, asked: list[str]) -> list[str]:
    """What a sign-in asks beyond the broker's own: a config over IMAP needs its provider's mail
    scopes, then whatever the caller asked for."""
    mail = MAIL_SCOPES.get(config.provider, ()) if over_imap(config.settings) else ()
    return list(dict.fromkeys([*mail, *asked]))


def inherits_org_app(body: ImapConfigIn | MicrosoftConfigIn | GoogleConfigIn) -> bool:
    """An OAuth config without an app of its own: its flows use the org's shared app."""
    return not isinstance(body, ImapConfigIn) and body.client_id is None


class StoredConfig(BaseModel):
    """A row of email_configs as the handlers see it (the secret still sealed)."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    provider: Provider
    email: str | None
    settings: dict[str, Any]
    sealed_secret: str | None
    version: int


class StatusRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: MailboxStatus = MailboxStatus.NOT_CONNECTED
    last_error: LastError | None = None
    last_test: dict[str, Any] | None = None
    poll: PollState = PollState()


class EmailConfigView(BaseModel):
    """``GET …/email-config``: the config without secrets, plus the badge and banner."""

    agent_id: str
    provider: Provider | None = None
    email: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    has_password: bool = False
    has_client_secret: bool = False
    version: int | None = None
    status: MailboxStatus
    last_error: LastError | None = None
    last_test: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    org_oauth_app: OrgAppBanner | None = Field(
        default=None,
        description="the OAuth app the agent's flows use: its own, or the org's (`inherited`)",
    )
    client_org: ClientOrgBanner | None = Field(
        default=None, description="the agent's client organization, its restrictions as warnings"
    )

    @classmethod
    def of(cls, agent_id: str, config: StoredConfig | None, status: StatusRecord) -> Self:
        view = cls(agent_id=agent_id, **status.model_dump())
        if config is None:
            return view
        has_secret = config.sealed_secret is not None
        return view.model_copy(
            update={
                "provider": config.provider,
                "email": config.email,
                "settings": config.settings,
                "version": config.version,
                "has_password": has_secret and config.provider is Provider.IMAP,
                "has_client_secret": has_secret and config.provider is not Provider.IMAP,
                "warnings": _warnings(config),
            }
        )

    def with_policy(self, effective: EffectivePolicy) -> EmailConfigView:
        """The banners of what policy says applies to the agent, its warnings after ours."""
        return self.model_copy(
            update={
                "org_oauth_app": effective.oauth_app,
                "client_org": effective.client_org,
                "warnings": list(dict.fromkeys([*self.warnings, *effective.warnings])),
            }
        )


def _warnings(config: StoredConfig) -> list[str]:
    preset = BY_ID.get(str(config.settings.get("preset", "")))
    return [preset.warning] if preset is not None and preset.warning else []


class AgentIn(PlainTextModel):
    model_config = ConfigDict(extra="forbid")

    org_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-:@+=]+$")
    client_org_id: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-:@+=]+$"
    )
    name: str | None = Field(default=None, max_length=200, pattern=NO_CONTROLS)
    approval: ApprovalMode | None = Field(
        default=None,
        description="which of this agent's sends wait for a person's approval (`off`,"
        " `first_contact`, `outside_domain`, `always`); null: its client org's `approval`",
    )


class AgentView(AgentIn):
    agent_id: str
