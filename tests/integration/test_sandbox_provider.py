"""The sandbox OAuth provider as a process: the flows a user walks through, over real TLS."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.sandbox import SandboxAdmin, SandboxProvider

REDIRECT = "https://app.example/callback"
GMAIL = "https://www.googleapis.com/auth/gmail.modify"
GRAPH_SCOPES = "openid profile email offline_access User.Read Mail.ReadWrite"
OUTLOOK_IMAP = "https://outlook.office.com/IMAP.AccessAsUser.All"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProvider]:
    with SandboxProvider(tmp_path_factory.mktemp("sandbox")) as provider:
        yield provider


@pytest.fixture
def http(sandbox: SandboxProvider) -> Iterator[httpx.Client]:
    verify = client_ssl_context(sandbox.ca_file)
    with httpx.Client(base_url=sandbox.base_url, verify=verify, timeout=10) as client:
        yield client


@pytest.fixture
def admin(sandbox: SandboxProvider) -> Iterator[SandboxAdmin]:
    yield sandbox.admin
    sandbox.admin.clear_failures()


class ConsentForm(HTMLParser):
    """The fields of the consent page's form, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = values["action"]
        elif tag == "input":
            self.fields.setdefault(values["name"], []).append(values.get("value", ""))


class Client:
    """One registered app and one user, walking the code flow with PKCE."""

    def __init__(self, http: httpx.Client, admin: SandboxAdmin, provider: str) -> None:
        self.http, self.provider = http, provider
        self.client_id, self.secret = f"app-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        self.email = f"user-{secrets.token_hex(4)}@example.test"
        admin.register_client(provider, self.client_id, self.secret, [REDIRECT])
        self.verifier = secrets.token_urlsafe(48)
        self.base = "/google" if provider == "google" else "/microsoft/common"

    @property
    def authorize_path(self) -> str:
        return (
            f"{self.base}/o/oauth2/v2/auth"
            if self.provider == "google"
            else (f"{self.base}/oauth2/v2.0/authorize")
        )

    @property
    def token_path(self) -> str:
        return (
            f"{self.base}/token" if self.provider == "google" else f"{self.base}/oauth2/v2.0/token"
        )

    def consent_page(self, scope: str, **extra: str) -> ConsentForm:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest())
        params = {
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": scope,
            "state": "st-1",
            "nonce": "n-1",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "login_hint": self.email,
        }
        page = self.http.get(self.authorize_path, params=params | extra)
        assert page.status_code == 200, page.text
        form = ConsentForm()
        form.feed(page.text)
        return form

    def consent(
        self, scope: str, action: str = "allow", untick: str = "", **extra: str
    ) -> dict[str, str]:
        form = self.consent_page(scope, **extra)
        form.fields["scope"] = [s for s in form.fields["scope"] if s != untick]
        answer = self.http.post(form.action, data=form.fields | {"action": action})
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(REDIRECT + "?")
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def exchange(self, code: str, verifier: str | None = None) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier or self.verifier,
        }
        return self.http.post(self.token_path, data=form, auth=(self.client_id, self.secret))

    def sign_in(self, scope: str, **extra: str) -> dict[str, Any]:
        response = self.exchange(self.consent(scope, **extra)["code"])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def refresh(self, refresh_token: str, scope: str | None = None) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        form |= {"client_id": self.client_id, "client_secret": self.secret}
        return self.http.post(self.token_path, data=form | ({"scope": scope} if scope else {}))


def error_of(response: httpx.Response) -> tuple[int, str, list[int]]:
    body = response.json()
    return response.status_code, body["error"], body.get("error_codes", [])


