"""What a client may save as an agent's email configuration, and what it is shown back.

The save body is a union discriminated by ``provider``. Secrets are write-only: an omitted secret
keeps the stored one, and the view says only ``has_password`` / ``has_client_secret``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, SecretStr, field_validator

from mailbridge.shared.messages import LastError, MailboxStatus, Provider

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class ServerSettings(BaseModel):
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


class ImapConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["imap"]
    email: EmailStr
    preset: str = "custom"
    imap: ServerSettings
    smtp: ServerSettings
    username: str | None = Field(default=None, max_length=320)
    password: SecretStr | None = Field(default=None, max_length=1024)


class MicrosoftConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["microsoft"]
    email: EmailStr | None = None
    client_id: str | None = Field(default=None, max_length=200)
    client_secret: SecretStr | None = Field(default=None, max_length=1024)
    tenant_id: str | None = Field(default=None, max_length=200)


class GoogleConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["google"]
    email: EmailStr | None = None
    client_id: str | None = Field(default=None, max_length=200)
    client_secret: SecretStr | None = Field(default=None, max_length=1024)


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

    @classmethod
    def of(
        cls, agent_id: str, config: StoredConfig | None, status: StatusRecord
    ) -> EmailConfigView:
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
            }
        )


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-:@+=]+$")
    client_org_id: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-:@+=]+$"
    )
    name: str | None = Field(default=None, max_length=200)


class AgentView(AgentIn):
    agent_id: str
