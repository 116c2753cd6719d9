"""A grant's tokens as the broker keeps them (sealed as one JSON document), and what a token
endpoint answered."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailbridge.shared.messages import TokenResource


class AccessToken(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: str
    expires_at: AwareDatetime

    def valid_for(self, seconds: float, now: datetime) -> bool:
        return self.expires_at - now >= timedelta(seconds=seconds)


class TokenSet(BaseModel):
    """Sealed with the agent id as associated data; never logged, never in a stream."""

    model_config = ConfigDict(frozen=True)

    refresh_token: str | None = None
    access: dict[TokenResource, AccessToken] = Field(default_factory=dict)

    def with_response(
        self, resource: TokenResource, response: TokenResponse, now: datetime
    ) -> TokenSet:
        """After a token endpoint answered: the new access token, and the new refresh token when
        one came (Microsoft rotates it on every use; Google usually sends none)."""
        access = {**self.access, resource: response.access_token_at(now)}
        return TokenSet(refresh_token=response.refresh_token or self.refresh_token, access=access)


class TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: str
    expires_in: int = 3600
    refresh_token: str | None = None
    scope: str | None = None
    id_token: str | None = None

    def access_token_at(self, now: datetime) -> AccessToken:
        return AccessToken(
            token=self.access_token, expires_at=now + timedelta(seconds=self.expires_in)
        )

    def granted(self, requested: list[str]) -> list[str]:
        """RFC 6749 §5.1: an omitted ``scope`` means the scope requested."""
        return self.scope.split() if self.scope is not None else list(requested)


def parsed_response(body: Any) -> TokenResponse:
    return TokenResponse.model_validate(body)
