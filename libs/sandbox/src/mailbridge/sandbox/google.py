"""The Google look-alike: accounts.google.com and oauth2.googleapis.com under ``/google``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbridge.sandbox.flow import ProviderFlow
from mailbridge.sandbox.state import AuthRequest, Client, Code, Grant, RefreshToken
from mailbridge.sandbox.web import (
    Form,
    bearer,
    first,
    jwks,
    now,
    read_form,
    sign_id_token,
    stable_number,
)

SHORT_SCOPES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
UNKNOWN_CLIENT = 700016
DESCRIPTIONS = {
    "invalid_grant": "Bad Request",
    "invalid_client": "Unauthorized",
    "unauthorized_client": "Client is unauthorized to retrieve access tokens using this method.",
}


class GoogleFlow(ProviderFlow):
    @property
    def issuer(self) -> str:
        return f"{self.base_url}/google"

    def token_error(self, error: str, code: int, message: str, status: int = 400) -> Response:
        description = DESCRIPTIONS.get(error, message)
        if code == UNKNOWN_CLIENT:
            description = "The OAuth client was not found."
        body = {"error": error, "error_description": description}
        return JSONResponse(body, status_code=status)

    def granted_scopes(self, request: AuthRequest, ticked: list[str], email: str) -> list[str]:
        granted = [SHORT_SCOPES.get(s, s) for s in request.scopes if s in ticked]
        if first(request.params, "include_granted_scopes") == "true":
            previous = self.state.grants.get(("google", request.client_id, email))
            granted += sorted(previous.scopes - set(granted)) if previous else []
        return granted

    def allow_params(self, request: AuthRequest, code: str, granted: list[str]) -> dict[str, str]:
        scope = " ".join(granted)
        return {"code": code, "scope": scope, "state": first(request.params, "state")} | {
            "iss": self.issuer
        }

    def deny_params(self, request: AuthRequest) -> dict[str, str]:
        state = first(request.params, "state")
        return {"error": "access_denied", "state": state, "iss": self.issuer}

    def wants_refresh_token(
        self, request: AuthRequest, granted: list[str], first_consent: bool
    ) -> bool:
        params = request.params
        prompted = "consent" in first(params, "prompt").split()
        return first(params, "access_type") == "offline" and (prompted or first_consent)

    def redeem(self, client: Client, code: Code, form: Form) -> Response:
        grant = self.state.grant(client.client_id, code.email)
        body = self._tokens(grant, code.scopes, first(code.request.params, "nonce"))
        if code.offline:
            body["refresh_token"] = self.state.issue_refresh_token(grant, "google")
        return JSONResponse(body)

    def refresh(self, client: Client, token: str, found: RefreshToken, form: Form) -> Response:
        grant = self.state.grants[found.grant_key]
        found.used = True
        return JSONResponse(self._tokens(grant, sorted(grant.scopes), ""))

    def _tokens(self, grant: Grant, scopes: list[str], nonce: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.state.issue_access_token(grant, "gmail", scopes),
            "expires_in": self.state.settings.access_token_lifetime,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        if "openid" in scopes:
            body["id_token"] = self._id_token(grant, scopes, nonce)
        return body

    def _id_token(self, grant: Grant, scopes: list[str], nonce: str) -> str:
        issued = now()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "azp": grant.client_id,
            "sub": stable_number(grant.email),
            "email": grant.email,
            "email_verified": True,
            "iat": issued,
            "exp": issued + 3600,
        }
        if nonce:
            claims["nonce"] = nonce
        return sign_id_token(self.state.key, claims)

    async def revoke(self, request: Request) -> Response:
        failure = await self.failure("revoke")
        failed = None if failure is None else self.failed(failure)
        if failed is not None:
            return failed
        token = first(await read_form(request), "token")
        found = self.state.refresh_tokens.get(token) or self.state.access_tokens.get(token)
        if found is None:
            error = {"error": "invalid_token", "error_description": "Token expired or revoked"}
            return JSONResponse(error, status_code=400)
        self.state.end_grant(found.grant_key)
        return JSONResponse({})

    async def userinfo(self, request: Request) -> Response:
        found = self.state.live_access_token(bearer(request))
        if found is None:
            error = {"error": "invalid_request", "error_description": "Invalid Credentials"}
            return JSONResponse(error, status_code=401)
        email = found.email
        return JSONResponse({"sub": stable_number(email), "email": email, "email_verified": True})

    def discovery(self, request: Request) -> Response:
        issuer = self.issuer
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/o/oauth2/v2/auth",
                "token_endpoint": f"{issuer}/token",
                "revocation_endpoint": f"{issuer}/revoke",
                "userinfo_endpoint": f"{issuer}/v1/userinfo",
                "jwks_uri": f"{issuer}/oauth2/v3/certs",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "scopes_supported": ["openid", "email", "profile"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
            }
        )

    def routes(self) -> list[Route]:
        async def authorize(request: Request) -> Response:
            return await self.authorize(request, "/google/consent")

        return [
            Route("/google/.well-known/openid-configuration", self.discovery),
            Route("/google/o/oauth2/v2/auth", authorize),
            Route("/google/consent", self.consent, methods=["POST"]),
            Route("/google/token", self.token, methods=["POST"]),
            Route("/google/revoke", self.revoke, methods=["POST"]),
            Route("/google/v1/userinfo", self.userinfo, methods=["GET", "POST"]),
            Route("/google/oauth2/v3/certs", lambda _: JSONResponse(jwks(self.state.key))),
        ]
