"""An authorization flow: its one-time secrets, and the checks a provider's redirect must pass.

The state is ``{flow_id}.{256 random bits}`` (the flow id lets the callback find the flow's
cookie); only its hash is looked at when the redirect comes back. The PKCE verifier is random and
kept sealed, never derivable from the state; the flow is bound to the browser that opened it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from mailbridge.oauth_broker.domain.providers import ProviderProfile, issuer_matches
from mailbridge.oauth_broker.domain.token_errors import Failure, TokenEndpointError
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import CompleteOAuthFlow, FlowStatus, OAuthApp, Provider


class Stage(StrEnum):
    """A flow's stored status: the public ``FlowStatus`` plus ``completing`` (claimed by one
    callback; a second one with the same state is a replay)."""

    PENDING = "pending"
    COMPLETING = "completing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True)
class FlowSecrets:
    state: str
    verifier: str

    @property
    def code_challenge(self) -> str:
        challenge: str = create_s256_code_challenge(self.verifier)
        return challenge


@dataclass(frozen=True)
class Flow:
    flow_id: str
    agent_id: str
    provider: Provider
    app: OAuthApp  # without its secret
    issuer: str
    nonce: str
    scopes: list[str]
    required_scopes: list[str]
    expected_email: str | None
    ui_origin: str
    reauthorize: bool
    expires_at: datetime
    state_hash: str
    stage: Stage = Stage.PENDING
    binding_hash: str | None = None
    email: str | None = None
    error: ErrorInfo | None = None

    def public_status(self, now: datetime) -> FlowStatus:
        if self.stage in {Stage.PENDING, Stage.COMPLETING}:
            return FlowStatus.EXPIRED if now >= self.expires_at else FlowStatus.PENDING
        return FlowStatus(self.stage.value)


def new_secrets(flow_id: str) -> FlowSecrets:
    return FlowSecrets(
        state=f"{flow_id}.{secrets.token_urlsafe(32)}", verifier=secrets.token_urlsafe(48)
    )


def new_flow_id() -> str:
    return new_id("flow")


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same_digest(stored: str | None, value: str) -> bool:
    return stored is not None and hmac.compare_digest(stored, digest(value))


def refusal_before_claim(flow: Flow, request: CompleteOAuthFlow, now: datetime) -> ErrorInfo | None:
    """Why a redirect may not touch the flow at all: a replay, a forged or foreign state, a
    redirect from another browser. The flow stays as it is (the real one may still come)."""
    if not same_digest(flow.state_hash, request.state):
        return _refused("The sign-in response does not belong to this sign-in.")
    if flow.stage is not Stage.PENDING:
        return ALREADY_USED
    if not same_digest(flow.binding_hash, request.browser_binding):
        return _refused("The sign-in was started in another browser: start it again here.")
    if now >= flow.expires_at:
        return _expired()
    return None


def refusal_of_response(flow: Flow, request: CompleteOAuthFlow) -> tuple[Stage, ErrorInfo] | None:
    """Why the provider's answer ends the flow unsuccessfully: a foreign issuer (mix-up), the
    person cancelling, or any other error the provider sent back."""
    if request.iss is not None and not issuer_matches(flow.issuer, request.iss):
        return Stage.FAILED, _refused("The sign-in response came from another provider.")
    if request.error == "access_denied":
        cancelled = ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED).saying(
            "Sign-in was cancelled at the provider.", "Click Authorize and accept the permissions."
        )
        return Stage.CANCELLED, cancelled
    if request.error is not None:
        code = ErrorCode.OAUTH_APP_MISCONFIGURED if "client" in request.error else None
        info = ErrorInfo.of(code or ErrorCode.OAUTH_NOT_AUTHORIZED)
        return Stage.FAILED, info.saying(f"The provider refused the sign-in ({request.error}).")
    if request.code is None:
        return Stage.FAILED, _refused("The provider sent no authorization code.")
    return None


def code_refusal(exc: TokenEndpointError) -> ErrorInfo:
    """invalid_grant for a code is the code refused (used, expired, or another sign-in's — its
    verifier does not match), not a grant revoked: the person signs in again."""
    if exc.failure is Failure.REVOKED:
        return _refused("The provider refused the sign-in's authorization code.")
    return exc.info


def _refused(message: str) -> ErrorInfo:
    return ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED).saying(message, "Click Authorize again.")


def _expired() -> ErrorInfo:
    return _refused("The sign-in took longer than allowed and expired.")


EXPIRED = _expired()
ALREADY_USED = _refused("This sign-in response was already used.")


def authorization_request(
    flow: Flow, flow_secrets: FlowSecrets, profile: ProviderProfile, redirect_uri: str
) -> dict[str, str]:
    """The query of the redirect to the provider's authorization endpoint."""
    params = {
        "client_id": flow.app.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": " ".join(flow.scopes),
        "state": flow_secrets.state,
        "nonce": flow.nonce,
        "code_challenge": flow_secrets.code_challenge,
        "code_challenge_method": "S256",
        **profile.authorize_params,
    }
    if flow.expected_email:
        params["login_hint"] = flow.expected_email
    return params


def mailbox_mismatch(expected: str | None, signed_in: str) -> ErrorInfo | None:
    if expected is None or expected.casefold() == signed_in.casefold():
        return None
    return ErrorInfo.of(ErrorCode.MAILBOX_MISMATCH).saying(
        f"Signed in as {signed_in}, expected {expected}."
    )
