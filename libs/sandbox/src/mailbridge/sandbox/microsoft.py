"""The Microsoft look-alike: login.microsoftonline.com's v2.0 endpoints under ``/microsoft``."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mailbridge.sandbox.flow import ProviderFlow
from mailbridge.sandbox.state import AuthRequest, Client, Code, Grant, RefreshToken, User
from mailbridge.sandbox.web import Form, first, jwks, now, sign_id_token

GRAPH = "https://graph.microsoft.com"
OUTLOOK = "https://outlook.office.com"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
MULTI_TENANTS = ("common", "organizations", "consumers")
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def full_scope(scope: str) -> str:
    """Bare names (``Mail.ReadWrite``) are Graph's, as at Microsoft."""
    return scope if scope in OIDC_SCOPES or "://" in scope else f"{GRAPH}/{scope}"


def resource_of(scope: str) -> str:
    return scope.rsplit("/", 1)[0]


def resources(scopes: list[str]) -> set[str]:
    return {resource_of(s) for s in scopes if s not in OIDC_SCOPES}


def object_id(user: User) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"oid:{user.upn}"))


def tenant_id(tenant: str, user: User) -> str:
    if tenant == "consumers":
        return CONSUMER_TENANT
    if tenant in MULTI_TENANTS:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, user.upn.rpartition("@")[2] or "sandbox"))
    return tenant


class MicrosoftFlow(ProviderFlow):
    def authority(self, tenant: str) -> str:
        return f"{self.base_url}/microsoft/{tenant}"

    def token_error(self, error: str, code: int, message: str, status: int = 400) -> Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{code}: {message}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
        )
        body = {
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.base_url}/microsoft/error?code={code}",
        }
        return JSONResponse(body, status_code=status)

    def granted_scopes(self, request: AuthRequest, ticked: list[str], email: str) -> list[str]:
        return [full_scope(s) for s in request.scopes if s in ticked]

    def allow_params(self, request: AuthRequest, code: str, granted: list[str]) -> dict[str, str]:
        state = first(request.params, "state")
        return {"code": code, "state": state, "session_state": str(uuid.uuid4())}

    def deny_params(self, request: AuthRequest) -> dict[str, str]:
        description = "AADSTS65004: User declined to consent to access the app."
        state = first(request.params, "state")
        return {"error": "access_denied", "error_description": description, "state": state}

    def wants_refresh_token(
        self, request: AuthRequest, granted: list[str], first_consent: bool
    ) -> bool:
        return "offline_access" in granted

    def redeem(self, client: Client, code: Code, form: Form) -> Response:
        asked = [full_scope(s) for s in first(form, "scope").split()]
        if len(resources(asked)) > 1:
            return self._incompatible(asked)
        grant = self.state.grant(client.client_id, code.email)
        resource = OUTLOOK if resources(asked or code.scopes) == {OUTLOOK} else GRAPH
        tenant = first(code.request.params, "_tenant")
        nonce = first(code.request.params, "nonce")
        return JSONResponse(self._tokens(grant, resource, tenant, nonce, code.offline))

    def refresh(self, client: Client, token: str, found: RefreshToken, form: Form) -> Response:
        grant = self.state.grants[found.grant_key]
        asked = [full_scope(s) for s in first(form, "scope").split()]
        if len(resources(asked)) > 1:
            return self._incompatible(asked)
        resource = next(iter(resources(asked)), found.resource)
        if not set(asked) <= grant.scopes or not self._scopes_of(grant, resource):
            message = (
                f"The user or administrator has not consented to use the application with ID "
                f"'{client.client_id}'. Send an interactive authorization request for this user "
                "and resource."
            )
            return self.token_error("invalid_grant", 65001, message)
        found.used = True
        return JSONResponse(self._tokens(grant, resource, found.tenant or "common", "", True))

    def _incompatible(self, asked: list[str]) -> Response:
        message = (
            f"The provided value for the input parameter 'scope' is not valid. One or more "
            f"scopes in '{' '.join(asked)}' are not compatible with each other."
        )
        return self.token_error("invalid_scope", 70011, message)

    def _scopes_of(self, grant: Grant, resource: str) -> list[str]:
        return sorted(
            s for s in grant.scopes if s not in OIDC_SCOPES and resource_of(s) == resource
        )

    def _tokens(
        self, grant: Grant, resource: str, tenant: str, nonce: str, offline: bool
    ) -> dict[str, Any]:
        scopes = self._scopes_of(grant, resource)
        echoed = scopes + [s for s in ("openid", "profile", "email") if s in grant.scopes]
        lifetime = self.state.settings.access_token_lifetime
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(echoed),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.state.issue_access_token(grant, resource, echoed),
        }
        if offline:
            body["refresh_token"] = self.state.issue_refresh_token(grant, resource, tenant)
        if "openid" in grant.scopes:
            body["id_token"] = self._id_token(grant, tenant, nonce)
        return body

    def _id_token(self, grant: Grant, tenant: str, nonce: str) -> str:
        user = self.state.user(grant.email)
        tid = tenant_id(tenant, user)
        issued = now()
        oid = object_id(user)
        claims: dict[str, Any] = {
            "iss": f"{self.base_url}/microsoft/{tid}/v2.0",
            "aud": grant.client_id,
            "tid": tid,
            "oid": oid,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sub:{grant.client_id}:{oid}")),
            "preferred_username": user.upn,
            "name": user.upn.partition("@")[0],
            "iat": issued,
            "nbf": issued,
            "exp": issued + 3600,
            "ver": "2.0",
        }
        if "email" in grant.scopes and user.mail:
            claims["email"] = user.mail
        if nonce:
            claims["nonce"] = nonce
        return sign_id_token(self.state.key, claims)

    def discovery(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        authority = self.authority(tenant)
        issuer_tenant = "{tenantid}" if tenant in MULTI_TENANTS else tenant
        return JSONResponse(
            {
                "issuer": f"{self.base_url}/microsoft/{issuer_tenant}/v2.0",
                "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "token_endpoint": f"{authority}/oauth2/v2.0/token",
                "jwks_uri": f"{authority}/discovery/v2.0/keys",
                "userinfo_endpoint": f"{self.base_url}/graph/oidc/userinfo",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
            }
        )

    async def authorize_in_tenant(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        consent = f"/microsoft/{tenant}/consent"
        return await self.authorize(request, consent, {"_tenant": tenant})

    def routes(self) -> list[Route]:
        prefix = "/microsoft/{tenant}"
        return [
            Route(f"{prefix}/v2.0/.well-known/openid-configuration", self.discovery),
            Route(f"{prefix}/oauth2/v2.0/authorize", self.authorize_in_tenant),
            Route(f"{prefix}/consent", self.consent, methods=["POST"]),
            Route(f"{prefix}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route(f"{prefix}/discovery/v2.0/keys", lambda _: JSONResponse(jwks(self.state.key))),
            Route("/microsoft/error", error_help),
        ]


def error_help(request: Request) -> Response:
    code = request.query_params.get("code", "")
    return HTMLResponse(f"<!doctype html><p>AADSTS{code}: see the sandbox's source.</p>")
