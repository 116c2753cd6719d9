"""The test's levers under ``/_sandbox/``: register clients and users, switch failures on, look."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbridge.sandbox.mailstore import Mailbox
from mailbridge.sandbox.state import (
    ENDPOINTS,
    PROVIDERS,
    Client,
    Failure,
    ProviderState,
    SandboxState,
    User,
)

FAILURE_KINDS = (
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "drop_scope",
    "429",
    "500",
    "503",
    "slow",
    "expired_cursor",  # send/sync/api: every history id and delta token goes stale
    "drop_after_read",  # carried out, then the connection drops before the answer
)


class BadRequest(Exception):
    pass


class Admin:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def _body(self, request: Request) -> tuple[ProviderState, dict[str, Any]]:
        body = await request.json()
        if not isinstance(body, dict) or body.get("provider") not in PROVIDERS:
            raise BadRequest(f"provider must be one of {PROVIDERS}")
        return self.state.provider(body["provider"]), body

    async def register_client(self, request: Request) -> Response:
        provider, body = await self._body(request)
        client = Client(
            client_id=str(body["client_id"]),
            client_secret=str(body["client_secret"]),
            redirect_uris=[str(uri) for uri in body["redirect_uris"]],
            secret_expired=bool(body.get("secret_expired", False)),
        )
        provider.clients[client.client_id] = client
        return JSONResponse({"client_id": client.client_id}, status_code=201)

    async def add_user(self, request: Request) -> Response:
        """A user with a fresh mailbox of ``inbox_total`` messages, the first ``unread``
        of them unread."""
        provider, body = await self._body(request)
        email = str(body["email"])
        user = User(
            email=email,
            upn=str(body.get("upn") or email),
            mail=str(body["mail"]) if body.get("mail") is not None else email,
        )
        provider.users[email] = user
        total, unread = int(body.get("inbox_total", 0)), int(body.get("unread", 0))
        provider.mailboxes[email] = Mailbox.seeded(provider.name, user.mail or email, total, unread)
        return JSONResponse({"email": email}, status_code=201)

    async def fail(self, request: Request) -> Response:
        provider, body = await self._body(request)
        if body.get("endpoint") not in ENDPOINTS or body.get("kind") not in FAILURE_KINDS:
            raise BadRequest(f"endpoint in {ENDPOINTS}, kind in {FAILURE_KINDS}")
        times = body.get("times")
        failure = Failure(
            endpoint=body["endpoint"],
            kind=body["kind"],
            times=None if times is None else int(times),
            delay_seconds=float(body.get("delay_seconds") or 0.0),
            scope=body.get("scope"),
            retry_after=1 if body.get("retry_after") is None else int(body["retry_after"]),
        )
        provider.failures.append(failure)
        return JSONResponse({"switched_on": failure.kind}, status_code=201)

    async def clear_failures(self, request: Request) -> Response:
        for name in PROVIDERS:
            self.state.provider(name).failures.clear()
        return JSONResponse({})

    async def counters(self, request: Request) -> Response:
        return JSONResponse({name: dict(self.state.provider(name).counters) for name in PROVIDERS})

    async def reset_counters(self, request: Request) -> Response:
        for name in PROVIDERS:
            counters = self.state.provider(name).counters
            counters.update(dict.fromkeys(counters, 0))
        return JSONResponse({})

    async def revoke_user(self, request: Request) -> Response:
        """The person removes the app's access at the provider: every grant of theirs dies."""
        provider, body = await self._body(request)
        email = known_email(provider, str(body["email"]))
        keys = [key for key in provider.grants if key[2] == email]
        for key in keys:
            provider.end_grant(key)
        return JSONResponse({"revoked": len(keys)})

    async def grants(self, request: Request) -> Response:
        provider = self.state.provider(request.query_params.get("provider", ""))
        email = known_email(provider, request.query_params.get("email", ""))
        found = [
            {
                "client_id": grant.client_id,
                "email": grant.email,
                "scopes": sorted(grant.scopes),
                "latest_refresh_token": grant.refresh_tokens[-1] if grant.refresh_tokens else None,
            }
            for key, grant in provider.grants.items()
            if key[2] == email
        ]
        return JSONResponse({"grants": found})

    async def secrets(self, request: Request) -> Response:
        """Every code, verifier and token issued or received: what a leak test looks for."""
        provider = self.state.provider(request.query_params.get("provider", ""))
        found = [{"kind": kind, "value": value} for kind, value in provider.secrets_seen]
        return JSONResponse({"secrets": found})

    async def settings(self, request: Request) -> Response:
        provider, body = await self._body(request)
        if body.get("access_token_lifetime") is not None:
            provider.settings.access_token_lifetime = int(body["access_token_lifetime"])
        if body.get("revoke_used_refresh_tokens") is not None:
            provider.settings.revoke_used_refresh_tokens = bool(body["revoke_used_refresh_tokens"])
        if body.get("max_json_send_bytes") is not None:
            provider.settings.max_json_send_bytes = int(body["max_json_send_bytes"])
        return JSONResponse(vars(provider.settings))

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/clients", self.register_client, methods=["POST"]),
            Route("/_sandbox/users", self.add_user, methods=["POST"]),
            Route("/_sandbox/failures", self.fail, methods=["POST"]),
            Route("/_sandbox/failures", self.clear_failures, methods=["DELETE"]),
            Route("/_sandbox/counters", self.counters, methods=["GET"]),
            Route("/_sandbox/counters/reset", self.reset_counters, methods=["POST"]),
            Route("/_sandbox/revoke-user", self.revoke_user, methods=["POST"]),
            Route("/_sandbox/grants", self.grants, methods=["GET"]),
            Route("/_sandbox/secrets", self.secrets, methods=["GET"]),
            Route("/_sandbox/settings", self.settings, methods=["POST"]),
        ]


def known_email(provider: ProviderState, login: str) -> str:
    """The email of the user known as ``login`` (email or UPN), without creating one."""
    user = provider.find_user(login)
    return user.email if user is not None else login


async def bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "bad_request", "detail": str(exc)}, status_code=400)
