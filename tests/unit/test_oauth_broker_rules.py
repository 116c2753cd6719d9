"""The oauth-broker's decisions, without a provider: what a token endpoint's failure means, which
scopes a grant lacks, and which provider redirects may finish a flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailbridge.oauth_broker.domain import flows as rules
from mailbridge.oauth_broker.domain import scopes
from mailbridge.oauth_broker.domain.flows import Flow, Stage
from mailbridge.oauth_broker.domain.providers import issuer_matches
from mailbridge.oauth_broker.domain.token_errors import Failure, classify
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import CompleteOAuthFlow, OAuthApp, Provider

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MICROSOFT_ERROR = {
    "error": "invalid_grant",
    "error_description": "AADSTS700082: The refresh token has expired due to inactivity.\r\n"
    "Trace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2026-12-02 12:00:00Z",
    "error_codes": [700082],
    "error_uri": "https://login.microsoftonline.com/error?code=700082",
}


@pytest.mark.parametrize(
    "description", ["Token has been expired or revoked.", "Bad Request", "invalid_client"]
)
def test_invalid_grant_means_reauthorize_whatever_the_description_says(description: str) -> None:
    error = classify(400, {"error": "invalid_grant", "error_description": description})
    assert error.failure is Failure.REVOKED
    assert error.info.code is ErrorCode.OAUTH_TOKEN_REVOKED
    assert error.info.hint == "Re-authorize."


def test_microsofts_inactivity_code_explains_the_revocation() -> None:
    error = classify(400, MICROSOFT_ERROR)
    assert error.failure is Failure.REVOKED
    assert "unused" in error.info.message


def test_an_expired_microsoft_client_secret_is_named_as_such() -> None:
    body = {
        "error": "invalid_client",
        "error_codes": [7000222],
        "error_description": "AADSTS7000222",
    }
    error = classify(401, body)
    assert error.failure is Failure.MISCONFIGURED
    assert error.info.code is ErrorCode.OAUTH_APP_MISCONFIGURED
    assert "expired" in error.info.message
    assert "Certificates & secrets" in error.info.hint


@pytest.mark.parametrize("error", ["invalid_client", "unauthorized_client"])
def test_a_refused_app_is_misconfigured_not_revoked(error: str) -> None:
    assert classify(401, {"error": error}).failure is Failure.MISCONFIGURED


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (429, {"error": "invalid_grant"}, ErrorCode.PROVIDER_THROTTLED),  # the status decides
        (503, None, ErrorCode.PROVIDER_UNAVAILABLE),
        (500, "<html>", ErrorCode.PROVIDER_UNAVAILABLE),
        (400, {"error": "temporarily_unavailable"}, ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
def test_throttling_and_outages_are_transient(status: int, body: object, code: ErrorCode) -> None:
    error = classify(status, body)
    assert (error.failure, error.info.code) == (Failure.TRANSIENT, code)


def test_granted_scopes_are_compared_as_microsoft_spells_them_back() -> None:
    asked = scopes.split("openid email profile offline_access User.Read Mail.ReadWrite Mail.Send")
    granted = (
        "https://graph.microsoft.com/mail.readwrite https://graph.microsoft.com/User.Read openid"
    )
    assert scopes.missing(scopes.required(asked), granted.split()) == ["Mail.Send"]


def test_google_answers_userinfo_scopes_for_the_openid_ones() -> None:
    asked = ["openid", "email", "https://www.googleapis.com/auth/gmail.modify"]
    granted = ["https://www.googleapis.com/auth/userinfo.email", "openid"]
    assert scopes.missing(scopes.required(asked), granted) == [asked[2]]
    assert scopes.union(asked, ["EMAIL", "https://mail.google.com/"]) == [
        *asked,
        "https://mail.google.com/",
    ]


@pytest.mark.parametrize(
    ("expected", "issuer", "matches"),
    [
        ("https://accounts.google.com", "https://accounts.google.com", True),
        ("https://accounts.google.com", "https://evil.example", False),
        ("https://login/{tenantid}/v2.0", "https://login/9188040d/v2.0", True),
        ("https://login/{tenantid}/v2.0", "https://login/a/b/v2.0", False),
        ("https://login/{tenantid}/v2.0", "https://login//v2.0", False),
    ],
)
def test_issuers_match_exactly_or_by_tenant(expected: str, issuer: str, matches: bool) -> None:
    assert issuer_matches(expected, issuer) is matches


def _flow(**changes: object) -> tuple[Flow, str, str]:
    flow_secrets = rules.new_secrets("flow_1")
    binding = "cookie-value"
    flow = Flow(
        flow_id="flow_1",
        agent_id="agent-1",
        provider=Provider.GOOGLE,
        app=OAuthApp(provider=Provider.GOOGLE, client_id="client"),
        issuer="https://accounts.google.com",
        nonce="nonce",
        scopes=["openid"],
        required_scopes=[],
        expected_email=None,
        ui_origin="https://ui.example",
        reauthorize=False,
        expires_at=NOW + timedelta(minutes=10),
        state_hash=rules.digest(flow_secrets.state),
        binding_hash=rules.digest(binding),
    )
    return Flow(**{**flow.__dict__, **changes}), flow_secrets.state, binding


def _redirect(state: str, binding: str, **query: str | None) -> CompleteOAuthFlow:
    return CompleteOAuthFlow(flow_id="flow_1", state=state, browser_binding=binding, **query)  # type: ignore[arg-type]


def test_the_state_holds_256_random_bits_after_the_flow_id() -> None:
    first, second = rules.new_secrets("flow_1"), rules.new_secrets("flow_1")
    assert first.state.startswith("flow_1.") and first.state != second.state
    assert len(first.state.split(".", 1)[1]) >= 43  # 32 bytes, base64url
    assert first.verifier not in first.state


def test_a_redirect_of_the_right_browser_in_time_may_complete() -> None:
    flow, state, binding = _flow()
    assert rules.refusal_before_claim(flow, _redirect(state, binding), NOW) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"stage": Stage.COMPLETING}, "already used"),
        ({"stage": Stage.COMPLETED}, "already used"),
        ({"binding_hash": rules.digest("another browser")}, "another browser"),
        ({"binding_hash": None}, "another browser"),
        ({"expires_at": NOW}, "expired"),
    ],
)
def test_replays_other_browsers_and_late_redirects_are_refused(
    change: dict[str, object], why: str
) -> None:
    flow, state, binding = _flow(**change)
    refusal = rules.refusal_before_claim(flow, _redirect(state, binding), NOW)
    assert refusal is not None and why in refusal.message


def test_a_state_of_another_flow_is_refused() -> None:
    flow, _, binding = _flow()
    refusal = rules.refusal_before_claim(flow, _redirect("flow_1.forged", binding), NOW)
    assert refusal is not None and "does not belong" in refusal.message


def test_an_issuer_other_than_the_flows_is_a_mix_up() -> None:
    flow, state, binding = _flow()
    refused = rules.refusal_of_response(flow, _redirect(state, binding, code="c", iss="https://x"))
    assert refused is not None and refused[0] is Stage.FAILED
    assert rules.refusal_of_response(flow, _redirect(state, binding, code="c")) is None
    good = _redirect(state, binding, code="c", iss="https://accounts.google.com")
    assert rules.refusal_of_response(flow, good) is None


def test_declining_at_the_provider_cancels() -> None:
    flow, state, binding = _flow()
    refused = rules.refusal_of_response(flow, _redirect(state, binding, error="access_denied"))
    assert refused is not None and refused[0] is Stage.CANCELLED


def test_a_different_mailbox_is_named_in_the_refusal() -> None:
    mismatch = rules.mailbox_mismatch("agent@example.com", "someone@example.com")
    assert mismatch is not None and mismatch.code is ErrorCode.MAILBOX_MISMATCH
    assert mismatch.message == "Signed in as someone@example.com, expected agent@example.com."
    assert rules.mailbox_mismatch("Agent@Example.com", "agent@example.com") is None


def test_a_refused_code_asks_to_sign_in_again_not_to_reauthorize_a_grant() -> None:
    refused = rules.code_refusal(classify(400, {"error": "invalid_grant", "error_codes": [54005]}))
    outage = classify(503, {})

    assert refused.code is ErrorCode.OAUTH_NOT_AUTHORIZED
    assert rules.code_refusal(outage) == outage.info
