"""The providers' authorization servers over HTTPS (TLS always verified): discovery, JWKS,
the token endpoint, revocation, and the id_token's validation.

Discovery documents and key sets are cached for an hour; an id_token signed with a key not in the
cached set refetches it once (the provider rotated its keys)."""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from nats.js import JetStreamContext

from mailbridge.oauth_broker.domain.providers import ProviderProfile, issuer_matches
from mailbridge.oauth_broker.domain.token_errors import Failure, TokenEndpointError, classify
from mailbridge.oauth_broker.domain.tokens import TokenResponse, parsed_response
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import OAuthApp

log = logging.getLogger(__name__)
CACHE_SECONDS = 3600.0


@dataclass(frozen=True)
class Discovery:
    issuer: str
    jwks_uri: str


class IdTokenError(Exception):
    """The id_token does not prove who signed in: bad signature, issuer, audience, nonce, age."""


class HttpAuthorizationServers:
    """One HTTP client for every provider; a Part, so it is opened and closed with the service."""

    def __init__(self, *, ca_file: str | None, timeout: float) -> None:
        self._ca_file, self._timeout = ca_file, timeout
        self._client: httpx.AsyncClient | None = None
        self._documents: dict[str, tuple[float, Any]] = {}

    async def start(self, js: JetStreamContext) -> None:
        context = ssl.create_default_context(cafile=self._ca_file)  # default CAs when None
        self._client = httpx.AsyncClient(verify=context, timeout=self._timeout)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the authorization servers' client is not started")
        return self._client

    async def discovery(self, profile: ProviderProfile) -> Discovery:
        document = await self._document(profile.discovery_url)
        return Discovery(issuer=str(document["issuer"]), jwks_uri=str(document["jwks_uri"]))

    async def exchange_code(
        self,
        profile: ProviderProfile,
        app: OAuthApp,
        *,
        code: str,
        verifier: str,
        redirect_uri: str,
    ) -> TokenResponse:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return await self._token(profile, app, {**form, "code_verifier": verifier})

    async def refresh(
        self, profile: ProviderProfile, app: OAuthApp, *, refresh_token: str, scope: str | None
    ) -> TokenResponse:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token(profile, app, {**form, **({"scope": scope} if scope else {})})

    async def revoke(self, url: str, token: str) -> bool:
        """Revoke a grant (Google). An already revoked token counts as revoked."""
        try:
            response = await self._http.post(url, data={"token": token})
        except httpx.HTTPError:
            log.warning("the revocation endpoint could not be reached", exc_info=True)
            return False
        return response.status_code == 200 or _error_of(response) == "invalid_token"

    async def verified_claims(
        self, profile: ProviderProfile, id_token: str, *, client_id: str, nonce: str
    ) -> dict[str, Any]:
        discovery = await self.discovery(profile)
        try:
            token = jwt.decode(id_token, await self._keys(discovery.jwks_uri, id_token))
            jwt.JWTClaimsRegistry(
                aud={"essential": True, "value": client_id},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
                leeway=60,
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise IdTokenError(str(exc)) from exc
        claims = token.claims
        if not issuer_matches(discovery.issuer, str(claims.get("iss")), claims.get("tid")):
            raise IdTokenError(f"issuer {claims.get('iss')!r} is not {discovery.issuer!r}")
        return claims

    async def _token(
        self, profile: ProviderProfile, app: OAuthApp, form: dict[str, str]
    ) -> TokenResponse:
        secret = app.client_secret.get_secret_value() if app.client_secret else ""
        client = {"client_id": app.client_id, "client_secret": secret}  # client_secret_post
        try:
            response = await self._http.post(profile.token_url, data={**form, **client})
        except httpx.TimeoutException as exc:
            raise _transient(
                ErrorCode.TIMEOUT, "The token endpoint did not answer in time."
            ) from exc
        except httpx.HTTPError as exc:
            raise _transient(
                ErrorCode.PROVIDER_UNAVAILABLE, "The token endpoint was unreachable."
            ) from exc
        body = _json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise classify(response.status_code, body)
        return parsed_response(body)

    async def _keys(self, jwks_uri: str, id_token: str) -> KeySet:
        keys = KeySet.import_key_set(await self._document(jwks_uri))
        kid = extract_compact(id_token.encode()).protected.get("kid")
        if kid is not None and all(key.kid != kid for key in keys.keys):
            self._documents.pop(jwks_uri, None)  # rotated keys: fetch the set again, once
            keys = KeySet.import_key_set(await self._document(jwks_uri))
        return keys

    async def _document(self, url: str) -> Any:
        cached = self._documents.get(url)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise MailbridgeError(ErrorCode.PROVIDER_UNAVAILABLE, f"Could not read {url}.") from exc
        self._documents[url] = (time.monotonic(), document)
        return document


def _transient(code: ErrorCode, message: str) -> TokenEndpointError:
    return TokenEndpointError(Failure.TRANSIENT, ErrorInfo.of(code).saying(message))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_of(response: httpx.Response) -> str | None:
    body = _json_or_none(response)
    return body.get("error") if isinstance(body, dict) else None