def test_google_code_flow_gives_what_was_granted_and_the_iss(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    google = Client(http, admin, "google")
    redirect = google.consent(f"openid email {GMAIL}", access_type="offline", prompt="consent")
    assert redirect["state"] == "st-1" and redirect["iss"].endswith("/google")
    assert redirect["scope"].split() == [
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
        GMAIL,
    ]
    tokens = google.exchange(redirect["code"]).json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"] and tokens["id_token"]
    profile = http.get("/gmail/gmail/v1/users/me/profile", headers=bearer(tokens))
    assert profile.json()["emailAddress"] == google.email


def test_unticked_scope_is_not_granted_and_the_api_says_insufficient(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    google = Client(http, admin, "google")
    tokens = google.exchange(google.consent(f"openid {GMAIL}", untick=GMAIL)["code"]).json()
    assert tokens["scope"] == "openid" and "refresh_token" not in tokens
    answer = http.get("/gmail/gmail/v1/users/me/labels/INBOX", headers=bearer(tokens))
    assert answer.status_code == 403
    assert answer.json()["error"]["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"


def test_a_wrong_verifier_and_a_reused_code_are_invalid_grant(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    for provider in ("google", "microsoft"):
        app = Client(http, admin, provider)
        wrong = app.exchange(app.consent("openid")["code"], verifier="not-the-verifier")
        assert error_of(wrong)[:2] == (400, "invalid_grant")
        code = app.consent("openid")["code"]
        assert app.exchange(code).status_code == 200
        assert error_of(app.exchange(code))[:2] == (400, "invalid_grant")
    assert error_of(wrong)[2] == [501481]


def test_unknown_client_and_unregistered_redirect_get_an_error_page(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    google = Client(http, admin, "google")
    unknown = http.get(
        "/google/o/oauth2/v2/auth", params={"client_id": "nobody", "redirect_uri": REDIRECT}
    )
    mismatch = http.get(
        "/google/o/oauth2/v2/auth",
        params={"client_id": google.client_id, "redirect_uri": REDIRECT + "/other"},
    )
    assert unknown.status_code == 401 and "location" not in unknown.headers
    assert mismatch.status_code == 400 and "redirect_uri_mismatch" in mismatch.text


def test_google_refresh_does_not_rotate_and_revoke_ends_the_grant(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    google = Client(http, admin, "google")
    tokens = google.sign_in(f"openid {GMAIL}", access_type="offline")
    refreshed = google.refresh(tokens["refresh_token"]).json()
    assert "refresh_token" not in refreshed and refreshed["access_token"] != tokens["access_token"]
    assert http.post("/google/revoke", data={"token": tokens["access_token"]}).json() == {}
    assert error_of(google.refresh(tokens["refresh_token"]))[:2] == (400, "invalid_grant")
    again = http.post("/google/revoke", data={"token": tokens["refresh_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"
    assert (
        http.get("/gmail/gmail/v1/users/me/profile", headers=bearer(refreshed)).status_code == 401
    )


def test_include_granted_scopes_adds_what_the_user_granted_before(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    google = Client(http, admin, "google")
    google.sign_in("openid")
    later = google.consent(GMAIL, include_granted_scopes="true")
    assert set(later["scope"].split()) == {"openid", GMAIL}


def test_microsoft_code_flow_names_graph_scopes_and_rotates_on_refresh(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    microsoft = Client(http, admin, "microsoft")
    redirect = microsoft.consent(f"{GRAPH_SCOPES} {OUTLOOK_IMAP}")
    assert "iss" not in redirect and redirect["session_state"]
    tokens = microsoft.exchange(redirect["code"]).json()
    assert tokens["expires_in"] == 3599 and tokens["ext_expires_in"] == 3599
    assert set(tokens["scope"].split()) == {
        "https://graph.microsoft.com/User.Read",
        "https://graph.microsoft.com/Mail.ReadWrite",
        "openid",
        "profile",
        "email",
    }
    inbox = http.get("/graph/v1.0/me/mailFolders/inbox", headers=bearer(tokens)).json()
    assert inbox["displayName"] == "Inbox"
    first = microsoft.refresh(tokens["refresh_token"], OUTLOOK_IMAP).json()
    second = microsoft.refresh(first["refresh_token"]).json()
    assert len({tokens["refresh_token"], first["refresh_token"], second["refresh_token"]}) == 3
    assert first["scope"].startswith(OUTLOOK_IMAP)
    outlook_on_graph = http.get("/graph/v1.0/me", headers=bearer(first))
    assert outlook_on_graph.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert microsoft.refresh(tokens["refresh_token"]).status_code == 200  # old ones stay usable


def test_microsoft_refresh_refuses_mixed_and_unconsented_resources(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    microsoft = Client(http, admin, "microsoft")
    tokens = microsoft.sign_in(GRAPH_SCOPES)
    mixed = microsoft.refresh(tokens["refresh_token"], f"Mail.ReadWrite {OUTLOOK_IMAP}")
    assert error_of(mixed) == (400, "invalid_scope", [70011])
    assert "not compatible with each other" in mixed.json()["error_description"]
    unconsented = microsoft.refresh(tokens["refresh_token"], OUTLOOK_IMAP)
    assert error_of(unconsented) == (400, "invalid_grant", [65001])


def test_microsoft_can_revoke_used_refresh_tokens(http: httpx.Client, admin: SandboxAdmin) -> None:
    microsoft = Client(http, admin, "microsoft")
    tokens = microsoft.sign_in(GRAPH_SCOPES)
    microsoft.refresh(tokens["refresh_token"])
    admin.revoke_used_refresh_tokens("microsoft")
    try:
        assert error_of(microsoft.refresh(tokens["refresh_token"])) == (
            400,
            "invalid_grant",
            [70000],
        )
    finally:
        admin.revoke_used_refresh_tokens("microsoft", False)


def test_microsoft_deny_and_expired_secret(http: httpx.Client, admin: SandboxAdmin) -> None:
    microsoft = Client(http, admin, "microsoft")
    denied = microsoft.consent("openid", action="deny")
    assert denied["error"] == "access_denied" and denied["error_description"].startswith(
        "AADSTS65004"
    )
    admin.register_client(
        "microsoft", microsoft.client_id, microsoft.secret, [REDIRECT], secret_expired=True
    )
    expired = microsoft.exchange(microsoft.consent("openid")["code"])
    assert error_of(expired) == (401, "invalid_client", [7000222])
    assert "are expired" in expired.json()["error_description"]
    assert "\r\nTrace ID: " in expired.json()["error_description"]


def test_revoking_the_user_kills_their_refresh_tokens(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    microsoft = Client(http, admin, "microsoft")
    tokens = microsoft.sign_in(GRAPH_SCOPES)
    assert (
        admin.grant("microsoft", microsoft.email)["latest_refresh_token"] == tokens["refresh_token"]
    )
    admin.revoke_user("microsoft", microsoft.email)
    assert error_of(microsoft.refresh(tokens["refresh_token"]))[:2] == (400, "invalid_grant")


def test_switched_failures_and_counters(http: httpx.Client, admin: SandboxAdmin) -> None:
    google = Client(http, admin, "google")
    tokens = google.sign_in(f"openid {GMAIL}", access_type="offline")
    before = admin.counters()["google"]
    admin.fail("google", "refresh", "invalid_grant", times=1)
    admin.fail("google", "api", "429", times=1)
    admin.fail("google", "code_exchange", "drop_scope", times=1, scope=GMAIL)
    assert error_of(google.refresh(tokens["refresh_token"]))[:2] == (400, "invalid_grant")
    assert google.refresh(tokens["refresh_token"]).status_code == 200
    limited = http.get("/gmail/gmail/v1/users/me/profile", headers=bearer(tokens))
    assert (
        limited.status_code == 429
        and limited.json()["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    )
    assert google.sign_in(f"openid {GMAIL}")["scope"] == "openid"
    after = admin.counters()["google"]
    assert after["refresh"] - before["refresh"] == 2
    assert (
        after["api"] - before["api"] == 1 and after["code_exchange"] - before["code_exchange"] == 1
    )


def test_slow_delays_then_answers_and_graph_throttles(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    microsoft = Client(http, admin, "microsoft")
    tokens = microsoft.sign_in(GRAPH_SCOPES)
    admin.fail("microsoft", "refresh", "slow", times=1, delay_seconds=0.5)
    started = time.monotonic()
    assert microsoft.refresh(tokens["refresh_token"]).status_code == 200
    assert time.monotonic() - started >= 0.5
    admin.fail("microsoft", "api", "429")
    throttled = http.get("/graph/v1.0/me", headers=bearer(tokens))
    assert throttled.status_code == 429 and throttled.headers["retry-after"]
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"


def test_short_token_lifetime_expires_the_access_token(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    admin.set_token_lifetime("google", 1)
    try:
        google = Client(http, admin, "google")
        tokens = google.sign_in(GMAIL)
        assert tokens["expires_in"] == 1
        time.sleep(1.1)
        expired = http.get("/gmail/gmail/v1/users/me/profile", headers=bearer(tokens))
        assert expired.json()["error"]["errors"][0]["reason"] == "authError"
    finally:
        admin.set_token_lifetime("google", 3599)


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_id_token_verifies_against_the_jwks_of_discovery(
    http: httpx.Client, admin: SandboxAdmin, provider: str
) -> None:
    app = Client(http, admin, provider)
    admin.add_user(
        provider, app.email, upn=app.email, mail=f"other-{app.email}", inbox_total=3, unread=1
    )
    tokens = app.sign_in("openid email profile")
    path = "/google" if provider == "google" else "/microsoft/common/v2.0"
    discovery = http.get(f"{path}/.well-known/openid-configuration").json()
    keys = KeySet.import_key_set(http.get(discovery["jwks_uri"]).json())
    claims = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["aud"] == app.client_id and claims["nonce"] == "n-1"
    if provider == "google":
        assert claims["iss"] == discovery["issuer"] and claims["email"] == app.email
    else:
        assert claims["iss"] == discovery["issuer"].replace("{tenantid}", claims["tid"])
        assert claims["preferred_username"] == app.email and claims["email"] == f"other-{app.email}"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_every_code_verifier_and_token_is_recorded_for_the_leak_tests(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    google = Client(http, admin, "google")
    redirect = google.consent(f"openid email {GMAIL}", access_type="offline", prompt="consent")
    tokens = google.exchange(redirect["code"]).json()

    seen = set(admin.secrets("google"))

    assert {
        ("authorization code", redirect["code"]),
        ("PKCE verifier", google.verifier),
        ("access token", tokens["access_token"]),
        ("refresh token", tokens["refresh_token"]),
    } <= seen
    assert not any(value == tokens["access_token"] for _, value in admin.secrets("microsoft"))
