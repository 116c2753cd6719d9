"""Small HTTP pieces both look-alikes use: forms, client credentials, PKCE, pages, redirects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

Form = dict[str, list[str]]


async def read_form(request: Request) -> Form:
    """An ``application/x-www-form-urlencoded`` body, every value of every field."""
    form: Form = {}
    for name, value in parse_qsl((await request.body()).decode(), keep_blank_values=True):
        form.setdefault(name, []).append(value)
    return form


def first(form: Form | dict[str, str], name: str, default: str = "") -> str:
    value = form.get(name)
    if isinstance(value, list):
        return value[0] if value else default
    return default if value is None else value


def client_credentials(request: Request, form: Form) -> tuple[str, str]:
    """``(client_id, client_secret)`` from HTTP Basic, else from the form."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        decoded = base64.b64decode(header[6:]).decode()
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return first(form, "client_id"), first(form, "client_secret")


def pkce_matches(challenge: str, method: str, verifier: str) -> bool:
    if not challenge:
        return not verifier
    if method.upper() == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        verifier = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(challenge, verifier)


def sign_id_token(key: RSAKey, claims: dict[str, Any]) -> str:
    header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key)


def jwks(key: RSAKey) -> dict[str, Any]:
    public = key.as_dict(private=False)
    return {"keys": [{**public, "use": "sig", "alg": "RS256"}]}


def now() -> int:
    return int(time.time())


def with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    return RedirectResponse(with_query(uri, params), status_code=302)


def error_page(error: str, description: str, status: int = 400) -> HTMLResponse:
    """What a person sees when the request cannot go back to the app: no redirect."""
    body = f"<h1>Error {status}: {html.escape(error)}</h1><p>{html.escape(description)}</p>"
    return HTMLResponse(_page("Error", body), status_code=status)


def consent_page(action: str, request_id: str, email: str, client: str, scopes: list[str]) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="scope" value="{html.escape(s)}" checked> '
        f"{html.escape(s)}</label><br>\n"
        for s in scopes
    )
    form = (
        f'<form method="post" action="{html.escape(action)}">\n'
        f'<input type="hidden" name="request_id" value="{html.escape(request_id)}">\n'
        f'<label>Email <input type="email" name="email" value="{html.escape(email)}"></label><br>\n'
        f"{boxes}"
        '<button type="submit" name="action" value="allow">Allow</button>\n'
        '<button type="submit" name="action" value="deny">Deny</button>\n</form>'
    )
    return _page("Sign in", f"<h1>{html.escape(client)} wants to access your account</h1>\n{form}")


def _page(title: str, body: str) -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def stable_number(text: str, digits: int = 21) -> str:
    """A made-up numeric id that stays the same for the same text (Google's ``sub``)."""
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16))[:digits]
