"""What oauth-broker's entrypoints may use: the handlers' dependencies (built in bootstrap.py)."""

from __future__ import annotations

from dataclasses import dataclass

from mailbridge.oauth_broker.handlers.flows import FlowDeps
from mailbridge.oauth_broker.handlers.tokens import TokenDeps


@dataclass(frozen=True)
class Container:
    flows: FlowDeps
    tokens: TokenDeps
