from __future__ import annotations

import pytest

from mailbridge.shared.errors import ErrorCode, ErrorInfo, hint_of, message_of

SPEC_CODES = [
    "auth_failed",
    "connection_refused",
    "timeout",
    "dns_failed",
    "tls_failed",
    "host_not_allowed",
    "smtp_auth_disabled",
    "basic_auth_disabled",
    "oauth_not_authorized",
    "oauth_token_revoked",
    "oauth_scope_missing",
    "oauth_app_misconfigured",
    "oauth_redirect_mismatch",
    "mailbox_mismatch",
    "recipient_not_allowed",
    "send_limit_reached",
    "domain_not_allowed",
    "message_too_large",
    "invalid_input",
    "provider_throttled",
    "provider_unavailable",
    "worker_unavailable",
    "internal",
]


def test_every_code_of_the_spec_exists() -> None:
    assert set(SPEC_CODES) <= {code.value for code in ErrorCode}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_has_a_message_and_a_fix_it_hint(code: ErrorCode) -> None:
    assert message_of(code).endswith(".")
    assert hint_of(code).endswith(".")


def test_the_auth_failed_hint_says_to_use_an_app_password() -> None:
    info = ErrorInfo.of(ErrorCode.AUTH_FAILED, "IMAP login was refused.")
    assert "app password" in info.hint
    assert info.message.endswith("IMAP login was refused.")
