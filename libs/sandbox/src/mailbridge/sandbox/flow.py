"""The authorization code flow both look-alikes share; each provider says how it differs.

A subclass names its error shape, what the redirect after consent carries, and how codes and
refresh tokens become token responses. Switched-on failures and counters are applied here, once.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from mailbridge.sandbox.state import (
    CODE_LIFETIME_SECONDS,
    AuthRequest,
    Client,
    Code,
    Failure,
    ProviderState,
    RefreshToken,
    new_id,
)
from mailbridge.sandbox.web import (
    Form,
    client_credentials,
    consent_page,
    error_page,
    first,
    pkce_matches,
    read_form,
    redirect,
)

STATUS_FAILURES = {"429": 429, "500": 500, "503": 503}
OAUTH_FAILURES = ("invalid_grant", "invalid_client", "unauthorized_client")


class ProviderFlow(ABC):
    def __init__(self, state: ProviderState, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    # --- what each provider says differently ---------------------------------------------

    @abstractmethod
    def token_error(self, error: str, code: int, message: str, status: int = 400) -> Response:
        """A token-endpoint error in this provider's shape; ``code`` is an AADSTS number."""

    @abstractmethod
    def allow_params(self, request: AuthRequest, code: str, granted: list[str]) -> dict[str, str]:
        """The query of the redirect that carries the code."""

    @abstractmethod
    def deny_params(self, request: AuthRequest) -> dict[str, str]:
        """The query of the redirect when the person says no."""

    @abstractmethod
    def wants_refresh_token(
        self, request: AuthRequest, granted: list[str], first_consent: bool
    ) -> bool:
        """Whether redeeming this consent's code also gives a refresh token."""

    @abstractmethod
    def redeem(self, client: Client, code: Code, form: Form) -> Response:
        """The token response for a valid, unused code."""

    @abstractmethod
    def refresh(self, client: Client, token: str, found: RefreshToken, form: Form) -> Response:
        """The token response for a live refresh token of this client."""

    def granted_scopes(self, request: AuthRequest, ticked: list[str], email: str) -> list[str]:
        return [scope for scope in request.scopes if scope in ticked]

    # --- authorization endpoint and consent page -----------------------------------------

    async def authorize(
        self, request: Request, consent_path: str, context: dict[str, str] | None = None
    ) -> Response:
        """The consent page; ``context`` is kept with the request (Microsoft's tenant)."""
        params = dict(request.query_params) | (context or {})
        failure = await self.failure("authorize")
        client = self.state.clients.get(first(params, "client_id"))
        if client is None:
            return error_page("invalid_client", "The OAuth client was not found.", 401)
        redirect_uri = first(params, "redirect_uri")
        if redirect_uri not in client.redirect_uris:
            return error_page("redirect_uri_mismatch", f"{redirect_uri!r} is not registered.")
        if failure is not None and failure.kind in STATUS_FAILURES:
            return error_page("server_error", "switched on", STATUS_FAILURES[failure.kind])
        if failure is not None and failure.kind in OAUTH_FAILURES:
            return redirect(redirect_uri, {"error": failure.kind, "state": first(params, "state")})
        if first(params, "response_type") != "code":
            error = {"error": "unsupported_response_type", "state": first(params, "state")}
            return redirect(redirect_uri, error)
        return self._consent(client, redirect_uri, params, consent_path)

    def _consent(
        self, client: Client, redirect_uri: str, params: dict[str, str], consent_path: str
    ) -> HTMLResponse:
        scopes = first(params, "scope").split()
        auth = AuthRequest(self.state.name, client.client_id, redirect_uri, scopes, params)
        request_id = new_id()
        self.state.requests[request_id] = auth
        email = first(params, "login_hint") or self._first_user_email()
        page = consent_page(consent_path, request_id, email, client.client_id, scopes)
        return HTMLResponse(page)

    def _first_user_email(self) -> str:
        return next(iter(self.state.users.values())).email if self.state.users else ""

    async def consent(self, request: Request) -> Response:
        form = await read_form(request)
        auth = self.state.requests.pop(first(form, "request_id"), None)
        if auth is None:
            return error_page("invalid_request", "This sign-in request is unknown or finished.")
        if first(form, "action") != "allow":
            return redirect(auth.redirect_uri, self.deny_params(auth))
        email = self.state.user(first(form, "email") or self._first_user_email()).email
        granted = self.granted_scopes(auth, form.get("scope", []), email)
        grant = self.state.grant(auth.client_id, email)
        offline = self.wants_refresh_token(auth, granted, first_consent=not grant.refresh_tokens)
        grant.scopes |= set(granted)
        code = new_id()
        expires_at = time.time() + CODE_LIFETIME_SECONDS
        self.state.codes[code] = Code(auth, email, granted, offline, expires_at)
        self.state.saw_secret("authorization code", code)
        return redirect(auth.redirect_uri, self.allow_params(auth, code, granted))

    # --- token endpoint ------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = await read_form(request)
        grant_type = first(form, "grant_type")
        endpoint = {"authorization_code": "code_exchange", "refresh_token": "refresh"}.get(
            grant_type
        )
        if endpoint is None:
            return self.token_error("unsupported_grant_type", 70003, "Unsupported grant type.")
        failure = await self.failure(endpoint)
        if failure is not None and failure.kind in STATUS_FAILURES:
            return self.unavailable(failure.kind, failure.retry_after)
        client_or_error = self.authenticate(request, form)
        if isinstance(client_or_error, Response):
            return client_or_error
        if failure is not None and failure.kind in OAUTH_FAILURES:
            return self.switched_error(failure.kind)
        response = self._grant(client_or_error, grant_type, form)
        return drop_scope(response, failure)

    def _grant(self, client: Client, grant_type: str, form: Form) -> Response:
        if grant_type == "authorization_code":
            return self._redeem(client, form)
        token = first(form, "refresh_token")
        found = self.state.refresh_tokens.get(token)
        if found is None or found.grant_key[1] != client.client_id:
            return self.revoked_error()
        if found.used and self.state.settings.revoke_used_refresh_tokens:
            message = "The refresh token has been used to obtain a new one and was revoked."
            return self.token_error("invalid_grant", 70000, message)
        return self.refresh(client, token, found, form)

    def _redeem(self, client: Client, form: Form) -> Response:
        code = self.state.codes.get(first(form, "code"))
        if code is None or code.request.client_id != client.client_id:
            return self.token_error("invalid_grant", 70000, "The provided code is not valid.")
        if code.used:
            message = (
                "OAuth2 Authorization code was already redeemed, please retry with a new code."
            )
            return self.token_error("invalid_grant", 54005, message)
        code.used = True
        if (
            code.expires_at < time.time()
            or first(form, "redirect_uri") != code.request.redirect_uri
        ):
            return self.token_error("invalid_grant", 70000, "The provided code is not valid.")
        verifier = first(form, "code_verifier")
        self.state.saw_secret("PKCE verifier", verifier)
        if not code_verifier_matches(code, verifier):
            message = "The code_verifier does not match the code_challenge supplied."
            return self.token_error("invalid_grant", 501481, message)
        return self.redeem(client, code, form)

    def authenticate(self, request: Request, form: Form) -> Client | Response:
        client_id, secret = client_credentials(request, form)
        client = self.state.clients.get(client_id)
        if client is None:
            message = f"Application with identifier '{client_id}' was not found."
            return self.token_error("invalid_client", 700016, message, 401)
        if client.client_secret != secret:
            message = f"Invalid client secret provided for app '{client_id}'."
            return self.token_error("invalid_client", 7000215, message, 401)
        if client.secret_expired:
            message = f"The provided client secret keys for app '{client_id}' are expired."
            return self.token_error("invalid_client", 7000222, message, 401)
        return client

    def revoked_error(self) -> Response:
        message = (
            "The provided grant has expired due to it being revoked, a fresh auth token is needed."
        )
        return self.token_error("invalid_grant", 70000, message)

    def switched_error(self, kind: str) -> Response:
        status = 401 if kind == "invalid_client" else 400
        return self.token_error(kind, {"invalid_client": 7000215}.get(kind, 70000), kind, status)

    def unavailable(self, kind: str, retry_after: int = 1) -> Response:
        status = STATUS_FAILURES[kind]
        error = "server_error" if status == 500 else "temporarily_unavailable"
        response = self.token_error(error, 90033, "A transient error has occurred.", status)
        if status != 500:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def failed(self, failure: Failure) -> Response | None:
        """The answer a switched-on failure gives instead of the normal one, if any."""
        if failure.kind in STATUS_FAILURES:
            return self.unavailable(failure.kind, failure.retry_after)
        return self.switched_error(failure.kind) if failure.kind in OAUTH_FAILURES else None

    async def failure(self, endpoint: str) -> Failure | None:
        """Count the request, then apply the switched-on failure; "slow" only delays."""
        self.state.counters[endpoint] += 1
        failure = self.state.take_failure(endpoint)
        if failure is not None and failure.kind == "slow":
            await asyncio.sleep(failure.delay_seconds)
            return None
        return failure


def code_verifier_matches(code: Code, verifier: str) -> bool:
    params = code.request.params
    method = first(params, "code_challenge_method", "plain")
    return pkce_matches(first(params, "code_challenge"), method, verifier)


def drop_scope(response: Response, failure: Failure | None) -> Response:
    """The switched-on ``drop_scope``: the token response does not list that scope."""
    if failure is None or failure.kind != "drop_scope" or not isinstance(response, JSONResponse):
        return response
    body = json.loads(bytes(response.body))
    if "scope" in body:
        body["scope"] = " ".join(s for s in body["scope"].split() if s != failure.scope)
    return JSONResponse(body, status_code=response.status_code)
