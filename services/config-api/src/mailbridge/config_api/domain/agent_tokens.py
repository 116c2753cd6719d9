"""Agent tokens, as pure rules: what an AI agent itself holds to use its one mailbox.

A token reads ``mbat_<token_id>_<secret>``: 16 hex digits find the row, the secret (256 random
bits, URL-safe) is checked against its SHA-256, as an API key's is. A token's principal is scoped
to its agent (``Principal.agent_id``), so every handler's ``load_agent`` answers another agent 404;
the routes that take a token at all are the agent's reads, its sends and ``/mcp``
(``entrypoints/auth.py``); any other route refuses it with 403.

Parsing is strict (the exact shape, nothing else), so any text is a token or nothing, and only a
well-formed id ever reaches the database.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailbridge.config_api.domain.api_keys import Principal, hash_secret
from mailbridge.shared.errors import ErrorCode, ErrorInfo

PREFIX = "mbat"
PRINCIPAL_PREFIX = "agent-token:"  # a principal's key_id: told apart from API keys and sessions
_SHAPE = re.compile(r"mbat_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})")
TOKEN_ID_PATTERN = r"^[0-9a-f]{16}$"

OUT_OF_SCOPE = ErrorInfo.of(ErrorCode.UNAUTHORIZED).saying(
    "An agent token reaches only its agent's mail, its sends and /mcp.",
    "Use an API key of the agent's org for anything else.",
)
NOT_AN_AGENT_TOKEN = ErrorInfo.of(ErrorCode.UNAUTHORIZED).saying(
    "/mcp takes an agent token, not an API key.",
    "Create one with POST /bridge/agents/{agent_id}/agent-tokens and send it as "
    "`Authorization: Bearer mbat_…`.",
)


@dataclass(frozen=True)
class StoredAgentToken:
    token_id: str
    agent_id: str
    org_id: str
    name: str | None
    secret_hash: str
    created_at: datetime
    revoked: bool

    @property
    def principal(self) -> Principal:
        """The agent's org, and that one agent only."""
        return Principal(f"{PRINCIPAL_PREFIX}{self.token_id}", self.org_id, agent_id=self.agent_id)


@dataclass(frozen=True)
class NewAgentToken:
    token_id: str
    token: str
    secret_hash: str


def new_token() -> NewAgentToken:
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return NewAgentToken(token_id, f"{PREFIX}_{token_id}_{secret}", hash_secret(secret))


def looks_like_agent_token(text: str) -> bool:
    """Whether a Bearer value is meant as an agent token (then never tried as an API key)."""
    return text.startswith(f"{PREFIX}_")


def parse(text: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token; None for any other text."""
    found = _SHAPE.fullmatch(text)
    return (found.group(1), found.group(2)) if found else None


def verify(stored: StoredAgentToken | None, secret: str) -> Principal | None:
    if stored is None or stored.revoked:
        return None
    if not hmac.compare_digest(stored.secret_hash, hash_secret(secret)):
        return None
    return stored.principal


def is_agent_token(principal: Principal) -> bool:
    return principal.key_id.startswith(PRINCIPAL_PREFIX)


class AgentTokenIn(BaseModel):
    """``POST …/agent-tokens``: an optional name, to tell one agent's tokens apart."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "claude"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)


class AgentTokenView(BaseModel):
    """A token as listed: never its value."""

    token_id: str
    agent_id: str
    name: str | None = None
    created_at: AwareDatetime

    @classmethod
    def of(cls, stored: StoredAgentToken) -> AgentTokenView:
        return cls(
            token_id=stored.token_id,
            agent_id=stored.agent_id,
            name=stored.name,
            created_at=stored.created_at,
        )


class AgentTokenCreated(AgentTokenView):
    """The new token, with its value: shown this once, stored only as a hash."""

    token: str = Field(description="`Authorization: Bearer <token>`; shown once, never again")


class AgentTokenList(BaseModel):
    tokens: list[AgentTokenView] = Field(description="the agent's live tokens, oldest first")
